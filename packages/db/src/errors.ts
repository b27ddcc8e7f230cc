/**
 * Database error classification.
 *
 * Errors are classified by their machine-readable codes only (`code`, `extendedCode`, `rawCode` of a
 * `LibsqlError`, Node's system error codes, HTTP status of the remote protocol), never by message text:
 * messages change between SQLite and driver versions, codes do not. The message is read for one thing only,
 * the human-readable `detail` of a constraint violation, which callers may show but must not branch on.
 */

/** Base class of every error this package classifies or raises itself. */
export abstract class DatabaseError extends Error {
  /** Stable machine-readable code (`SQLITE_BUSY`, `SQLITE_CONSTRAINT_UNIQUE`, `MIGRATION_CHANGED`, ...). */
  readonly code: string;

  constructor(message: string, code: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    // fallback for subclasses outside this file; ours set literal names (below) that survive minification,
    // because other packages recognise these errors by `name` (a second copy of this module defeats instanceof)
    this.name = new.target.name;
  }
}

/** Why a transient error is transient; useful as a metrics label. */
export type TransientReason = "busy" | "locked" | "network" | "replica_sync";

/**
 * An error that may go away if the whole unit of work is tried again: another writer holds the lock
 * (SQLITE_BUSY / SQLITE_LOCKED), the connection to a remote libSQL server broke, or an embedded replica
 * failed to sync. `db.write` / `db.read` retry these; callers that see one have exhausted the retries.
 */
export class TransientDatabaseError extends DatabaseError {
  override readonly name = "TransientDatabaseError";
  readonly reason: TransientReason;

  constructor(message: string, code: string, reason: TransientReason, options?: { cause?: unknown }) {
    super(message, code, options);
    this.reason = reason;
  }
}

export type ConstraintKind =
  | "check"
  | "unique"
  | "foreign_key"
  | "primary_key"
  | "not_null"
  | "trigger"
  /** A remote server that reports only `SQLITE_CONSTRAINT` without the extended code (sqld over HTTP does). */
  | "other";

/** A statement broke a rule the schema enforces. Never retried: the same data would fail again. */
export class ConstraintViolationError extends DatabaseError {
  override readonly name = "ConstraintViolationError";
  readonly kind: ConstraintKind;
  /**
   * SQLite's own description of what failed, best effort: the CHECK expression or constraint name,
   * `table.column[, table.column]` for UNIQUE / NOT NULL / PRIMARY KEY, the RAISE() message of a trigger.
   * Undefined for foreign keys (SQLite does not say which one). For display and logs only.
   */
  readonly detail: string | undefined;
  /** `table.column` entries parsed from `detail` for UNIQUE / NOT NULL / PRIMARY KEY violations. */
  readonly columns: readonly string[];

  constructor(
    message: string,
    code: string,
    kind: ConstraintKind,
    detail: string | undefined,
    options?: { cause?: unknown },
  ) {
    super(message, code, options);
    this.kind = kind;
    this.detail = detail;
    this.columns =
      detail !== undefined && (kind === "unique" || kind === "not_null" || kind === "primary_key")
        ? detail.split(",").map((c) => c.trim())
        : [];
  }
}

/** A unit of work could not start (or be retried) before its deadline. */
export class DeadlineExceededError extends DatabaseError {
  override readonly name = "DeadlineExceededError";
  constructor(
    message = "the deadline passed before the unit of work could run",
    options?: { cause?: unknown },
  ) {
    super(message, "DEADLINE_EXCEEDED", options);
  }
}

/** The database was closed; no new unit of work is accepted. */
export class DatabaseClosedError extends DatabaseError {
  override readonly name = "DatabaseClosedError";
  constructor() {
    super("the database is closed", "DATABASE_CLOSED");
  }
}

const CONSTRAINT_KINDS: Record<string, ConstraintKind> = {
  SQLITE_CONSTRAINT_CHECK: "check",
  SQLITE_CONSTRAINT_UNIQUE: "unique",
  SQLITE_CONSTRAINT_FOREIGNKEY: "foreign_key",
  SQLITE_CONSTRAINT_PRIMARYKEY: "primary_key",
  SQLITE_CONSTRAINT_ROWID: "primary_key",
  SQLITE_CONSTRAINT_NOTNULL: "not_null",
  SQLITE_CONSTRAINT_TRIGGER: "trigger",
};

// SQLite's extended result codes as numbers, for errors that carry only `rawCode`.
const CONSTRAINT_KINDS_BY_RAW_CODE: Record<number, ConstraintKind> = {
  275: "check",
  2067: "unique",
  787: "foreign_key",
  1555: "primary_key",
  2579: "primary_key",
  1299: "not_null",
  1811: "trigger",
};

// Codes of the remote (Hrana over HTTP/WebSocket) client meaning "the conversation broke", not "the SQL failed".
// SERVER_ERROR is absent on purpose: it covers every HTTP error (401 too); its cause's `status` decides.
const REMOTE_TRANSIENT_CODES = new Set([
  "HRANA_WEBSOCKET_ERROR",
  "HRANA_CLOSED_ERROR",
  "STREAM_EXPIRED",
  "STREAM_CLOSED",
]);

// Node / undici system error codes of a broken or unreachable connection.
const NETWORK_ERROR_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "EPIPE",
  "ETIMEDOUT",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UND_ERR_CLOSED",
]);

