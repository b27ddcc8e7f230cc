import { AsyncLocalStorage, AsyncResource } from "node:async_hooks";
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
import { createLocalClient } from "./local-client.js";
import { type GuardedReadTransaction, guardReadTransaction } from "./read-only-guard.js";
import { createRetryRunner, type RetryEvent, type RetryPolicyOptions } from "./retry.js";
import { createSemaphore, type Release, type Semaphore } from "./semaphore.js";
import { bindTransaction } from "./unit-transaction.js";

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

const DEFAULT_BUSY_TIMEOUT_MS = 5_000;
const DEFAULT_READ_CONCURRENCY = 16;
/** Most write units of work that share one transaction (group commit, `file:` only). */
const WRITE_GROUP_MAX = 64;
/** Connections of the `file:` tooling client ({@link Database.client}): ad-hoc calls borrow one only briefly. */
const TOOLING_CONCURRENCY = 2;

/**
 * The `file:` client used only by read units of work. Every connection gets `PRAGMA query_only=ON` once, when
 * the pool is opened (`primed`), and keeps it: read units then pay no statement for the read-only guard.
 * `primed` turns false if the pool may have replaced a connection behind our back (a failed ROLLBACK makes it
 * drop one); read units then set the pragma themselves until a fresh pool replaces this one.
 */
