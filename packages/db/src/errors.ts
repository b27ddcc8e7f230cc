/**
 * Database error classification.
 *
 * Errors are classified by their machine-readable codes first (`code`, `extendedCode`, `rawCode` of a
 * `LibsqlError`, the Hrana error code of sqld, Node's system error codes, HTTP status of the remote protocol).
 * Text is read only where an engine sends no code for what it reports:
 *
 * - sqld over HTTP sends a bare `SQLITE_CONSTRAINT` without the extended code; SQLite's own message names the
 *   kind ("UNIQUE constraint failed: t.col", "FOREIGN KEY constraint failed", ...), so the kind is read from
 *   that fixed prefix, and a message that is none of SQLite's is a trigger's RAISE();
 * - the embedded replica's native driver reports the primary's answers as Rust values printed into the
 *   message, with an empty `code`: `RemoteSqliteFailure(code, extended_code, "message")` (the numbers are
 *   SQLite's, classified as codes), `WriteDelegation(status: Unavailable, ...)` (a gRPC status of the write
 *   delegation to the primary), `Replication(...)` / `replication error: ...` and `Sync(...)` /
 *   `sync error: ...` (syncing from the primary).
 *
 * The message is otherwise read for one thing only, the human-readable `detail` of a constraint violation,
 * which callers may show but must not branch on.
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
  /**
   * A constraint named neither by an extended code nor by one of SQLite's messages (a commit hook, a STRICT
   * column's datatype). sqld's bare `SQLITE_CONSTRAINT` is classified by its message, where a PRIMARY KEY
   * violation reads as `unique` ("UNIQUE constraint failed: t.id").
   */
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

/**
 * The database refused the service's own credentials (HTTP 401: no, invalid or expired `DATABASE_AUTH_TOKEN`;
 * 403: a read-only token asked to write). Not the caller's fault and not retried (the same token fails again):
 * the server kit answers UNAVAILABLE (another instance may hold a valid token) and logs the cause, and the
 * readiness probe takes the instance out of service until the token works again.
 */
export class DatabaseAuthError extends DatabaseError {
  override readonly name = "DatabaseAuthError";
  /** The HTTP status the database answered with. */
  readonly status: number;
  constructor(status: number, options?: { cause?: unknown }) {
    super(
      status === 401
        ? "the database refused the service's credentials (HTTP 401): DATABASE_AUTH_TOKEN is missing, invalid or expired"
        : `the database refused the service's credentials (HTTP ${status}): DATABASE_AUTH_TOKEN does not allow this (a read-only token?)`,
      `HTTP_${status}`,
      options,
    );
    this.status = status;
  }
}

/**
 * The connection to a remote database broke while a write unit's COMMIT was on its way: the server may or may
 * not have applied it. Never retried by the unit of work (running it again could apply it twice); a caller that
 * sent an idempotency key (`request_id`) may retry safely, others should read before writing again.
 */
export class CommitOutcomeUnknownError extends DatabaseError {
  override readonly name = "CommitOutcomeUnknownError";
  constructor(options?: { cause?: unknown }) {
    super(
      "the connection to the database broke while committing: the change may or may not have been applied",
      "COMMIT_OUTCOME_UNKNOWN",
      options,
    );
  }
}

/**
 * A remote server refused to send a result this large (sqld's `--max-response-size`, 10 MB by default): the
 * same query gets the same answer, so it is not retried; fewer or smaller rows may fit.
 */
