import type { Client, Transaction } from "@libsql/client";
import type { ExtractTablesWithRelations } from "drizzle-orm";
import type { LibSQLDatabase, LibSQLTransaction } from "drizzle-orm/libsql";
import type { RetryEvent, RetryPolicyOptions } from "./retry.js";

// The public types of a Database (re-exported by database.ts and the package index).

/** pino-compatible subset; every method is optional so `console` or a stub works too. */
export interface DatabaseLogger {
  debug?(obj: object, msg: string): void;
  info?(obj: object, msg: string): void;
  warn?(obj: object, msg: string): void;
  error?(obj: object, msg: string): void;
}

export type UnitOfWorkKind = "read" | "write";

export interface DatabaseRetryEvent extends RetryEvent {
  kind: UnitOfWorkKind;
}

/** One attempt of a read or write unit of work, from BEGIN to its end (the queue wait is not included). */
export interface UnitOfWorkEvent {
  kind: UnitOfWorkKind;
  /** `commit`: `fn` returned and the unit ended normally; `rollback`: it threw (and a retry may follow). */
  outcome: "commit" | "rollback";
  durationMs: number;
  /** 1 for the first try, 2 for the first retry, ... */
  attempt: number;
}

export interface DatabaseOptions<TSchema extends Record<string, unknown> = Record<string, never>> {
  /** `file:` path (embedded, WAL), or `libsql://` / `http://` / `https://` (sqld, Turso). */
  url: string;
  /** Token for a remote database (or the primary of an embedded replica). */
  authToken?: string | undefined;
  /** Embedded replica: `url` is the local `file:` copy, this is the primary it syncs from. */
  syncUrl?: string | undefined;
  /**
   * Embedded replica: how often it pulls the primary's changes (its own writes it has at once). Reads are
   * answered from the local copy, so this bounds how stale they can be. Default 1,000 ms.
   */
  syncIntervalMs?: number | undefined;
  /**
   * Encrypts a `file:` database (and an embedded replica's local copy) at rest with libSQL's own page
   * encryption. Every column and index is covered, unlike field-level encryption. Opening an encrypted
   * file without the key, or with another key, fails at start.
   */
  encryptionKey?: string | undefined;
  /** How long a `file:` connection waits for another process's lock before SQLITE_BUSY. Default 5,000 ms. */
  busyTimeoutMs?: number | undefined;
  /**
   * Remote engines (sqld, Turso): how long one HTTP request may wait for the server's answer before it is
   * abandoned (a transient network error; a COMMIT's outcome is then unknown). Without it a server that stops
   * answering without closing its sockets (a stopped process, a dead route) keeps requests pending forever.
   * Default 30,000 ms: above sqld's 5 s transaction limit and a long migration statement.
   */
  requestTimeoutMs?: number | undefined;
  /** The service's Drizzle schema; types `tx` (incl. `tx.query.<table>`). */
  schema?: TSchema | undefined;
  logger?: DatabaseLogger | undefined;
  /** Retry of whole units of work on transient errors. */
  retry?: RetryPolicyOptions | undefined;
  /** Called before every retry of any unit of work (metrics). */
  onRetry?: ((event: DatabaseRetryEvent) => void) | undefined;
  /**
   * Called after every attempt of a read or write unit of work (metrics: transaction durations). Not called
   * for {@link Database.exclusive}, which runs outside a transaction.
   */
  onUnitOfWork?: ((event: UnitOfWorkEvent) => void) | undefined;
  /**
   * Read units of work that may hold a transaction at once (each holds one pooled connection).
   * Default 16. Ignored for an embedded replica, which has a single connection.
   */
  readConcurrency?: number | undefined;
}

export interface UnitOfWorkOptions {
  /** Epoch ms (e.g. the RPC deadline). No attempt starts and no retry sleeps past it. */
  deadline?: number | undefined;
  /** Aborts waiting for a connection/the writer and further retries (not a statement already running). */
  signal?: AbortSignal | undefined;
  /** Called before each retry of this unit of work, in addition to the database-wide `onRetry`. */
  onRetry?: ((event: RetryEvent) => void) | undefined;
}

