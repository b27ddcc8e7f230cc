import { createHash } from "node:crypto";
import type { ResultSet } from "@libsql/client";
import { type SQL, type SQLWrapper, sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { type AuditKeyring, hmacSha256Hex } from "./audit-keys.js";
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
  /** The HMAC key id `hash` was computed with; null for a row of the unkeyed chain. */
  keyId: string | null;
}

function sha256(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** sha256 hex of canonical JSON `{"after":...,"before":...}` with absent sides as null. */
export function auditDigest(before: unknown, after: unknown): string {
  return sha256(canonicalJson({ before: before ?? null, after: after ?? null }));
}

/**
 * The text a row's hash covers: `prev_hash + "\n" + canonicalJson(fields)`, where `fields` holds every other
 * column (camelCase keys: action, actor, digest, occurredAt, requestId, resourceId, resourceType, seq, and
 * keyId for a keyed row). Including `seq` ties each row to its position; including `prev_hash` chains it to
 * its predecessor.
 */
function hashedText(row: Omit<AuditEvent, "hash" | "keyId">, keyId: string | null): string {
  const fields = {
    seq: row.seq,
    occurredAt: row.occurredAt,
    actor: row.actor,
    action: row.action,
    resourceType: row.resourceType,
    resourceId: row.resourceId,
    requestId: row.requestId,
    digest: row.digest,
    ...(keyId === null ? {} : { keyId }),
  };
  return `${row.prevHash}\n${canonicalJson(fields)}`;
}

/** The unkeyed row hash (rows with a NULL `key_id`): sha256 hex of the hashed text. */
export function auditRowHash(row: Omit<AuditEvent, "hash" | "keyId">): string {
  return sha256(hashedText(row, null));
}

/** The keyed row hash: HMAC-SHA256 hex of the hashed text (which includes `keyId`) under that key. */
export function auditRowHmac(
  row: Omit<AuditEvent, "hash" | "keyId">,
  keyId: string,
  key: Uint8Array,
): string {
  return hmacSha256Hex(key, hashedText(row, keyId));
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
  key_id?: string | null;
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
    keyId: row.key_id ?? null,
  };
}

/**
 * Appends one audit row inside the caller's write unit of work, so the row commits or rolls back with the
 * change it describes. Must be called with the `tx` of `db.write` (the writer queue guarantees no other
 * append can interleave between reading the last hash and inserting). With `keys`, the row is hashed with
 * HMAC-SHA256 under the current key and stores its id; without, it joins the unkeyed SHA-256 chain.
 */
export async function appendAudit(
  tx: SqlExecutor,
  entry: AuditEntryInput,
  keys?: AuditKeyring,
): Promise<AuditEvent> {
  const occurredAt = entry.occurredAt ?? Date.now();
  if (!Number.isSafeInteger(occurredAt)) throw new RangeError("occurredAt must be an integer (epoch ms)");
  const last = await tx.all<{ seq: number; hash: string }>(
    sql`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`,
  );
  const previous = last[0];
  const row: Omit<AuditEvent, "hash" | "keyId"> = {
    seq: previous === undefined ? 1 : Number(previous.seq) + 1,
    occurredAt,
    actor: entry.actor,
    action: entry.action,
    resourceType: entry.resourceType,
    resourceId: entry.resourceId,
    requestId: entry.requestId ?? null,
    digest: auditDigest(entry.before, entry.after),
    prevHash: previous === undefined ? AUDIT_GENESIS_HASH : previous.hash,
  };
  if (keys === undefined) {
    const event: AuditEvent = { ...row, hash: auditRowHash(row), keyId: null };
    await tx.run(sql`INSERT INTO audit_log
      (seq, occurred_at, actor, action, resource_type, resource_id, request_id, digest, prev_hash, hash)
      VALUES (${event.seq}, ${event.occurredAt}, ${event.actor}, ${event.action}, ${event.resourceType},
        ${event.resourceId}, ${event.requestId}, ${event.digest}, ${event.prevHash}, ${event.hash})`);
    return event;
  }
  const keyId = keys.currentKeyId;
  const key = keys.keys.get(keyId);
  if (key === undefined) throw new RangeError(`audit key ${JSON.stringify(keyId)} is not in the keyring`);
  const event: AuditEvent = { ...row, hash: auditRowHmac(row, keyId, key), keyId };
  await tx.run(sql`INSERT INTO audit_log
    (seq, occurred_at, actor, action, resource_type, resource_id, request_id, digest, prev_hash, hash, key_id)
    VALUES (${event.seq}, ${event.occurredAt}, ${event.actor}, ${event.action}, ${event.resourceType},
      ${event.resourceId}, ${event.requestId}, ${event.digest}, ${event.prevHash}, ${event.hash}, ${keyId})`);
  return event;
}

