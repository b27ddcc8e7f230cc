import { createHash } from "node:crypto";
import type { ResultSet } from "@libsql/client";
import { type SQL, type SQLWrapper, sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { canonicalJson } from "./canonical-json.js";
import type { UnitOfWorkOptions } from "./database.js";

/**
 * The append-only audit log, one per service database. Each service's Drizzle schema re-exports this table so
 * drizzle-kit generates it into that service's migrations; the triggers below go into a custom migration.
 *
 * `seq` uses AUTOINCREMENT so SQLite keeps the high-water mark in `sqlite_sequence`: deleting the newest rows
 * (below the triggers) then leaves a visible gap between that mark and the last row.
 */
export const auditLog = sqliteTable(
  "audit_log",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    occurredAt: integer("occurred_at").notNull(),
    actor: text("actor").notNull(),
    action: text("action").notNull(),
    resourceType: text("resource_type").notNull(),
    resourceId: text("resource_id").notNull(),
    requestId: text("request_id"),
    /** sha256 hex of canonical JSON of `{ before, after }` (absent ones as null). */
    digest: text("digest").notNull(),
    prevHash: text("prev_hash").notNull(),
    hash: text("hash").notNull(),
    /** Id of the HMAC key `hash` was computed with; NULL for a row of the unkeyed SHA-256 chain. */
    keyId: text("key_id"),
  },
  (t) => [
    index("audit_log_resource_idx").on(t.resourceType, t.resourceId, t.seq),
    index("audit_log_actor_idx").on(t.actor, t.seq),
  ],
);

export type AuditLogRow = typeof auditLog.$inferSelect;

/** `prev_hash` of the first row. */
export const AUDIT_GENESIS_HASH = "0".repeat(64);

/**
 * Makes the table append-only for every writer, including ad-hoc SQL: UPDATE and DELETE abort
 * (SQLITE_CONSTRAINT_TRIGGER). Statements are separated by drizzle-kit's breakpoint marker, so the string can
 * be pasted as is into a custom migration (`drizzle-kit generate --custom`).
 */
export const auditLogTriggersSql = `CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;
--> statement-breakpoint
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
`;

/** The matching `<tag>.down.sql`. */
export const auditLogTriggersDownSql = `DROP TRIGGER IF EXISTS audit_log_no_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS audit_log_no_update;
`;

/** What raw SQL the audit functions need from a Drizzle transaction or database (any schema). */
export interface SqlExecutor {
  run(query: SQLWrapper | string): PromiseLike<ResultSet>;
  all<T = unknown>(query: SQLWrapper | string): PromiseLike<T[]>;
}

/** Anything with a `read` unit of work, e.g. a `Database` of any schema. */
export interface AuditReader {
  read<T>(fn: (tx: SqlExecutor) => Promise<T>, options?: UnitOfWorkOptions): Promise<T>;
}

export interface AuditEntryInput {
  actor: string;
  action: string;
  resourceType: string;
  resourceId: string;
  requestId?: string | null | undefined;
  /** State before the change (omit for a create); hashed into `digest`, not stored. */
  before?: unknown;
  /** State after the change (omit for a delete). */
  after?: unknown;
  /** Epoch ms; defaults to now. Injectable for deterministic tests. */
  occurredAt?: number | undefined;
}

export interface AuditEvent {
  seq: number;
  occurredAt: number;
  actor: string;
  action: string;
  resourceType: string;
  resourceId: string;
  requestId: string | null;
  digest: string;
  prevHash: string;
  hash: string;
}

function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** sha256 hex of canonical JSON `{"after":...,"before":...}` with absent sides as null. */
export function auditDigest(before: unknown, after: unknown): string {
  return sha256(canonicalJson({ before: before ?? null, after: after ?? null }));
}

/**
 * The row hash: sha256 hex of `prev_hash + "\n" + canonicalJson(fields)`, where `fields` holds every other
 * column (camelCase keys: action, actor, digest, occurredAt, requestId, resourceId, resourceType, seq).
 * Including `seq` ties each row to its position; including `prev_hash` chains it to its predecessor.
 */