export class ResultTooLargeError extends DatabaseError {
  override readonly name = "ResultTooLargeError";
  constructor(options?: ErrorOptions) {
    super("the database refused to send a result this large", "RESPONSE_TOO_LARGE", options);
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

/** The names of SQLite's extended constraint codes, as the local driver spells them. */
export const CONSTRAINT_CODE_NAMES: Readonly<Record<number, string>> = {
  275: "SQLITE_CONSTRAINT_CHECK",
  2067: "SQLITE_CONSTRAINT_UNIQUE",
  787: "SQLITE_CONSTRAINT_FOREIGNKEY",
  1555: "SQLITE_CONSTRAINT_PRIMARYKEY",
  2579: "SQLITE_CONSTRAINT_ROWID",
  1299: "SQLITE_CONSTRAINT_NOTNULL",
  1811: "SQLITE_CONSTRAINT_TRIGGER",
};

// The extended code a kind read from SQLite's message stands for (a PRIMARY KEY violation reads as UNIQUE).
const EXTENDED_CODE_OF_KIND: Record<ConstraintKind, string> = {
  check: "SQLITE_CONSTRAINT_CHECK",
  unique: "SQLITE_CONSTRAINT_UNIQUE",
  foreign_key: "SQLITE_CONSTRAINT_FOREIGNKEY",
  primary_key: "SQLITE_CONSTRAINT_PRIMARYKEY",
  not_null: "SQLITE_CONSTRAINT_NOTNULL",
  trigger: "SQLITE_CONSTRAINT_TRIGGER",
  other: "SQLITE_CONSTRAINT",
};

// Codes of the remote (Hrana over HTTP/WebSocket) client meaning "the conversation broke", not "the SQL failed".
// SERVER_ERROR is absent on purpose: it covers every HTTP error (401 too); its cause's `status` decides.
const REMOTE_TRANSIENT_CODES = new Set([
  "HRANA_WEBSOCKET_ERROR",
  "HRANA_CLOSED_ERROR",
  "STREAM_EXPIRED",
  "STREAM_CLOSED",
]);

// sqld's Hrana codes for "another transaction competed for the write lock": TRANSACTION_TIMEOUT when sqld took
// the lock from a transaction that held it over 5 s for a waiting one (the unit was rolled back),
// TRANSACTION_BUSY when it could not start another transaction. The server answered: nothing was committed.
const REMOTE_BUSY_CODES = new Set(["TRANSACTION_TIMEOUT", "TRANSACTION_BUSY"]);

// gRPC statuses of the replica's write delegation to its primary that mean "the primary did not answer".
const DELEGATION_TRANSIENT_STATUSES = new Set(["Unavailable", "DeadlineExceeded", "ResourceExhausted"]);
// tonic reports a connection that broke under a call (reset, h2 GOAWAY, a body cut off) as Unknown or Cancelled
// with the transport's message: the primary went away, as with Unavailable.
const DELEGATION_TRANSPORT_STATUSES = new Set(["Unknown", "Cancelled"]);
const TRANSPORT_FAILURE =
  /transport error|connection reset|broken pipe|h2 protocol error|error reading a body|connection closed/i;

// HTTP statuses of the remote protocol that a later attempt may not get: overload and gateway errors, and
// sqld's own internal error (e.g. while it restarts).
const TRANSIENT_HTTP_STATUSES = new Set([429, 500, 502, 503, 504]);

// Transient network codes whose request the server answered without running it: an expired or closed stream
// (sqld rolled its transaction back), a refusal for overload.
const DECIDED_NETWORK_CODES = new Set(["STREAM_EXPIRED", "STREAM_CLOSED", "HTTP_429", "HTTP_503"]);

// Network errors raised before a request left this machine (no connection was made): even for a COMMIT, the
// server cannot have applied anything.
const NOT_SENT_CODES = new Set([
  "ECONNREFUSED",
  "EAI_AGAIN",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENETDOWN",
  "UND_ERR_CONNECT_TIMEOUT",
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
  name?: unknown;
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

/** `RemoteSqliteFailure(3, 2067, "UNIQUE constraint failed: t.c")` of the replica's native driver. */
const REMOTE_SQLITE_FAILURE = /^RemoteSqliteFailure\((-?\d+), (-?\d+), "((?:[^"\\]|\\.)*)"\)/;
/** `WriteDelegation(status: Unavailable, message: "...", ...)` of the replica's native driver. */
const WRITE_DELEGATION = /^WriteDelegation\(status: (\w+)/;
/** The replica's sync from its primary failed (Debug or Display form of the native error). */
const REPLICA_SYNC = /^(?:Replication\(|replication error: |Sync\(|sync error: )/;
/** SQLite's message for a corrupt file, which a sync may report: never transient. */
const CORRUPT = /database disk image is malformed|file is not a database/;

/** The parts of a native `RemoteSqliteFailure` message; undefined for any other message. */
export function remoteSqliteFailure(
  message: string | undefined,
): { rawCode: number; message: string } | undefined {
  const match = message === undefined ? null : REMOTE_SQLITE_FAILURE.exec(message);
  if (match === null) return undefined;
  const code = Number(match[1]);
  const extended = Number(match[2]);
  // the message is printed the Rust `Debug` way: quotes and backslashes escaped
  const text = (match[3] ?? "").replace(/\\(.)/g, "$1");
  return { rawCode: extended !== 0 ? extended : code, message: text };
}

/** SQLite's text without the prefixes the client and sqld put in front ("SQLITE_CONSTRAINT: SQLite error: "). */
function sqliteText(message: string): string {
  return message.replace(/^(?:SQLITE_[A-Z_]+: )+/, "").replace(/^SQLite error: /, "");
}

// SQLite's own messages of each constraint kind (sqlite3.c: "%s constraint failed"). A PRIMARY KEY violation
// reads like a UNIQUE one ("UNIQUE constraint failed: t.id"): without the extended code it is `unique`.
const CONSTRAINT_MESSAGES: readonly [string, ConstraintKind][] = [
  ["UNIQUE constraint failed", "unique"],
  ["FOREIGN KEY constraint failed", "foreign_key"],
  ["CHECK constraint failed", "check"],
  ["NOT NULL constraint failed", "not_null"],
];

/**
 * The kind of a bare SQLITE_CONSTRAINT (sqld over HTTP) from SQLite's message: one of SQLite's constraint
 * messages, or, when it is none of SQLite's own texts, a trigger's RAISE() message.
 */
function constraintKindFromMessage(message: string | undefined): ConstraintKind {
  if (message === undefined) return "other";
  const text = sqliteText(message);
  for (const [prefix, kind] of CONSTRAINT_MESSAGES) if (text.startsWith(prefix)) return kind;
  // SQLite's other constraint texts: "constraint failed" (commit hook, virtual tables), "cannot store TEXT
  // value in INTEGER column t.c" (STRICT tables), "... constraint failed" of a future kind.
  if (text === "" || /constraint failed/.test(text) || /^cannot store /.test(text)) return "other";
  return "trigger";
}

function isSqliteCode(code: string | undefined, base: string): boolean {
  return code !== undefined && (code === base || code.startsWith(`${base}_`));
}

/** SQLite's text after "constraint failed: " (or the trigger's RAISE message), for display only. */
function constraintDetail(kind: ConstraintKind, message: string | undefined): string | undefined {
  if (message === undefined || kind === "foreign_key") return undefined;
  // LibsqlError prefixes the message with its code ("SQLITE_CONSTRAINT: ..."), sqld with "SQLite error: ".
  const text = sqliteText(message);
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
    const code = str(e.code) || undefined; // the replica's native errors carry an empty code
    const extendedCode = str(e.extendedCode) || undefined;
    const remote = remoteSqliteFailure(str(e.message));
    const rawCode = typeof e.rawCode === "number" ? e.rawCode : remote?.rawCode;
    const message = remote?.message ?? str(e.message);

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
        // a replica's RemoteSqliteFailure has the number only: name it as the local driver does
        constraintCode ??
          (rawCode !== undefined ? CONSTRAINT_CODE_NAMES[rawCode] : undefined) ??
          "SQLITE_CONSTRAINT",
        kind,
        constraintDetail(kind, message),
        { cause: err },
      );
    }
    if (code === "SQLITE_CONSTRAINT" || (rawCode !== undefined && (rawCode & 0xff) === 19)) {
      // sqld sends the base code only: SQLite's message names the kind (and so the extended code)
      const kind = constraintKindFromMessage(message);
      return new ConstraintViolationError(
        message ?? "constraint violation",
        EXTENDED_CODE_OF_KIND[kind],
        kind,
        constraintDetail(kind, message),
        { cause: err },
      );
    }

    if (code === "RESPONSE_TOO_LARGE") return new ResultTooLargeError({ cause: err });
    if (code !== undefined && REMOTE_BUSY_CODES.has(code)) {
      return new TransientDatabaseError(message ?? code, code, "busy", { cause: err });
    }
    if (code !== undefined && REMOTE_TRANSIENT_CODES.has(code)) {
      return new TransientDatabaseError(message ?? code, code, "network", { cause: err });
    }
    // An HTTP error of the remote protocol: the service's credentials refused, or overload / gateway /
    // restart statuses (transient); other 4xx are not.
    const status = typeof e.status === "number" ? e.status : undefined;
    if (status === 401 || status === 403) return new DatabaseAuthError(status, { cause: err });
    if (status !== undefined && TRANSIENT_HTTP_STATUSES.has(status)) {
      return new TransientDatabaseError(message ?? `HTTP ${status}`, `HTTP_${status}`, "network", {
        cause: err,
      });
    }
    if (code !== undefined && NETWORK_ERROR_CODES.has(code)) {
      return new TransientDatabaseError(message ?? code, code, "network", { cause: err });
    }
    // the remote client's own request timeout (engine.ts): the server stopped answering
    if (e.name === "TimeoutError") {
      return new TransientDatabaseError(message ?? "request timed out", "REQUEST_TIMEOUT", "network", {
        cause: err,
      });
    }
    if (code === undefined && message !== undefined) {
      const delegation = WRITE_DELEGATION.exec(message);
      const delegationStatus = delegation?.[1];
      if (
        delegationStatus !== undefined &&
        (DELEGATION_TRANSIENT_STATUSES.has(delegationStatus) ||
          (DELEGATION_TRANSPORT_STATUSES.has(delegationStatus) && TRANSPORT_FAILURE.test(message)))
      ) {
        return new TransientDatabaseError(message, "REPLICA_PRIMARY_UNAVAILABLE", "network", { cause: err });
      }
      // the primary refused the replica's token ("AuthError: The JWT has expired"), or a write with a read-only
      // one ("Authorization forbidden: ..."); PermissionDenied also carries SQL errors ("no such table")
      if (delegationStatus === "Unauthenticated") return new DatabaseAuthError(401, { cause: err });
      if (delegationStatus === "PermissionDenied" && /message: "Authorization forbidden/.test(message)) {
        return new DatabaseAuthError(403, { cause: err });
      }
      if (REPLICA_SYNC.test(message) && !CORRUPT.test(message)) {
        return new TransientDatabaseError(message, "REPLICA_SYNC_FAILED", "replica_sync", { cause: err });
      }
    }
  }
  return err;
}

/** Whether `err` (classified) happened before its request reached the server: nothing can have been applied. */
function neverSent(err: unknown): boolean {
  for (const e of causeChain(err)) {
    const code = str(e.code);
    if (code !== undefined && NOT_SENT_CODES.has(code)) return true;
    const message = str(e.message);
    // the replica's delegation could not connect to its primary
    if (message !== undefined && WRITE_DELEGATION.test(message) && /error trying to connect/.test(message)) {
      return true;
    }
  }
  return false;
}

/**
 * Classifies an error thrown by a remote engine's COMMIT (sqld, Turso, or a replica delegating to its
 * primary), or by any request that carried a COMMIT (a batch ending in one). When the server answered (a
 * constraint checked at commit, TRANSACTION_TIMEOUT, SQLITE_BUSY, a refused token), nothing was applied and the
 * error is classified as usual. When the connection broke after the request may have left — a reset, a
 * timeout, a gateway error, the replica's delegation cut off — the outcome is unknown, and the error becomes
 * a {@link CommitOutcomeUnknownError}, which is never retried. A local file's COMMIT is always decided: don't
 * call this for it.
 */
export function classifyCommitError(err: unknown): unknown {
  const classified = classifyDatabaseError(err);
  if (!(classified instanceof TransientDatabaseError) || classified.reason !== "network") return classified;
  if (neverSent(err) || DECIDED_NETWORK_CODES.has(classified.code)) return classified;
  return new CommitOutcomeUnknownError({ cause: err });
}

/** True if the error (after classification) is worth retrying. */
export function isTransientDatabaseError(err: unknown): boolean {
  return classifyDatabaseError(err) instanceof TransientDatabaseError;
}