export type AuditChainBreak =
  /** A stored value has the wrong type or shape (text in an integer column, NULL, non-hex hash, ...). */
  | "malformed_row"
  /** The row's own hash does not match its contents: the row was edited. */
  | "hash_mismatch"
  /** The row does not point at its predecessor's hash: a row before it was deleted, replaced or moved. */
  | "prev_hash_mismatch"
  /** A sequence number is missing (a row was deleted; `firstBrokenSequence` is the missing one). */
  | "sequence_gap"
  /** `sqlite_sequence` remembers rows after the last one: the newest rows were deleted. */
  | "tail_truncated"
  /** The row names an HMAC key that is not configured: it cannot be verified. */
  | "unknown_key"
  /** An unkeyed row after a keyed one: a row appended or rewritten by someone without the key. */
  | "unkeyed_after_keyed"
  /** A signed checkpoint names this sequence with a different hash (or the row is gone). */
  | "checkpoint_mismatch"
  /** The newest signed checkpoint is beyond the last row: the newest rows were deleted. */
  | "checkpoint_beyond_head"
  /** A checkpoint line does not verify (bad signature, unknown signing key, malformed). */
  | "checkpoint_invalid"
  /** Checkpoints were written but none can be found (the checkpoint file was removed). */
  | "checkpoints_missing";

/** What the verifier compares the chain against: the signed checkpoints, already read and checked. */
export interface AuditCheckpointExpectations {
  /** Checkpoints whose signature verified, in file order. */
  readonly checkpoints: readonly { readonly seq: number; readonly hash: string }[];
  /** Lines that did not verify. */
  readonly invalid: readonly { readonly seq: number; readonly detail: string }[];
  /** Set when checkpoints should exist but none were found: why. */
  readonly missing?: string | undefined;
}

export interface VerifyAuditChainOptions extends UnitOfWorkOptions {
  /** The HMAC keys; rows naming a key not in here are reported as `unknown_key`. */
  keys?: AuditKeyring | undefined;
  checkpoints?: AuditCheckpointExpectations | undefined;
}

interface VerificationFacts {
  /** Rows checked (all of them when ok, the ones before the break otherwise). */
  checked: number;
  /** Sequence of the first keyed row; 0 when none. */
  firstKeyedSequence: number;
  /** Checkpoints compared against the chain. */
  checkpointCount: number;
  /** Sequence of the newest checkpoint; 0 when none. */
  lastCheckpointSequence: number;
}

export type AuditChainVerification =
  | ({ ok: true; count: number; lastSequence: number; lastHash: string } & VerificationFacts)
  | ({ ok: false; firstBrokenSequence: number; reason: AuditChainBreak; detail: string } & VerificationFacts);

const VERIFY_PAGE = 1_000;
const HEX64 = /^[0-9a-f]{64}$/;
const MAX_TEXT = 100_000;
const TEXT_COLUMNS = [
  "actor",
  "action",
  "resource_type",
  "resource_id",
  "digest",
  "prev_hash",
  "hash",
] as const;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Values are read as hex (never invalid UTF-8, never an integer beyond 2^53); null when not valid UTF-8. */
function fromHex(hex: string | null | undefined): string | null {
  if (typeof hex !== "string") return null;
  try {
    return utf8.decode(Buffer.from(hex, "hex"));
  } catch {
    return null;
  }
}

/** One row as read by the verifier: each column's SQLite type and its value as text, so nothing can throw. */
type TypedRow = Record<string, { type: string; text: string | null }>;

