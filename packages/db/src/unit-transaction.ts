import type { Client, Transaction } from "@libsql/client";
import {
  createTableRelationsHelpers,
  type ExtractTablesWithRelations,
  extractTablesRelationalConfig,
  type RelationalSchemaConfig,
} from "drizzle-orm";
import { LibSQLSession, LibSQLTransaction } from "drizzle-orm/libsql";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import type { Tx } from "./database-types.js";

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

/** Builds drizzle's transaction handle over a libSQL transaction we opened ourselves. */
export type TxFactory<TSchema extends Record<string, unknown>> = (
  client: Client,
  libsqlTx: Transaction,
) => Tx<TSchema>;

export function createTxFactory<TSchema extends Record<string, unknown>>(
  schema: TSchema | undefined,
): TxFactory<TSchema> {
  const dialect = new SQLiteAsyncDialect();
  const relational = relationalConfig(schema);
  return (client, libsqlTx) => {
    const session = new LibSQLSession<TSchema, ExtractTablesWithRelations<TSchema>>(
      client,
      dialect,
      relational,
      {},
      libsqlTx,
    );
    const tx = new LibSQLTransaction<TSchema, ExtractTablesWithRelations<TSchema>>(
      "async",
      dialect,
      session,
      relational,
    );
    bindTransaction(tx, libsqlTx);
    return tx;
  };
}

function relationalConfig<TSchema extends Record<string, unknown>>(
  schema: TSchema | undefined,
): RelationalSchemaConfig<ExtractTablesWithRelations<TSchema>> | undefined {
  if (schema === undefined) return undefined;
  const config = extractTablesRelationalConfig<ExtractTablesWithRelations<TSchema>>(
    schema,
    createTableRelationsHelpers,
  );
  return { fullSchema: schema, schema: config.tables, tableNamesMap: config.tableNamesMap };
}