interface ReadPool {
  client: Client;
  primed: boolean;
  /** Read units holding a transaction on this pool. */
  holders: number;
  /** Replaced by a fresh pool: closed when the last holder leaves. */
  retired: boolean;
}

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
 * `file:` — three clients on the same WAL file: a writer with exactly one connection (so connection-level
 * pragmas set once — synchronous=NORMAL, foreign_keys — stay set, and foreign-key toggling for migrations
 * reaches the transaction's connection), a read-only pool for read units of work, and a small pool for
 * tooling. SQLite's busy timeout (`busyTimeoutMs`) only matters against other processes: in-process writers
 * queue instead (and queued writes share one transaction: group commit).
 * Remote — one client; writes still go through the in-process queue so a process never competes with itself.
 * Embedded replica — one client with a single connection (libSQL's limit), so reads queue with writes.
 */
export async function createDatabase<TSchema extends Record<string, unknown> = Record<string, never>>(
  options: DatabaseOptions<TSchema>,
): Promise<Database<TSchema>> {
  const parsed = parseDatabaseUrl(options.url, options.syncUrl);
  const localPath = parsed.path ?? "";
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
      writer = createLocalClient({
        path: localPath,
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
      // tooling only (Database.client, drizzle()); read units have their own read-only pool below
      reader = createLocalClient({
        path: localPath,
        timeout,
        concurrency: TOOLING_CONCURRENCY,
        encryptionKey: options.encryptionKey,
      });
    }
  }

  /** Opens a read pool with exactly `readConcurrency` connections, each set to `query_only` once. */
  async function openReadPool(): Promise<ReadPool> {
    const client = createLocalClient({
      path: localPath,
      timeout,
      concurrency: readConcurrency,
      encryptionKey: options.encryptionKey,
    });
    try {
      // Concurrent transactions each pin a distinct connection, so this opens the pool's every connection
      // (nobody else can see the client yet). At most readConcurrency read units hold one at once
      // (readGate), so the pool never opens another.
      const opened = await Promise.allSettled(
        Array.from({ length: readConcurrency }, () => client.transaction("read")),
      );
      try {
        for (const result of opened) {
          if (result.status === "rejected") throw result.reason;
          await result.value.execute("PRAGMA query_only=ON");
        }
      } finally {
        for (const result of opened) if (result.status === "fulfilled") result.value.close();
      }
      return { client, primed: true, holders: 0, retired: false };
    } catch (err) {
      client.close();
      throw err;
    }
  }

  let readPool: ReadPool | undefined;
  if (parsed.mode === "file") {
    try {
      readPool = await openReadPool();
    } catch (err) {
      reader.close();
      writer.close();
      throw err;
    }
  }
  let refreshingReadPool: Promise<void> | undefined;

  /** Swaps in a freshly primed read pool; the old one closes when its last read unit leaves it. */
  function refreshReadPool(): Promise<void> {
    refreshingReadPool ??= (async () => {
      try {
        const fresh = await openReadPool();
        const old = readPool;
        if (closed || old === undefined) {
          fresh.client.close();
          return;
        }
        readPool = fresh;
        old.retired = true;
        if (old.holders === 0) old.client.close();
      } catch (err) {
        if (readPool !== undefined) readPool.primed = false;
        logger?.error?.({ err }, "could not reopen the read pool");
      } finally {
        refreshingReadPool = undefined;
      }
    })();
    return refreshingReadPool;
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

  /** drizzle's transaction handle over a libSQL transaction we opened ourselves. */
  function makeTx(client: Client, libsqlTx: Transaction): Tx<TSchema> {
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
  }

  async function runTransaction<T>(
    kind: UnitOfWorkKind,
    fn: UnitOfWork<TSchema, T>,
    attempt: number,
    foreignKeys: "immediate" | "check-at-commit",
  ): Promise<T> {
    // file: read units run on the read pool, whose connections all have query_only=ON (see ReadPool): an
    // accidental write in a read unit fails instead of silently bypassing the writer queue (libSQL's
    // "BEGIN TRANSACTION READONLY" is not enforced on local files). The pragma is never reset: the pool
    // serves read units only. Elsewhere (sqld, a replica) the pragma is refused: see read-only-guard.ts.
    const pool = kind === "read" ? readPool : undefined;
    const client = kind === "write" ? writer : (pool?.client ?? reader);
    const guardReadOnly = pool !== undefined && !pool.primed;
    const fkOffOutside = foreignKeys === "check-at-commit" && parsed.mode !== "remote";
    if (pool !== undefined) pool.holders++;
    let libsqlTx: Transaction | undefined;
    let guarded: GuardedReadTransaction | undefined;
    try {
      if (fkOffOutside) await client.execute("PRAGMA foreign_keys=OFF");
      const opened = await client.transaction(kind === "write" ? "write" : "read");
      if (kind === "read" && pool === undefined) guarded = guardReadTransaction(opened);
      const open: Transaction = guarded ?? opened;
      libsqlTx = open;
      if (guardReadOnly) await libsqlTx.execute("PRAGMA query_only=ON");
      if (foreignKeys === "check-at-commit" && !fkOffOutside) {
        // Remote: there is no statement before BEGIN on the transaction's own connection (one Hrana stream),
        // so end the empty transaction just begun, switch enforcement off there, and begin again: `fn` runs
        // in the second transaction, with foreign keys off, as on `file:`. The stream's connection is closed
        // with it, so the setting never reaches another unit of work. A failure here fails the unit before
        // `fn` runs.
        await libsqlTx.executeMultiple("COMMIT; PRAGMA foreign_keys=OFF; BEGIN IMMEDIATE");
      }
      const tx = makeTx(client, open);
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
      } else if (guarded !== undefined) {
        await guarded.finish();
      } else {
        // A read has nothing to commit; ROLLBACK ends it too and, unlike COMMIT, cannot fail on a
        // statement left pending on the connection.
        await libsqlTx.rollback();
      }
      return result;
    } catch (err) {
      // Always roll back, SQLITE_BUSY included: libSQL may otherwise keep holding the write lock.
      if (libsqlTx !== undefined && !libsqlTx.closed) {
        try {
          await libsqlTx.rollback();
        } catch (rollbackError) {
          logger?.error?.({ err: rollbackError, kind }, "rollback failed");
          // the pool drops a connection it cannot roll back and may open an unguarded one in its place
          if (pool !== undefined) {
            pool.primed = false;
            void refreshReadPool();
          }
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
      if (pool !== undefined) {
        pool.holders--;
        if (pool.retired && pool.holders === 0) pool.client.close();
      }
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
   * write mutex here), so it is reopened at once. The read pool is shared by concurrent reads, so a fresh
   * pool replaces it and the old one closes when its last read leaves; reads end with ROLLBACK, which a
   * pending statement does not block, so a poisoned reader connection is still usable meanwhile.
   */
  async function discardPoisonedConnections(kind: UnitOfWorkKind): Promise<void> {
    try {
      if (kind === "write") {
        writer.reconnect();
        await configureWriterConnection(writer);
      } else {
        await refreshReadPool();
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
  function reportUnit(
    kind: UnitOfWorkKind,
    attempt: number,
    started: number,
    outcome: UnitOfWorkEvent["outcome"],
  ): void {
    try {
      options.onUnitOfWork?.({ kind, outcome, durationMs: performance.now() - started, attempt });
    } catch (err) {
      logger?.error?.({ err }, "onUnitOfWork observer failed");
    }
  }

  async function observed<T>(kind: UnitOfWorkKind, attempt: number, run: () => Promise<T>): Promise<T> {
    if (options.onUnitOfWork === undefined) return run();
    const started = performance.now();
    const report = (outcome: UnitOfWorkEvent["outcome"]) => reportUnit(kind, attempt, started, outcome);
    try {
      const result = await run();
      report("commit");
      return result;
    } catch (err) {
      report("rollback");
      throw err;
    }
  }

  // ---- Group commit (file: only) ----
  // Write units that queue while the writer is busy run together when it frees up: one BEGIN IMMEDIATE, one
  // SAVEPOINT per unit (in queue order, so each sees the earlier ones' writes, as if serial), one COMMIT.
  // SAVEPOINT + RELEASE per unit replace BEGIN + COMMIT per unit (measured: bench/write-units.ts).
  // `check-at-commit` units (migrations) and `exclusive` run alone, through the same FIFO writer gate.

  interface GroupMember {
    fn: UnitOfWork<TSchema, unknown>;
    attempt: number;
    /** Aborts waiting (caller's signal or deadline); checked again just before the unit's savepoint. */
    stop: AbortSignal;
    /** The caller's async context: `fn` runs in it, not in that of whoever started the group. */
    context: AsyncResource;
    resolve(value: unknown): void;
    reject(err: unknown): void;
    onAbort(): void;
  }
  interface WriteBatch {
    members: GroupMember[];
    started: boolean;
  }
  type MemberOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

  const grouping = parsed.mode === "file";
  /** The batch new write units join; closed when it starts or when a solo job queues behind it (FIFO). */
  let openBatch: WriteBatch | undefined;
  /** Grouped units that have not started yet (writeQueueDepth). */
  const waitingMembers = new Set<GroupMember>();
  /** Solo jobs (exclusive, check-at-commit) waiting for the writer gate. */
  let soloWaiting = 0;

  function submitGrouped<T>(fn: UnitOfWork<TSchema, T>, attempt: number, stop: AbortSignal): Promise<T> {
    if (stop.aborted) return Promise.reject(stop.reason);
    return new Promise<T>((resolve, reject) => {
      let batch = openBatch;
      if (batch === undefined || batch.members.length >= WRITE_GROUP_MAX) {
        batch = { members: [], started: false };
        openBatch = batch;
        void runBatch(batch);
      }
      const target = batch;
      const member: GroupMember = {
        fn: fn as UnitOfWork<TSchema, unknown>,
        attempt,
        stop,
        context: new AsyncResource("autoforge.db.WriteUnit"),
        resolve: resolve as (value: unknown) => void,
        reject,
        onAbort: () => {
          // once the batch runs, the member is skipped at its turn instead (see runGroup)
          if (target.started || !waitingMembers.delete(member)) return;
          target.members.splice(target.members.indexOf(member), 1);
          reject(stop.reason);
        },
      };
      stop.addEventListener("abort", member.onAbort, { once: true });
      target.members.push(member);
      waitingMembers.add(member);
    });
  }

  async function runBatch(batch: WriteBatch): Promise<void> {
    const release = await writeGate.acquire();
    if (openBatch === batch) openBatch = undefined;
    batch.started = true;
    try {
      if (batch.members.length > 0) await runGroup(batch.members);
    } catch (err) {
      // runGroup settles every member itself; this only guards against a bug leaving callers hanging
      logger?.error?.({ err }, "write group failed");
      for (const member of batch.members) member.reject(err);
    } finally {
      release();
    }
  }

  /**
   * One transaction for `members`, a savepoint each. A unit that throws is rolled back to its savepoint and
   * gets its own error; the others go on. Every promise settles only after COMMIT (or the group's failure):
   * no caller sees success for an uncommitted change. A transient error (BEGIN, a unit's statement, COMMIT)
   * or a failed savepoint statement ends the whole group: it is rolled back and every unit without an error
   * of its own fails with it (transient: each unit retries, bounded by its own attempts and deadline).
   */
  async function runGroup(members: GroupMember[]): Promise<void> {
    const outcomes = new Map<GroupMember, MemberOutcome>();
    const started = new Map<GroupMember, number>();
    let failed = false;
    let groupError: unknown;
    const fail = (err: unknown) => {
      failed = true;
      groupError = err;
    };
    // A group of one needs no savepoint: a failing unit rolls the transaction back, as without grouping.
    const savepoints = members.length > 1;
    let libsqlTx: Transaction | undefined;
    try {
      try {
        libsqlTx = await writer.transaction("write");
      } catch (err) {
        fail(err);
      }
      const open = libsqlTx;
      for (const member of members) {
        if (failed || open === undefined) break;
        waitingMembers.delete(member);
        member.stop.removeEventListener("abort", member.onAbort);
        if (member.stop.aborted) {
          outcomes.set(member, { ok: false, error: member.stop.reason });
          continue;
        }
        started.set(member, performance.now());
        try {
          if (savepoints) await open.execute("SAVEPOINT unit_of_work");
        } catch (err) {
          fail(err);
          break;
        }
        let outcome: MemberOutcome;
        try {
          const tx = makeTx(writer, open);
          const ctx: UnitOfWorkContext = { kind: "write", attempt: member.attempt, transaction: open };
          const value = await member.context.runInAsyncScope(() =>
            insideUnit.run(true, () => member.fn(tx, ctx)),
          );
          outcome = { ok: true, value };
        } catch (err) {
          outcome = { ok: false, error: err };
        }
        outcomes.set(member, outcome);
        try {
          if (!outcome.ok) {
            // transient: the connection may be poisoned (see discardPoisonedConnections)
            if (!savepoints || classifyDatabaseError(outcome.error) instanceof TransientDatabaseError) {
              fail(outcome.error);
              break;
            }
            await open.execute("ROLLBACK TO unit_of_work");
          }
          if (savepoints) await open.execute("RELEASE unit_of_work");
        } catch (err) {
          fail(err);
          break;
        }
      }
      if (!failed && open !== undefined) {
        try {
          await open.commit();
        } catch (err) {
          fail(err);
        }
      }
      if (failed) {
        // Always roll back, SQLITE_BUSY included: libSQL may otherwise keep holding the write lock.
        if (libsqlTx !== undefined && !libsqlTx.closed) {
          try {
            await libsqlTx.rollback();
          } catch (rollbackError) {
            logger?.error?.({ err: rollbackError, kind: "write" }, "rollback failed");
          }
        }
        if (classifyDatabaseError(groupError) instanceof TransientDatabaseError) {
          libsqlTx?.close();
          await discardPoisonedConnections("write");
        }
      }
    } finally {
      libsqlTx?.close();
    }
    for (const member of members) {
      waitingMembers.delete(member);
      member.stop.removeEventListener("abort", member.onAbort);
      const outcome = outcomes.get(member);
      const began = started.get(member);
      const committed = !failed && outcome?.ok === true;
      if (began !== undefined) reportUnit("write", member.attempt, began, committed ? "commit" : "rollback");
      if (committed) member.resolve(outcome.value);
      else member.reject(outcome !== undefined && !outcome.ok ? outcome.error : groupError);
    }
  }

  /** Runs `body` holding a permit of `gate`; a write-gate job runs alone (closes the open batch: FIFO). */
  function gated<T>(gate: Semaphore, body: (attempt: number) => Promise<T>) {
    return async (attempt: number, stop: AbortSignal): Promise<T> => {
      const solo = grouping && gate === writeGate;
      if (solo) {
        openBatch = undefined;
        soloWaiting++;
      }
      let release: Release;
      try {
        release = await gate.acquire(stop);
      } finally {
        if (solo) soloWaiting--;
      }
      try {
        return await body(attempt);
      } finally {
        release();
      }
    };
  }

  function runUnit<T>(
    kind: UnitOfWorkKind,
    attemptOnce: (attempt: number, stop: AbortSignal) => Promise<T>,
    unitOptions: UnitOfWorkOptions,
  ): Promise<T> {
    if (closed) return Promise.reject(new DatabaseClosedError());
    if (insideUnit.getStore()) {
      return Promise.reject(
        new Error(`a ${kind} unit of work was started inside another one; use the tx you were given`),
      );
    }
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
        return await runWithRetry((attempt) => attemptOnce(attempt, stop.signal), {
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
        });
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
        gated(readGate, (attempt) =>
          observed("read", attempt, () => runTransaction("read", fn, attempt, "immediate")),
        ),
        unitOptions,
      ),
    write: (fn, unitOptions = {}) => {
      const foreignKeys = unitOptions.foreignKeys ?? "immediate";
      if (grouping && foreignKeys === "immediate") {
        return runUnit("write", (attempt, stop) => submitGrouped(fn, attempt, stop), unitOptions);
      }
      return runUnit(
        "write",
        gated(writeGate, (attempt) =>
          observed("write", attempt, () => runTransaction("write", fn, attempt, foreignKeys)),
        ),
        unitOptions,
      );
    },
    exclusive: (fn, unitOptions = {}) =>
      runUnit(
        "write",
        gated(writeGate, () => runExclusive(fn)),
        unitOptions,
      ),
    get writeQueueDepth() {
      return grouping ? waitingMembers.size + soloWaiting : writeGate.waiting;
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
      await refreshingReadPool;
      readPool?.client.close();
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