/** Parses a row read as text; returns the event or why it is malformed. */
function parseTypedRow(row: TypedRow, hasKeyId: boolean): AuditEvent | string {
  const integer = (column: string): number | string => {
    const cell = row[column];
    if (cell?.type !== "integer" || cell.text === null || !/^-?\d{1,16}$/.test(cell.text)) {
      return `${column} is ${cell?.type ?? "missing"} ${JSON.stringify(cell?.text ?? null)}, not an integer`;
    }
    const n = Number(cell.text);
    return Number.isSafeInteger(n) ? n : `${column} ${cell.text} is out of range`;
  };
  const text = (column: string, nullable: boolean): string | null | { error: string } => {
    const cell = row[column];
    if (cell === undefined || (cell.type === "null" && nullable)) return null;
    if (cell.type !== "text" || cell.text === null) return { error: `${column} is ${cell.type}, not text` };
    if (cell.text.length > MAX_TEXT) return { error: `${column} is longer than ${MAX_TEXT} characters` };
    return cell.text;
  };
  const seq = integer("seq");
  if (typeof seq === "string") return seq;
  const occurredAt = integer("occurred_at");
  if (typeof occurredAt === "string") return occurredAt;
  const values: Record<string, string> = {};
  for (const column of TEXT_COLUMNS) {
    const v = text(column, false);
    if (v === null || typeof v === "object") return v?.error ?? `${column} is missing`;
    values[column] = v;
  }
  for (const column of ["digest", "prev_hash", "hash"] as const) {
    if (!HEX64.test(values[column] ?? "")) return `${column} is not 64 lowercase hex digits`;
  }
  const requestId = text("request_id", true);
  if (typeof requestId === "object" && requestId !== null) return requestId.error;
  const keyId = hasKeyId ? text("key_id", true) : null;
  if (typeof keyId === "object" && keyId !== null) return keyId.error;
  return {
    seq,
    occurredAt,
    actor: values.actor as string,
    action: values.action as string,
    resourceType: values.resource_type as string,
    resourceId: values.resource_id as string,
    requestId,
    digest: values.digest as string,
    prevHash: values.prev_hash as string,
    hash: values.hash as string,
    keyId,
  };
}

/**
 * Walks the whole chain in `seq` order inside one read transaction (a consistent snapshot), page by page.
 * Detects a row whose stored values have the wrong type or shape, an edited row (its hash or HMAC), a deleted,
 * inserted or reordered row (the next row's `prev_hash`, and the `seq` sequence), an unkeyed row after a keyed
 * one, a row under an unknown key, deletion of the newest rows while `sqlite_sequence` still remembers them,
 * and any disagreement with the signed checkpoints (see docs/audit.md for what each layer catches). Reports the
 * first problem; never throws for anything stored in the table.
 */