export interface WriteOptions extends UnitOfWorkOptions {
  /**
   * `"immediate"` (default): foreign keys are enforced statement by statement.
   * `"check-at-commit"`: for schema changes that rebuild tables (drizzle-kit's "create __new_x, copy, drop x,
   * rename"). SQLite ignores `PRAGMA foreign_keys` inside a transaction and `DROP TABLE` of a parent runs an
   * implicit DELETE that fails (or cascades!) while enforcement is on. So on a `file:` database enforcement is
   * switched off on the writer connection *before* BEGIN (where SQLite honours it) and back on after, and
   * `PRAGMA foreign_key_check` must come back empty before COMMIT, or the unit of work rolls back with a
   * foreign-key {@link ConstraintViolationError}. On a remote database (sqld, Turso) the same holds on the
   * transaction's own connection: its first, empty transaction is committed, enforcement switched off, and a
   * new one begun before the unit runs, so dropping a parent neither fails nor cascades there either.
   */
  foreignKeys?: "immediate" | "check-at-commit" | undefined;
}

/** The Drizzle handle a unit of work receives: the full query builder plus `run`/`all`/`get`/`values` for raw SQL. */
export type Tx<TSchema extends Record<string, unknown> = Record<string, never>> = LibSQLTransaction<
  TSchema,
  ExtractTablesWithRelations<TSchema>
>;

export interface UnitOfWorkContext {
  kind: UnitOfWorkKind;
  /** 1 for the first try, 2 for the first retry, ... */
  attempt: number;
  /** The underlying libSQL transaction, for `executeMultiple` of SQL scripts. Never commit or roll it back. */
  transaction: Transaction;
}

export type UnitOfWork<TSchema extends Record<string, unknown>, T> = (
  tx: Tx<TSchema>,
  ctx: UnitOfWorkContext,
) => Promise<T>;

export type DatabaseMode = "file" | "remote" | "replica";

export interface Database<TSchema extends Record<string, unknown> = Record<string, never>> {
  readonly mode: DatabaseMode;
  /**
   * The raw libSQL client for tooling, health checks and maintenance reads (for `file:`, a small pool of its own:
   * read units of work use a private pool whose connections are read-only). Writes must go through
   * {@link Database.write}: a write here bypasses the one-writer queue.
   */
  readonly client: Client;
  /** A non-transactional Drizzle instance over {@link Database.client} (same caveat for writes). */
  drizzle(): LibSQLDatabase<TSchema>;
  /**
   * Runs `fn` in one read transaction on its own pooled connection (a snapshot; never waits behind the
   * writer on `file:` in WAL mode). Writing inside fails with SQLITE_READONLY. Retried on transient errors.
   */
  read<T>(fn: UnitOfWork<TSchema, T>, options?: UnitOfWorkOptions): Promise<T>;
  /**
   * Runs `fn` in a write transaction (BEGIN IMMEDIATE), queued behind the other write units of work of this
   * process. Commits when `fn` resolves, rolls back when it throws (then rethrows the classified error).
   * The whole unit is retried on transient errors, so `fn` must not have side effects outside `tx`.
   * On `file:`, units that queued together share one transaction, each inside its own SAVEPOINT, run in queue
   * order (group commit): a unit that throws rolls back alone, and every unit settles only after the COMMIT.
   * `foreignKeys: "check-at-commit"` units always run alone.
   */
  write<T>(fn: UnitOfWork<TSchema, T>, options?: WriteOptions): Promise<T>;
  /**
   * Runs `fn` with the writer's own client while holding the writer queue, outside any transaction: for
   * statements SQLite refuses inside one (VACUUM, `PRAGMA wal_checkpoint`) or that must not race the writer.
   * On `file:` the client has a single connection; do not start transactions on it. Retried like `write`.
   */
  exclusive<T>(fn: (client: Client) => Promise<T>, options?: UnitOfWorkOptions): Promise<T>;
  /** Write units of work waiting for the writer or for their turn in a running group (not the running one). */
  readonly writeQueueDepth: number;
  /** Read units of work waiting for a connection. */
  readonly readQueueDepth: number;
  /** Embedded replica: pulls from the primary now. A no-op for the other modes. */
  sync(): Promise<void>;
  /** Refuses new units of work, waits for the running and queued ones, then closes the connections. */
  close(): Promise<void>;
}
