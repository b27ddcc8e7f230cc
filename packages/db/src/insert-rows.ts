import { getTableColumns, getTableName } from "drizzle-orm";
import type { SQLiteTable } from "drizzle-orm/sqlite-core";
import { unitTransaction } from "./unit-transaction.js";

/**
 * Bulk inserts without rebuilding the SQL for every row.
 *
 * drizzle builds an INSERT's SQL again on every call, walking one chunk per bound value: for a 50-row batch of
 * 11 columns that was about a fifth of a RecordTestResults request's CPU (test/load/README.md). `insertRows`
 * writes the statement text once per (table, columns, row count), maps values with the columns' own
 * `mapToDriverValue` (and `$defaultFn` for absent keys), and runs it on the unit of work's libSQL transaction,
 * whose connection keeps the prepared statement (local-client.ts). Outside a unit of work it falls back to
 * drizzle's insert.
 */

/** Rows per statement: SQLite allows 32,766 bound values; 250 rows of a wide table stay far below. */
const DEFAULT_CHUNK = 250;

const statementText = new Map<string, string>();

type Insertable = { insert(table: SQLiteTable): { values(rows: unknown[]): PromiseLike<unknown> } };

export async function insertRows<T extends SQLiteTable>(
  tx: Insertable,
  table: T,
  rows: readonly T["$inferInsert"][],
  chunk = DEFAULT_CHUNK,
): Promise<void> {
  const transaction = unitTransaction(tx);
  for (let start = 0; start < rows.length; start += chunk) {
    const part = rows.slice(start, start + chunk);
    if (transaction === undefined) {
      await tx.insert(table).values(part as unknown[]);
      continue;
    }
    const { sql, args } = build(table, part);
    await transaction.execute({ sql, args });
  }
}

function build(table: SQLiteTable, rows: readonly Record<string, unknown>[]) {
  const columns = Object.entries(getTableColumns(table)) as [string, ColumnLike][];
  const first = rows[0] ?? {};
  // the columns drizzle would write: the keys given, plus those it fills in itself
  const used = columns.filter(([key, column]) => key in first || generated(column) !== undefined);
  const args: unknown[] = [];
  for (const row of rows) {
    for (const [key] of columns) {
      if (key in row !== key in first) {
        throw new TypeError(`insertRows: every row must set the same columns (${key} differs)`);
      }
    }
    for (const [key, column] of used) {
      const value = key in row ? row[key] : generated(column)?.();
      args.push(value === null || value === undefined ? null : column.mapToDriverValue(value));
    }
  }
  const name = getTableName(table);
  const cacheKey = `${name}\u0000${used.map(([key]) => key).join(",")}\u0000${rows.length}`;
  let sql = statementText.get(cacheKey);
  if (sql === undefined) {
    const tuple = `(${used.map(() => "?").join(", ")})`;
    sql = `INSERT INTO ${quote(name)} (${used.map(([, c]) => quote(c.name)).join(", ")}) VALUES ${Array(rows.length).fill(tuple).join(", ")}`;
    statementText.set(cacheKey, sql);
  }
  return { sql, args: args as never[] };
}

interface ColumnLike {
  name: string;
  default?: unknown;
  defaultFn?: (() => unknown) | undefined;
  onUpdateFn?: (() => unknown) | undefined;
  mapToDriverValue(value: unknown): unknown;
}

/** What drizzle's insert uses for an absent key: `$defaultFn`, else `$onUpdateFn` if there is no SQL default. */
function generated(column: ColumnLike): (() => unknown) | undefined {
  if (column.defaultFn !== undefined) return column.defaultFn;
  return column.default === undefined ? column.onUpdateFn : undefined;
}

function quote(identifier: string): string {
  return `"${identifier.replaceAll('"', '""')}"`;
}
