import { AsyncLocalStorage } from "node:async_hooks";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { type Client, createClient, type Transaction } from "@libsql/client";
import {
  createTableRelationsHelpers,
  type ExtractTablesWithRelations,
  extractTablesRelationalConfig,
  type RelationalSchemaConfig,
} from "drizzle-orm";
import { drizzle, type LibSQLDatabase, LibSQLSession, LibSQLTransaction } from "drizzle-orm/libsql";
import { SQLiteAsyncDialect } from "drizzle-orm/sqlite-core";
import {
  ConstraintViolationError,
  classifyDatabaseError,
  DatabaseClosedError,
  DeadlineExceededError,
  TransientDatabaseError,
} from "./errors.js";
import { createRetryRunner, type RetryEvent, type RetryPolicyOptions } from "./retry.js";
import { createSemaphore, type Semaphore } from "./semaphore.js";

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
  /** Embedded replica: background sync period. */
  syncIntervalMs?: number | undefined;
  /**
   * Encrypts a `file:` database (and an embedded replica's local copy) at rest with libSQL's own page
   * encryption. Every column and index is covered, unlike field-level encryption. Opening an encrypted
   * file without the key, or with another key, fails at start.
   */
  encryptionKey?: string | undefined;
  /** How long a `file:` connection waits for another process's lock before SQLITE_BUSY. Default 5,000 ms. */
  busyTimeoutMs?: number | undefined;
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
   * foreign-key {@link ConstraintViolationError}. A remote database gives no way to run a statement on the
   * transaction's connection before BEGIN, so there `PRAGMA defer_foreign_keys=ON` is used instead (checks move
   * to COMMIT, but ON DELETE actions of a dropped parent still fire).
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
   * The raw libSQL client (for `file:`, the pool that read units of work use). For tooling, health checks and
   * maintenance reads. Writes must go through {@link Database.write}: a write here bypasses the one-writer queue.
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
   * Runs `fn` in one write transaction (BEGIN IMMEDIATE), queued behind the other write units of work of this
   * process. Commits when `fn` resolves, rolls back when it throws (then rethrows the classified error).
   * The whole unit is retried on transient errors, so `fn` must not have side effects outside `tx`.
   */
  write<T>(fn: UnitOfWork<TSchema, T>, options?: WriteOptions): Promise<T>;
  /**
   * Runs `fn` with the writer's own client while holding the writer queue, outside any transaction: for
   * statements SQLite refuses inside one (VACUUM, `PRAGMA wal_checkpoint`) or that must not race the writer.
   * On `file:` the client has a single connection; do not start transactions on it. Retried like `write`.
   */
  exclusive<T>(fn: (client: Client) => Promise<T>, options?: UnitOfWorkOptions): Promise<T>;
  /** Write units of work waiting for the writer (not counting the one running). */
  readonly writeQueueDepth: number;
  /** Read units of work waiting for a connection. */
  readonly readQueueDepth: number;
  /** Embedded replica: pulls from the primary now. A no-op for the other modes. */
  sync(): Promise<void>;
  /** Refuses new units of work, waits for the running and queued ones, then closes the connections. */
  close(): Promise<void>;
}

const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
const DEFAULT_READ_CONCURRENCY = 16;

interface ParsedUrl {
  mode: DatabaseMode;
  /** Filesystem path for file/replica. */
  path?: string;
}

function parseDatabaseUrl(url: string, syncUrl: string | undefined): ParsedUrl {
  const colon = url.indexOf(":");
  const scheme = colon > 0 ? url.slice(0, colon).toLowerCase() : "";
  if (scheme === "file") {
    let rest = url.slice("file:".length);
    const query = rest.indexOf("?");
    if (query >= 0) rest = rest.slice(0, query);
    // file:///abs and file://localhost/abs carry an (empty) authority before the path
    if (rest.startsWith("//")) {
      const slash = rest.indexOf("/", 2);
      rest = slash >= 0 ? rest.slice(slash) : "";
    }
    const path = decodeURIComponent(rest);
    if (path === "" || path.startsWith(":memory:")) {
      // every pooled connection would open its own empty in-memory database
      throw new Error(
        `DATABASE_URL ${JSON.stringify(url)}: in-memory databases are not supported; use a file`,
      );
    }
    return { mode: syncUrl ? "replica" : "file", path: resolve(path) };
  }
  if (scheme === "libsql" || scheme === "http" || scheme === "https") {
    if (syncUrl) {
      throw new Error("an embedded replica needs a file: url (the local copy) and syncUrl (the primary)");
    }
    return { mode: "remote" };
  }
  throw new Error(
    `unsupported database URL scheme ${JSON.stringify(`${scheme}:`)}: use file:, libsql:, http: or https:`,
  );
}

