import { and, eq, sql } from "drizzle-orm";
import type { LibSQLDatabase } from "drizzle-orm/libsql";
import {
  blob,
  check,
  integer,
  primaryKey,
  type SQLiteTransaction,
  sqliteTable,
  text,
} from "drizzle-orm/sqlite-core";
import type { Tx } from "./database.js";
import { preparedQuery } from "./prepared.js";

/**
 * AIP-155 request ids: the first response of a create, keyed by who asked, what, and the key. The same table in
 * every service's own database (each schema includes it, as with `auditLog`); `idempotencyKeyStore` is what
 * `createRequestIds` (packages/server) needs over it.
 */
export const idempotencyKeys = sqliteTable(
  "idempotency_keys",
  {
    ownerId: text("owner_id").notNull(),
    method: text("method").notNull(),
    key: text("key").notNull(),
    requestHash: text("request_hash").notNull(),
    /** The response message, protobuf binary. */
    response: blob("response", { mode: "buffer" }).notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    primaryKey({ name: "idempotency_keys_pk", columns: [t.ownerId, t.method, t.key] }),
    check("idempotency_keys_key_len", sql`length(${t.key}) BETWEEN 1 AND 64`),
  ],
);

export type IdempotencyKeyRow = typeof idempotencyKeys.$inferSelect;

/** A unit of work's `tx`, or the tooling `drizzle()` handle, of any schema. */
// biome-ignore lint/suspicious/noExplicitAny: any schema; only the query builder is used
type Queryable = Tx<any> | LibSQLDatabase<any> | SQLiteTransaction<"async", unknown, any, any>;

/** The stored first response of (owner, method, key): a primary-key lookup, its SQL built once (preparedQuery). */
const findKey = preparedQuery((db: Queryable) =>
  db
    .select()
    .from(idempotencyKeys)
    .where(
      and(
        eq(idempotencyKeys.ownerId, sql.placeholder("ownerId")),
        eq(idempotencyKeys.method, sql.placeholder("method")),
        eq(idempotencyKeys.key, sql.placeholder("key")),
      ),
    ),
);

export const idempotencyKeyStore = {
  find(db: Queryable, ownerId: string, method: string, key: string): Promise<IdempotencyKeyRow | undefined> {
    return findKey.with(db, { ownerId, method, key }).get();
  },
  async insert(db: Queryable, row: typeof idempotencyKeys.$inferInsert): Promise<void> {
    await db.insert(idempotencyKeys).values(row);
  },
};