interface CodedError {
  code?: unknown;
  extendedCode?: unknown;
  rawCode?: unknown;
  status?: unknown;
  message?: unknown;
  cause?: unknown;
}

function asCoded(value: unknown): CodedError | undefined {
  return typeof value === "object" && value !== null ? (value as CodedError) : undefined;
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** The error and its causes, outermost first (DrizzleQueryError -> LibsqlError -> native SqliteError ...). */
function causeChain(err: unknown): CodedError[] {
  const chain: CodedError[] = [];
  let current: unknown = err;
  // bounded: a cause cycle must not hang the classifier
  for (let i = 0; i < 8; i++) {
    const coded = asCoded(current);
    if (coded === undefined || chain.includes(coded)) break;
    chain.push(coded);
    current = coded.cause;
  }
  return chain;
}

function isSqliteCode(code: string | undefined, base: string): boolean {
  return code !== undefined && (code === base || code.startsWith(`${base}_`));
}

/** SQLite's text after "constraint failed: " (or the trigger's RAISE message), for display only. */
function constraintDetail(kind: ConstraintKind, message: string | undefined): string | undefined {
  if (message === undefined || kind === "foreign_key") return undefined;
  // LibsqlError prefixes the message with its code ("SQLITE_CONSTRAINT: ...").
  const text = message.replace(/^SQLITE_[A-Z_]+: /, "");
  const marker = "constraint failed: ";
  const at = text.indexOf(marker);
  if (at >= 0) return text.slice(at + marker.length);
  return kind === "trigger" ? text : undefined;
}

/**
 * Classifies an error thrown by @libsql/client or by drizzle-orm on top of it.
 *
 * Returns a {@link TransientDatabaseError} or {@link ConstraintViolationError} (with the original error as
 * `cause`), an error of this package unchanged, and any other error unchanged (passthrough): a syntax
 * error, a missing table or a bug must surface as itself, not be dressed up as a database condition.
 */
export function classifyDatabaseError(err: unknown): DatabaseError | unknown {
  if (err instanceof DatabaseError) return err;
  const chain = causeChain(err);

  for (const e of chain) {
    const code = str(e.code);
    const extendedCode = str(e.extendedCode);
    const rawCode = typeof e.rawCode === "number" ? e.rawCode : undefined;
    const message = str(e.message);

    // 0x05 / 0x06 are SQLITE_BUSY / SQLITE_LOCKED in the low byte of any extended code.
    if (
      isSqliteCode(code, "SQLITE_BUSY") ||
      isSqliteCode(extendedCode, "SQLITE_BUSY") ||
      (rawCode !== undefined && (rawCode & 0xff) === 5)
    ) {
      return new TransientDatabaseError(
        message ?? "database is busy",
        extendedCode ?? code ?? "SQLITE_BUSY",
        "busy",
        { cause: err },
      );
    }
    if (
      isSqliteCode(code, "SQLITE_LOCKED") ||
      isSqliteCode(extendedCode, "SQLITE_LOCKED") ||
      (rawCode !== undefined && (rawCode & 0xff) === 6)
    ) {
      return new TransientDatabaseError(
        message ?? "database table is locked",
        extendedCode ?? code ?? "SQLITE_LOCKED",
        "locked",
        { cause: err },
      );
    }

    const constraintCode = [extendedCode, code].find((c) => c !== undefined && c in CONSTRAINT_KINDS);
    const kindFromRaw = rawCode !== undefined ? CONSTRAINT_KINDS_BY_RAW_CODE[rawCode] : undefined;
    if (constraintCode !== undefined || kindFromRaw !== undefined) {
      const kind = (constraintCode !== undefined ? CONSTRAINT_KINDS[constraintCode] : kindFromRaw) ?? "other";
      return new ConstraintViolationError(
        message ?? "constraint violation",
        constraintCode ?? extendedCode ?? code ?? "SQLITE_CONSTRAINT",
        kind,
        constraintDetail(kind, message),
        { cause: err },
      );
    }
    if (code === "SQLITE_CONSTRAINT" || (rawCode !== undefined && (rawCode & 0xff) === 19)) {
      return new ConstraintViolationError(
        message ?? "constraint violation",
        "SQLITE_CONSTRAINT",
        "other",
        constraintDetail("other", message),
        { cause: err },
      );
    }

    if (code !== undefined && REMOTE_TRANSIENT_CODES.has(code)) {
      return new TransientDatabaseError(message ?? code, code, "network", { cause: err });
    }
    // An HTTP error of the remote protocol: gateway / overload statuses are transient, 4xx are not.
    const status = typeof e.status === "number" ? e.status : undefined;
    if (status !== undefined && (status === 429 || status === 502 || status === 503 || status === 504)) {
      return new TransientDatabaseError(message ?? `HTTP ${status}`, `HTTP_${status}`, "network", {
        cause: err,
      });
    }
    if (code !== undefined && NETWORK_ERROR_CODES.has(code)) {
      return new TransientDatabaseError(message ?? code, code, "network", { cause: err });
    }
  }
  return err;
}

/** True if the error (after classification) is worth retrying. */
export function isTransientDatabaseError(err: unknown): boolean {
  return classifyDatabaseError(err) instanceof TransientDatabaseError;
}