export function auditRowHash(row: Omit<AuditEvent, "hash">): string {
  const fields = {
    seq: row.seq,
    occurredAt: row.occurredAt,
    actor: row.actor,
    action: row.action,
    resourceType: row.resourceType,
    resourceId: row.resourceId,
    requestId: row.requestId,
    digest: row.digest,
  };
  return sha256(`${row.prevHash}\n${canonicalJson(fields)}`);
}

interface RawAuditRow {
  seq: number;
  occurred_at: number;
  actor: string;
  action: string;
  resource_type: string;
  resource_id: string;
  request_id: string | null;
  digest: string;
  prev_hash: string;
  hash: string;
}

function fromRaw(row: RawAuditRow): AuditEvent {
  return {
    seq: Number(row.seq),
    occurredAt: Number(row.occurred_at),
    actor: row.actor,
    action: row.action,
    resourceType: row.resource_type,
    resourceId: row.resource_id,
    requestId: row.request_id,
    digest: row.digest,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

/**
 * Appends one audit row inside the caller's write unit of work, so the row commits or rolls back with the
 * change it describes. Must be called with the `tx` of `db.write` (the writer queue guarantees no other
 * append can interleave between reading the last hash and inserting).
 */
export async function appendAudit(tx: SqlExecutor, entry: AuditEntryInput): Promise<AuditEvent> {
  const last = await tx.all<{ seq: number; hash: string }>(
    sql`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`,
  );
  const previous = last[0];
  const row: Omit<AuditEvent, "hash"> = {
    seq: previous === undefined ? 1 : Number(previous.seq) + 1,
    occurredAt: entry.occurredAt ?? Date.now(),
    actor: entry.actor,
    action: entry.action,
    resourceType: entry.resourceType,
    resourceId: entry.resourceId,
    requestId: entry.requestId ?? null,
    digest: auditDigest(entry.before, entry.after),
    prevHash: previous === undefined ? AUDIT_GENESIS_HASH : previous.hash,
  };
  const event: AuditEvent = { ...row, hash: auditRowHash(row) };
  await tx.run(sql`INSERT INTO audit_log
    (seq, occurred_at, actor, action, resource_type, resource_id, request_id, digest, prev_hash, hash)
    VALUES (${event.seq}, ${event.occurredAt}, ${event.actor}, ${event.action}, ${event.resourceType},
      ${event.resourceId}, ${event.requestId}, ${event.digest}, ${event.prevHash}, ${event.hash})`);
  return event;
}

export type AuditChainBreak =
  /** The row's own hash does not match its contents: the row was edited. */
  | "hash_mismatch"
  /** The row does not point at its predecessor's hash: a row before it was deleted, replaced or moved. */
  | "prev_hash_mismatch"
  /** A sequence number is missing (a row was deleted; `firstBrokenSequence` is the missing one). */
  | "sequence_gap"
  /** `sqlite_sequence` remembers rows after the last one: the newest rows were deleted. */
  | "tail_truncated";

export type AuditChainVerification =
  | { ok: true; count: number; lastSequence: number; lastHash: string }
  | { ok: false; firstBrokenSequence: number; reason: AuditChainBreak; detail: string; checked: number };

const VERIFY_PAGE = 1_000;

/**
 * Walks the whole chain in `seq` order inside one read transaction (a consistent snapshot), page by page.
 * Detects an edited row (its hash), a deleted, inserted or reordered row (the next row's `prev_hash`, and the
 * `seq` sequence), and deletion of the newest rows while `sqlite_sequence` still remembers them.
 *
 * Limitation: someone who can write the file below the triggers can delete the tail *and* fix
 * `sqlite_sequence`, or rewrite the tail and recompute every later hash; a chain inside the database cannot
 * tell. Publishing `lastSequence`/`lastHash` somewhere the database writer cannot change (a log shipper,
 * another service, a signed daily checkpoint) and comparing them here turns that into a detected break.
 */
export async function verifyAuditChain(
  db: AuditReader,
  options?: UnitOfWorkOptions,
): Promise<AuditChainVerification> {
  return db.read(async (tx) => {
    let expectedSeq = 1;
    let expectedPrev = AUDIT_GENESIS_HASH;
    let checked = 0;
    for (;;) {
      const page = await tx.all<RawAuditRow>(
        sql`SELECT * FROM audit_log WHERE seq >= ${expectedSeq} ORDER BY seq LIMIT ${VERIFY_PAGE}`,
      );
      for (const raw of page) {
        const row = fromRaw(raw);
        if (row.seq !== expectedSeq) {
          return broken(
            expectedSeq,
            "sequence_gap",
            `row ${expectedSeq} is missing (next is ${row.seq})`,
            checked,
          );
        }
        if (row.prevHash !== expectedPrev) {
          return broken(
            row.seq,
            "prev_hash_mismatch",
            `row ${row.seq} does not link to row ${row.seq - 1}`,
            checked,
          );
        }
        const { hash, ...rest } = row;
        if (auditRowHash(rest) !== hash) {
          return broken(row.seq, "hash_mismatch", `row ${row.seq} does not match its hash`, checked);
        }
        checked++;
        expectedSeq = row.seq + 1;
        expectedPrev = row.hash;
      }
      if (page.length < VERIFY_PAGE) break;
    }
    const lastSequence = expectedSeq - 1;
    const mark = await highWaterMark(tx);
    if (mark !== undefined && mark > lastSequence) {
      return broken(
        lastSequence + 1,
        "tail_truncated",
        `rows ${lastSequence + 1}..${mark} were appended once but are gone`,
        checked,
      );
    }
    return { ok: true as const, count: checked, lastSequence, lastHash: expectedPrev };
  }, options);
}

function broken(
  seq: number,
  reason: AuditChainBreak,
  detail: string,
  checked: number,
): AuditChainVerification {
  return { ok: false, firstBrokenSequence: seq, reason, detail, checked };
}

async function highWaterMark(tx: SqlExecutor): Promise<number | undefined> {
  // sqlite_sequence exists only once some AUTOINCREMENT table got a row
  const exists = await tx.all<{ n: number }>(
    sql`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'`,
  );
  if (Number(exists[0]?.n ?? 0) === 0) return undefined;
  const rows = await tx.all<{ seq: number }>(sql`SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'`);
  return rows[0] === undefined ? undefined : Number(rows[0].seq);
}

export interface ListAuditEventsOptions {
  /** Keyset cursor: only events with a larger sequence. */
  afterSeq?: number | undefined;
  /** 1..1000. */
  limit: number;
  resourceType?: string | undefined;
  resourceId?: string | undefined;
  actor?: string | undefined;
}

/**
 * Oldest first, after `afterSeq`, filtered. Served by `audit_log_resource_idx` / `audit_log_actor_idx`
 * (or the primary key) with no sort. Use the last event's `seq` as the next page's `afterSeq`.
 */
export async function listAuditEvents(
  db: AuditReader,
  filter: ListAuditEventsOptions,
  options?: UnitOfWorkOptions,
): Promise<AuditEvent[]> {
  if (!Number.isInteger(filter.limit) || filter.limit < 1 || filter.limit > 1000) {
    throw new RangeError("limit must be an integer in 1..1000");
  }
  const conditions: SQL[] = [sql`seq > ${filter.afterSeq ?? 0}`];
  if (filter.resourceType !== undefined) conditions.push(sql`resource_type = ${filter.resourceType}`);
  if (filter.resourceId !== undefined) conditions.push(sql`resource_id = ${filter.resourceId}`);
  if (filter.actor !== undefined) conditions.push(sql`actor = ${filter.actor}`);
  const where = sql.join(conditions, sql` AND `);
  return db.read(async (tx) => {
    const rows = await tx.all<RawAuditRow>(
      sql`SELECT * FROM audit_log WHERE ${where} ORDER BY seq LIMIT ${filter.limit}`,
    );
    return rows.map(fromRaw);
  }, options);
}
