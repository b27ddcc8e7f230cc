import type { Transaction } from "@libsql/client";

/**
 * The libSQL transaction under each drizzle `Tx` handed to a unit of work, set by createDatabase when it
 * builds the `tx`. Helpers that bypass drizzle's per-call query building (`insertRows`, `preparedQuery`) run
 * their statements on it; a handle not found here (the tooling `drizzle()` instance, a nested
 * `tx.transaction()`) is not a unit of work's, and they fall back to drizzle itself.
 */
const transactions = new WeakMap<object, Transaction>();

export function bindTransaction(tx: object, transaction: Transaction): void {
  transactions.set(tx, transaction);
}

export function unitTransaction(tx: object): Transaction | undefined {
  return transactions.get(tx);
}