export async function verifyAuditChain(
  db: AuditReader,
  options: VerifyAuditChainOptions = {},
): Promise<AuditChainVerification> {
  const { keys, checkpoints, ...unitOptions } = options;
  const expected = new Map<number, string>();
  let lastCheckpointSequence = 0;
  for (const c of checkpoints?.checkpoints ?? []) {
    expected.set(c.seq, c.hash);
    lastCheckpointSequence = Math.max(lastCheckpointSequence, c.seq);
  }
  return db.read(async (tx) => {
    const columns = await tx.all<{ name: string }>(sql`SELECT name FROM pragma_table_info('audit_log')`);
    const names = columns.map((c) => String(c.name));
    const hasKeyId = names.includes("key_id");
    const select = sql.raw(
      names.map((n) => `typeof("${n}") AS "${n}:type", hex("${n}") AS "${n}:hex"`).join(", "),
    );
    const facts: VerificationFacts = {
      checked: 0,
      firstKeyedSequence: 0,
      checkpointCount: expected.size,
      lastCheckpointSequence,
    };
    const broken = (seq: number, reason: AuditChainBreak, detail: string): AuditChainVerification => ({
      ok: false,
      firstBrokenSequence: seq,
      reason,
      detail,
      ...facts,
    });
    let expectedSeq = 1;
    let expectedPrev = AUDIT_GENESIS_HASH;
    for (;;) {
      const page = await tx.all<Record<string, string | null>>(
        sql`SELECT ${select} FROM audit_log WHERE audit_log.seq >= ${expectedSeq} ORDER BY audit_log.seq LIMIT ${VERIFY_PAGE}`,
      );
      for (const raw of page) {
        const typed: TypedRow = {};
        for (const n of names) typed[n] = { type: String(raw[`${n}:type`]), text: fromHex(raw[`${n}:hex`]) };
        const row = parseTypedRow(typed, hasKeyId);
        if (typeof row === "string") {
          const seq = typeof typed.seq?.text === "string" ? Number(typed.seq.text) : Number.NaN;
          return broken(Number.isSafeInteger(seq) ? seq : expectedSeq, "malformed_row", row);
        }
        if (row.seq !== expectedSeq) {
          if (expected.has(expectedSeq)) {
            return broken(expectedSeq, "checkpoint_mismatch", `checkpointed row ${expectedSeq} is gone`);
          }
          return broken(expectedSeq, "sequence_gap", `row ${expectedSeq} is missing (next is ${row.seq})`);
        }
        if (row.prevHash !== expectedPrev) {
          return broken(row.seq, "prev_hash_mismatch", `row ${row.seq} does not link to row ${row.seq - 1}`);
        }
        const { hash, keyId, ...rest } = row;
        if (keyId === null) {
          if (facts.firstKeyedSequence !== 0) {
            return broken(
              row.seq,
              "unkeyed_after_keyed",
              `row ${row.seq} has no HMAC key id but row ${facts.firstKeyedSequence} has one`,
            );
          }
          if (auditRowHash(rest) !== hash) {
            return broken(row.seq, "hash_mismatch", `row ${row.seq} does not match its hash`);
          }
        } else {
          const key = keys?.keys.get(keyId);
          if (key === undefined) {
            return broken(
              row.seq,
              "unknown_key",
              `row ${row.seq} is under HMAC key ${JSON.stringify(keyId)}, which is not configured`,
            );
          }
          if (auditRowHmac(rest, keyId, key) !== hash) {
            return broken(row.seq, "hash_mismatch", `row ${row.seq} does not match its HMAC`);
          }
          if (facts.firstKeyedSequence === 0) facts.firstKeyedSequence = row.seq;
        }
        const checkpointed = expected.get(row.seq);
        if (checkpointed !== undefined && checkpointed !== hash) {
          return broken(row.seq, "checkpoint_mismatch", `row ${row.seq} differs from its signed checkpoint`);
        }
        facts.checked++;
        expectedSeq = row.seq + 1;
        expectedPrev = hash;
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
      );
    }
    if (lastCheckpointSequence > lastSequence) {
      return broken(
        lastSequence + 1,
        "checkpoint_beyond_head",
        `a signed checkpoint names row ${lastCheckpointSequence}, the last row is ${lastSequence}`,
      );
    }
    const invalid = checkpoints?.invalid[0];
    if (invalid !== undefined) return broken(invalid.seq, "checkpoint_invalid", invalid.detail);
    if (checkpoints?.missing !== undefined && expected.size === 0) {
      return broken(lastSequence + 1, "checkpoints_missing", checkpoints.missing);
    }
    return { ok: true as const, count: facts.checked, lastSequence, lastHash: expectedPrev, ...facts };
  }, unitOptions);
}

async function highWaterMark(tx: SqlExecutor): Promise<number | undefined> {
  // sqlite_sequence exists only once some AUTOINCREMENT table got a row
  const exists = await tx.all<{ n: number }>(
    sql`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_sequence'`,
  );
  if (Number(exists[0]?.n ?? 0) === 0) return undefined;
  const rows = await tx.all<{ seq: string | null }>(
    sql`SELECT CAST(seq AS TEXT) AS seq FROM sqlite_sequence WHERE name = 'audit_log'`,
  );
  const seq = Number(rows[0]?.seq ?? Number.NaN);
  return Number.isFinite(seq) ? seq : undefined;
}

/** The newest row's sequence and hash (0 and the genesis hash for an empty log), e.g. for a checkpoint. */
export async function auditChainHead(
  db: AuditReader,
  options?: UnitOfWorkOptions,
): Promise<{ seq: number; hash: string }> {
  return db.read(async (tx) => {
    const rows = await tx.all<{ seq: string; hash: string }>(
      sql`SELECT CAST(seq AS TEXT) AS seq, CAST(hash AS TEXT) AS hash FROM audit_log ORDER BY seq DESC LIMIT 1`,
    );
    const head = rows[0];
    return head === undefined
      ? { seq: 0, hash: AUDIT_GENESIS_HASH }
      : { seq: Number(head.seq), hash: String(head.hash) };
  }, options);
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