/**
 * Opens a database.
 *
 * `file:` — two clients on the same WAL file: a writer with exactly one connection (so connection-level
 * pragmas set once — synchronous=NORMAL, foreign_keys — stay set, and foreign-key toggling for migrations
 * reaches the transaction's connection) and a pool for reads. SQLite's busy timeout (`busyTimeoutMs`) only
 * matters against other processes: in-process writers queue on a mutex instead.
 * Remote — one client; writes still go through the in-process queue so a process never competes with itself.
 * Embedded replica — one client with a single connection (libSQL's limit), so reads queue with writes.
 */
export async function createDatabase<TSchema extends Record<string, unknown> = Record<string, never>>(
  options: DatabaseOptions<TSchema>,
): Promise<Database<TSchema>> {
  const parsed = parseDatabaseUrl(options.url, options.syncUrl);
  const timeout = options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
  const readConcurrency = options.readConcurrency ?? DEFAULT_READ_CONCURRENCY;
  const logger = options.logger;

  let writer: Client;
  let reader: Client;
  if (parsed.mode === "remote") {
    writer = createClient({ url: options.url, authToken: options.authToken });
    reader = writer;
  } else {
    mkdirSync(dirname(parsed.path ?? "."), { recursive: true });
    if (parsed.mode === "replica") {
      writer = createClient({
        url: options.url,
        authToken: options.authToken,
        syncUrl: options.syncUrl,
        syncInterval: options.syncIntervalMs === undefined ? undefined : options.syncIntervalMs / 1000,
        encryptionKey: options.encryptionKey,
        timeout,
      });
      reader = writer;
    } else {
      writer = createClient({
        url: options.url,
        timeout,
        concurrency: 1,
        encryptionKey: options.encryptionKey,
      });
      try {
        // WAL persists in the file; it must be set before any transaction, and it is what lets readers
        // run beside the writer.
        await writer.execute("PRAGMA journal_mode=WAL");
        await configureWriterConnection(writer);
      } catch (err) {
        writer.close();
        if ((err as { code?: unknown }).code === "SQLITE_NOTADB") {
          throw new Error(
            `cannot open ${parsed.path}: not a database, or encrypted with another (or no) encryption key`,
            { cause: err },
          );
        }
        throw err;
      }
      // +2: room for ad-hoc `client.execute` calls beside readConcurrency open read transactions
      reader = createClient({
        url: options.url,
        timeout,
        concurrency: readConcurrency + 2,
        encryptionKey: options.encryptionKey,
      });
    }
  }

  const writeGate = createSemaphore(1);
  // An embedded replica has one connection: a read transaction while the write holds it would fail.
  const readGate: Semaphore = parsed.mode === "replica" ? writeGate : createSemaphore(readConcurrency);
  const runWithRetry = createRetryRunner(options.retry);
  const dialect = new SQLiteAsyncDialect();
  const relational = relationalConfig(options.schema);
  const inFlight = new Set<Promise<unknown>>();
  // Marks code running inside a unit of work, to refuse nesting: a write inside a write would wait for
  // the writer it holds (deadlock), and a read inside a write would not see the write's own changes.
  const insideUnit = new AsyncLocalStorage<true>();
  let closed = false;
  let orm: LibSQLDatabase<TSchema> | undefined;

  async function runTransaction<T>(
    kind: UnitOfWorkKind,
    fn: UnitOfWork<TSchema, T>,
    attempt: number,
    foreignKeys: "immediate" | "check-at-commit",
  ): Promise<T> {
    const client = kind === "write" ? writer : reader;
    const fkOffOutside = foreignKeys === "check-at-commit" && parsed.mode !== "remote";
    // query_only makes an accidental write in a read unit fail instead of silently bypassing the writer
    // queue; libSQL's "BEGIN TRANSACTION READONLY" is not enforced on local files. Reset before the
    // connection goes back to the pool, which `client` shares with tooling.
    const guardReadOnly = kind === "read" && parsed.mode === "file";
    if (fkOffOutside) await client.execute("PRAGMA foreign_keys=OFF");
    let libsqlTx: Transaction | undefined;
    try {
      const open = await client.transaction(kind === "write" ? "write" : "read");
      libsqlTx = open;
      if (guardReadOnly) await libsqlTx.execute("PRAGMA query_only=ON");
      if (foreignKeys === "check-at-commit" && !fkOffOutside) {
        await libsqlTx.execute("PRAGMA defer_foreign_keys=ON");
      }
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
      const result = await insideUnit.run(true, () => fn(tx, { kind, attempt, transaction: open }));
      if (foreignKeys === "check-at-commit") {
        const violations = await libsqlTx.execute("PRAGMA foreign_key_check");
        if (violations.rows.length > 0) {
          const first = violations.rows[0];
          throw new ConstraintViolationError(
            `foreign key check failed: ${violations.rows.length} row(s) reference missing parents`,
            "SQLITE_CONSTRAINT_FOREIGNKEY",
            "foreign_key",
            first === undefined ? undefined : `${String(first.table)} -> ${String(first.parent)}`,
          );
        }
      }
      if (kind === "write") {
        await libsqlTx.commit();
      } else {
        // A read has nothing to commit; ROLLBACK ends it too and, unlike COMMIT, cannot fail on a
        // statement left pending on the connection.
        if (guardReadOnly) await libsqlTx.execute("PRAGMA query_only=OFF");
        await libsqlTx.rollback();
      }
      return result;
    } catch (err) {
      // Always roll back, SQLITE_BUSY included: libSQL may otherwise keep holding the write lock.
      if (libsqlTx !== undefined && !libsqlTx.closed) {
        try {
          if (guardReadOnly) await libsqlTx.execute("PRAGMA query_only=OFF");
          await libsqlTx.rollback();
        } catch (rollbackError) {
          logger?.error?.({ err: rollbackError, kind }, "rollback failed");
        }
      }
      if (parsed.mode === "file" && classifyDatabaseError(err) instanceof TransientDatabaseError) {
        libsqlTx?.close();
        await discardPoisonedConnections(kind);
      }
      throw err;
    } finally {
      // returns the connection to the pool on every path (idempotent after commit/rollback)
      libsqlTx?.close();
      if (fkOffOutside) {
        try {
          await client.execute("PRAGMA foreign_keys=ON");
        } catch (err) {
          logger?.error?.({ err }, "could not re-enable foreign keys on the writer connection");
        }
      }
    }
  }

  /**
   * Measured with @libsql/client 0.18: after SQLITE_BUSY (e.g. BEGIN IMMEDIATE while another process
   * writes), the failed statement stays pending on its connection and every later COMMIT there fails with
   * "SQLITE_BUSY: cannot commit transaction - SQL statements in progress", so retries could never succeed.
   * Rolling back does not clear it; only a new connection does. The writer client is ours alone (we hold the
   * write mutex here), so it is reopened at once. The read pool is shared by concurrent reads, so it is
   * reopened only when no other read holds a connection; reads end with ROLLBACK, which a pending statement
   * does not block, so a poisoned reader connection is still usable meanwhile.
   */
  async function discardPoisonedConnections(kind: UnitOfWorkKind): Promise<void> {
    try {
      if (kind === "write") {
        writer.reconnect();
        await configureWriterConnection(writer);
      } else if (readGate.active <= 1) {
        reader.reconnect();
      }
    } catch (err) {
      logger?.error?.({ err, kind }, "could not reopen the connection after a transient error");
    }
  }

  /** Outside any transaction, on the writer connection, holding the writer queue (see Database.exclusive). */
  async function runExclusive<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    try {
      return await insideUnit.run(true, () => fn(writer));
    } catch (err) {
      if (parsed.mode === "file" && classifyDatabaseError(err) instanceof TransientDatabaseError) {
        await discardPoisonedConnections("write");
      }
      throw err;
    }
  }

  /** Reports one attempt of a transaction to `onUnitOfWork`; a throwing observer never breaks the unit. */
  async function observed<T>(kind: UnitOfWorkKind, attempt: number, run: () => Promise<T>): Promise<T> {
    const observe = options.onUnitOfWork;
    if (observe === undefined) return run();
    const started = performance.now();
    const report = (outcome: UnitOfWorkEvent["outcome"]) => {
      try {
        observe({ kind, outcome, durationMs: performance.now() - started, attempt });
      } catch (err) {
        logger?.error?.({ err }, "onUnitOfWork observer failed");
      }
    };
    try {
      const result = await run();
      report("commit");
      return result;
    } catch (err) {
      report("rollback");
      throw err;
    }
  }

  function runUnit<T>(
    kind: UnitOfWorkKind,
    body: (attempt: number) => Promise<T>,
    unitOptions: UnitOfWorkOptions,
  ): Promise<T> {
    if (closed) return Promise.reject(new DatabaseClosedError());
    if (insideUnit.getStore()) {
      return Promise.reject(
        new Error(`a ${kind} unit of work was started inside another one; use the tx you were given`),
      );
    }
    const gate = kind === "write" ? writeGate : readGate;
    const { deadline, signal } = unitOptions;

    const work = (async () => {
      // One signal for "stop waiting in the queue": the caller's abort or the deadline, whichever first.
      const stop = new AbortController();
      const onAbort = () => stop.abort(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      const timer =
        deadline === undefined
          ? undefined
          : setTimeout(
              () =>
                stop.abort(new DeadlineExceededError("the deadline passed while waiting for a connection")),
              Math.max(0, deadline - Date.now()),
            );
      timer?.unref();
      try {
        return await runWithRetry(
          async (attempt) => {
            const release = await gate.acquire(stop.signal);
            try {
              return await body(attempt);
            } finally {
              release();
            }
          },
          {
            deadline,
            signal,
            onRetry: (event) => {
              logger?.warn?.(
                { kind, attempt: event.attempt, delayMs: event.delayMs, code: event.error.code },
                "retrying unit of work after a transient database error",
              );
              options.onRetry?.({ ...event, kind });
              unitOptions.onRetry?.(event);
            },
          },
        );
      } finally {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
      }
    })();
    inFlight.add(work);
    const forget = () => inFlight.delete(work);
    work.then(forget, forget);
    return work;
  }

  return {
    mode: parsed.mode,
    client: reader,
    drizzle() {
      orm ??= drizzle(reader, options.schema ? { schema: options.schema } : {}) as LibSQLDatabase<TSchema>;
      return orm;
    },
    read: (fn, unitOptions = {}) =>
      runUnit(
        "read",
        (attempt) => observed("read", attempt, () => runTransaction("read", fn, attempt, "immediate")),
        unitOptions,
      ),
    write: (fn, unitOptions = {}) =>
      runUnit(
        "write",
        (attempt) =>
          observed("write", attempt, () =>
            runTransaction("write", fn, attempt, unitOptions.foreignKeys ?? "immediate"),
          ),
        unitOptions,
      ),
    exclusive: (fn, unitOptions = {}) => runUnit("write", () => runExclusive(fn), unitOptions),
    get writeQueueDepth() {
      return writeGate.waiting;
    },
    get readQueueDepth() {
      return readGate.waiting;
    },
    async sync() {
      if (parsed.mode !== "replica") return;
      try {
        await writer.sync();
      } catch (err) {
        throw new TransientDatabaseError(
          "embedded replica sync failed",
          "REPLICA_SYNC_FAILED",
          "replica_sync",
          {
            cause: err,
          },
        );
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.allSettled([...inFlight]);
      if (reader !== writer) reader.close();
      writer.close();
    },
  };
}

/** Per-connection settings of the single writer connection (WAL is a property of the file, set once). */
async function configureWriterConnection(writer: Client): Promise<void> {
  // NORMAL is durable against process crashes in WAL (an OS crash may lose the last commits) and measured
  // faster than FULL; it is a per-connection setting, which is one reason the writer has one connection.
  await writer.execute("PRAGMA synchronous=NORMAL");
  await writer.execute("PRAGMA foreign_keys=ON");
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
