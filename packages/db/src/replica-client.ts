import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import {
  type Client,
  type InArgs,
  type InStatement,
  LibsqlBatchError,
  LibsqlError,
  type Replicated,
  type ResultSet,
  type Transaction,
  type TransactionMode,
} from "@libsql/client";
import { ResultSetImpl } from "@libsql/core/util";
import { CONSTRAINT_CODE_NAMES, remoteSqliteFailure } from "./errors.js";
import { bindArgs, libsqlErrorOf, rowMaker } from "./local-client.js";
import { createSemaphore, type Release } from "./semaphore.js";

/**
 * The embedded replica's own connection, in a worker thread of its own, opened once for the life of the
 * client and never replaced.
 *
 * Why a worker: the native driver's calls are synchronous, and on a replica a write (and a sync) is a network
 * call to the primary: on the main thread one write with the primary stopped froze the event loop, `/healthz`
 * included. Here only the worker waits; reads do not come here at all (read units run on local read-only
 * connections, read-path.ts).
 *
 * Why opened once: each native replica connection carries its own replicator (the injector that writes the
 * primary's frames into the local file) and, with a sync interval, its own background sync task, and closing
 * it from JavaScript drops only the connection: the replicator lives on until the object is garbage-collected.
 * `@libsql/client` drops its replica connection when a ROLLBACK fails (the primary went away mid-transaction)
 * and opens another, so after a primary restart two replicators injected frames into one file: "database disk
 * image is malformed" (#12, finding 1). This client keeps its one connection through failures (a transaction
 * the primary lost is reset locally), and syncs periodically itself (the native `syncPeriod` is not used).
 */
export interface ReplicaClientOptions {
  /** The local copy. */
  path: string;
  syncUrl: string;
  authToken?: string | undefined;
  encryptionKey?: string | undefined;
  /** Pull from the primary every this many ms (besides after each write, which libSQL does itself). */
  syncIntervalMs?: number | undefined;
  /** Called when a periodic sync fails, and once when one succeeds again. */
  onSyncError?: ((err: Error | undefined) => void) | undefined;
}

export interface ReplicaClient extends Client {
  /** Opens the replica (bootstraps the local file from the primary if it is new). Rejects if it cannot. */
  readonly ready: Promise<void>;
  /** Settles when the worker has exited (after {@link Client.close}). */
  readonly stopped: Promise<void>;
}

interface SerializedError {
  message: string;
  code?: string;
  rawCode?: number;
  sqlite: boolean;
}

interface RawResult {
  reader: boolean;
  columns: string[];
  columnTypes: string[];
  rows: unknown[][];
  changes: number;
  lastInsertRowid: bigint | number | undefined;
}

type Op =
  | { op: "open"; reachable?: boolean }
  | { op: "execute"; sql: string; args: unknown[] | Record<string, unknown> }
  | { op: "batch"; begin: string | null; stmts: { sql: string; args: unknown[] | Record<string, unknown> }[] }
  | { op: "exec"; sql: string }
  | { op: "begin"; sql: string }
  | { op: "end"; sql: string }
  | { op: "sync" }
  | { op: "close" };

type Reply =
  | { id: number; event?: undefined; ok: true; result: unknown; inTransaction: boolean }
  | {
      id: number;
      event?: undefined;
      ok: false;
      error: SerializedError;
      index?: number;
      inTransaction: boolean;
    }
  | { id: -1; event: "sync"; error?: SerializedError };

/**
 * The worker (plain JavaScript, evaluated: it needs no build step and runs the same from src/ and dist/).
 * Messages are handled one at a time, in order; the periodic sync runs between them.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.libsql);
let db;
let syncTimer;
let syncFailing = false;
const serialize = (err) => ({
  message: String(err && err.message !== undefined ? err.message : err),
  code: err && typeof err.code === "string" ? err.code : undefined,
  rawCode: err && typeof err.rawCode === "number" ? err.rawCode : undefined,
  // exec() throws the native error unconverted (libsqlError: true), prepare() a SqliteError
  sqlite: !!err && (err instanceof Database.SqliteError || err.libsqlError === true),
});
const bind = (args) => {
  if (Array.isArray(args)) return args.map(blob);
  const named = {};
  for (const key of Object.keys(args)) named[key] = blob(args[key]);
  return named;
};
const blob = (v) => (v instanceof Uint8Array && !Buffer.isBuffer(v) ? Buffer.from(v.buffer, v.byteOffset, v.byteLength) : v);
const run = (sql, args) => {
  const stmt = db.prepare(sql);
  stmt.safeIntegers(true);
  if (!stmt.reader) {
    const info = stmt.run(bind(args));
    return { reader: false, columns: [], columnTypes: [], rows: [], changes: info.changes, lastInsertRowid: info.lastInsertRowid };
  }
  stmt.raw(true);
  const rows = stmt.all(bind(args));
  const columns = stmt.columns();
  return { reader: true, columns: columns.map((c) => c.name), columnTypes: columns.map((c) => c.type || ""), rows, changes: 0, lastInsertRowid: undefined };
};
// A transaction the primary lost (it went away mid-transaction, so neither a statement nor the ROLLBACK reached
// it) leaves the connection's local state "in a transaction". A ROLLBACK clears it when the primary answers;
// when it does not, a nested BEGIN is refused by the driver itself, without a network call, and that resets its
// state. The connection is kept either way: replacing it is what corrupted replicas (see replica-client.ts).
const resetTransaction = () => {
  if (!db.inTransaction) return;
  try { db.exec("ROLLBACK"); } catch {}
  if (!db.inTransaction) return;
  try { db.exec("BEGIN"); } catch {}
};
const handle = (msg) => {
  switch (msg.op) {
    case "open": {
      const o = workerData.options;
      db = new Database(o.path, { syncUrl: o.syncUrl, authToken: o.authToken, encryptionKey: o.encryptionKey, readYourWrites: true });
      db.prepare("SELECT 1").get();
      // bootstrap or catch up before serving: reads are answered from this file. Without the primary the
      // replica still opens, on what it has; a corrupt file fails the open (see replica-open.ts).
      let syncError = null;
      if (msg.reachable) {
        try { db.sync(); } catch (err) { syncError = serialize(err); }
      } else {
        syncError = { message: "sync error: the primary did not answer " + o.syncUrl, sqlite: false };
      }
      if (syncError !== null && /malformed|not a database/.test(syncError.message)) throw Object.assign(new Error(syncError.message), syncError);
      if (o.syncIntervalMs > 0) schedule(o.syncIntervalMs);
      return { syncError };
    }
    case "execute":
      return run(msg.sql, msg.args);
    case "batch": {
      // begin === null: inside the caller's transaction
      const results = [];
      if (msg.begin !== null) {
        resetTransaction();
        db.exec(msg.begin);
      }
      try {
        msg.stmts.forEach((s, i) => {
          try { results.push(run(s.sql, s.args)); } catch (err) { err.batchIndex = i; throw err; }
        });
        if (msg.begin !== null) db.exec("COMMIT");
      } finally {
        if (msg.begin !== null) resetTransaction();
      }
      return results;
    }
    case "exec":
      db.exec(msg.sql);
      return null;
    case "begin":
      resetTransaction();
      db.exec(msg.sql);
      return null;
    case "end":
      try { db.exec(msg.sql); } finally { resetTransaction(); }
      return null;
    case "sync": {
      const r = db.sync();
      return { frames_synced: r.frames_synced, frame_no: r.frame_no };
    }
    case "close":
      clearTimeout(syncTimer);
      if (db !== undefined) db.close();
      return null;
  }
  throw new Error("unknown operation " + msg.op);
};
const reply = (msg) => {
  try {
    const result = handle(msg);
    parentPort.postMessage({ id: msg.id, ok: true, result, inTransaction: db !== undefined && db.open && db.inTransaction });
  } catch (err) {
    const index = err && typeof err.batchIndex === "number" ? err.batchIndex : undefined;
    parentPort.postMessage({ id: msg.id, ok: false, error: serialize(err), index, inTransaction: db !== undefined && db.open && db.inTransaction });
  }
};
// Operations run one at a time, in order, on this chain; the periodic sync takes its turn on it too.
let chain = Promise.resolve();
const enqueue = (fn) => {
  chain = chain.then(fn).catch(() => undefined);
  return chain;
};
// A sync with the primary unreachable blocks this thread for ~3 s (the driver retries its handshake), and
// every write queued behind it would wait: the primary is probed first, without blocking, and a periodic sync
// runs only when it answers (any HTTP status: it is up). A sync right after a write is the driver's own.
const primaryAnswers = async () => {
  const base = workerData.options.syncUrl.replace(/^libsql:/, "https:").replace(/^wss?:/, (m) => (m === "ws:" ? "http:" : "https:"));
  try {
    const response = await fetch(new URL("/health", base), { signal: AbortSignal.timeout(1000) });
    await response.arrayBuffer();
    return true;
  } catch {
    return false;
  }
};
let closing = false;
const schedule = (interval) => {
  syncTimer = setTimeout(async () => {
    const reachable = await primaryAnswers();
    await enqueue(() => {
      if (closing) return;
      try {
        if (!reachable) throw new Error("sync error: the primary did not answer " + workerData.options.syncUrl);
        db.sync();
        if (syncFailing) parentPort.postMessage({ id: -1, event: "sync" });
        syncFailing = false;
      } catch (err) {
        syncFailing = true;
        parentPort.postMessage({ id: -1, event: "sync", error: serialize(err) });
      }
    });
    if (!closing) schedule(interval);
  }, interval);
};
parentPort.on("message", (msg) => {
  if (msg.op === "close") closing = true;
  if (msg.op === "open") {
    // the probe runs before the open's turn: nothing is queued ahead of it yet
    const probe = primaryAnswers();
    enqueue(async () => reply({ ...msg, reachable: await probe }));
  } else {
    enqueue(() => reply(msg));
  }
});
`;

/**
 * The error `@libsql/client` would have thrown for the same native error: a LibsqlError whose cause is the
 * driver's own error (message, `code`, `rawCode`), which is where the classifier reads a replica's
 * `WriteDelegation(...)` / `RemoteSqliteFailure(...)` messages (their code is empty).
 */
function toError(error: SerializedError, index?: number): Error {
  const remote = error.sqlite ? undefined : remoteSqliteFailure(error.message);
  if (remote !== undefined) {
    // a statement the primary refused (a delegated write): its codes as the local driver would report them
    return toError(
      {
        ...error,
        sqlite: true,
        code: CONSTRAINT_CODE_NAMES[remote.rawCode] ?? "",
        rawCode: remote.rawCode,
      },
      index,
    );
  }
  if (!error.sqlite) {
    const plain = new Error(error.message);
    return index === undefined
      ? plain
      : new LibsqlBatchError(error.message, index, "UNKNOWN", undefined, undefined, plain);
  }
  const native = Object.assign(new Error(error.message), { code: error.code ?? "", rawCode: error.rawCode });
  Object.defineProperty(native, "name", { value: "SqliteError" });
  const base = libsqlErrorOf(error.message, error.code ?? "", error.rawCode, native);
  if (index === undefined) return base;
  return new LibsqlBatchError(error.message, index, base.code, base.extendedCode, base.rawCode, native);
}

function toResultSet(raw: RawResult): ResultSet {
  if (!raw.reader) {
    const rowid = raw.lastInsertRowid === undefined ? undefined : BigInt(raw.lastInsertRowid);
    return new ResultSetImpl([], [], [], raw.changes, rowid);
  }
  const makeRow = rowMaker(raw.columns);
  return new ResultSetImpl(raw.columns, raw.columnTypes, raw.rows.map(makeRow), 0, undefined);
}

function normalize(stmtOrSql: InStatement | string, args?: InArgs) {
  const stmt = typeof stmtOrSql === "string" ? { sql: stmtOrSql, args: args ?? [] } : stmtOrSql;
  return typeof stmt === "string"
    ? { sql: stmt, args: [] as unknown[] }
    : { sql: stmt.sql, args: bindArgs(stmt.args) };
}

function normalizeBatchItem(stmt: InStatement | [string, InArgs?]) {
  return Array.isArray(stmt) ? normalize(stmt[0], stmt[1]) : normalize(stmt);
}

function beginStatement(mode: TransactionMode): string {
  switch (mode) {
    case "write":
      return "BEGIN IMMEDIATE";
    case "read":
      return "BEGIN TRANSACTION READONLY";
    case "deferred":
      return "BEGIN DEFERRED";
    default:
      throw new RangeError('Unknown transaction mode, supported values are "write", "read" and "deferred"');
  }
}

export function createReplicaClient(options: ReplicaClientOptions): ReplicaClient {
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      libsql: createRequire(import.meta.url).resolve("libsql"),
      options: {
        path: options.path,
        syncUrl: options.syncUrl,
        authToken: options.authToken ?? "",
        encryptionKey: options.encryptionKey,
        syncIntervalMs: options.syncIntervalMs ?? 0,
      },
    },
  });
  worker.unref();
  const pending = new Map<number, { resolve(value: unknown): void; reject(err: unknown): void }>();
  let nextId = 1;
  let inTransaction = false;
  let exited: Error | undefined;

  worker.on("message", (reply: Reply) => {
    if (reply.event === "sync") {
      options.onSyncError?.(reply.error === undefined ? undefined : toError(reply.error));
      return;
    }
    const waiter = pending.get(reply.id);
    if (waiter === undefined) return;
    pending.delete(reply.id);
    if (pending.size === 0) worker.unref();
    inTransaction = reply.inTransaction;
    if (reply.ok) waiter.resolve(reply.result);
    else waiter.reject(toError(reply.error, reply.index));
  });
  const failAll = (err: Error) => {
    exited ??= err;
    for (const waiter of pending.values()) waiter.reject(err);
    pending.clear();
  };
  worker.on("error", (err) => failAll(err));
  const stopped = new Promise<void>((resolve) =>
    worker.once("exit", () => {
      failAll(new LibsqlError("The embedded replica's worker has stopped", "CLIENT_CLOSED"));
      resolve();
    }),
  );

  function call<T>(op: Op): Promise<T> {
    if (exited !== undefined) return Promise.reject(exited);
    const id = nextId++;
    // a pending call keeps the process alive, as a native call would; an idle worker does not
    if (pending.size === 0) worker.ref();
    return new Promise<T>((resolve, reject) => {
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject });
      worker.postMessage({ ...op, id });
    });
  }

  const ready = call<{ syncError: SerializedError | null }>({ op: "open" }).then(({ syncError }) => {
    if (syncError !== null) options.onSyncError?.(toError(syncError));
  });
  ready.catch(() => undefined);
  // One connection: a transaction holds it until it settles; other calls wait (the writer queue above
  // already runs one write unit at a time, so this only orders tooling calls).
  const holder = createSemaphore(1);
  let closed = false;

  async function withConnection<T>(fn: () => Promise<T>): Promise<T> {
    if (closed) throw new LibsqlError("The client is closed", "CLIENT_CLOSED");
    await ready;
    const release = await holder.acquire();
    try {
      return await fn();
    } finally {
      release();
    }
  }

  class ReplicaTransaction implements Transaction {
    #release: Release | null;

    constructor(release: Release) {
      this.#release = release;
    }

    get closed(): boolean {
      return this.#release === null || !inTransaction;
    }

    async execute(stmtOrSql: InStatement | string, args?: InArgs): Promise<ResultSet> {
      this.#check();
      return toResultSet(await call<RawResult>({ op: "execute", ...normalize(stmtOrSql, args) }));
    }

    async batch(stmts: (InStatement | [string, InArgs?])[]): Promise<ResultSet[]> {
      this.#check();
      const raws = await call<RawResult[]>({
        op: "batch",
        begin: null,
        stmts: stmts.map(normalizeBatchItem),
      });
      return raws.map(toResultSet);
    }

    async executeMultiple(sql: string): Promise<void> {
      this.#check();
      await call({ op: "exec", sql });
    }

    async commit(): Promise<void> {
      this.#check();
      await this.#end("COMMIT");
    }

    async rollback(): Promise<void> {
      if (this.#release === null) return;
      await this.#end("ROLLBACK");
    }

    close(): void {
      if (this.#release === null) return;
      void this.#end("ROLLBACK").catch(() => undefined);
    }

    async #end(sql: string): Promise<void> {
      const release = this.#release;
      if (release === null) return;
      this.#release = null;
      try {
        await call({ op: "end", sql });
      } finally {
        release();
      }
    }

    #check(): void {
      if (this.closed) throw new LibsqlError("The transaction is closed", "TRANSACTION_CLOSED");
    }
  }

  const client: ReplicaClient = {
    ready,
    stopped,
    protocol: "file",
    get closed() {
      return closed;
    },
    execute: (stmtOrSql: InStatement | string, args?: InArgs) =>
      withConnection(async () =>
        toResultSet(await call<RawResult>({ op: "execute", ...normalize(stmtOrSql, args) })),
      ),
    batch: (stmts: (InStatement | [string, InArgs?])[], mode: TransactionMode = "deferred") =>
      withConnection(async () => {
        const raws = await call<RawResult[]>({
          op: "batch",
          begin: beginStatement(mode),
          stmts: stmts.map(normalizeBatchItem),
        });
        return raws.map(toResultSet);
      }),
    migrate: (stmts: InStatement[]) =>
      withConnection(async () => {
        const raws = await call<RawResult[]>({
          op: "batch",
          begin: "BEGIN DEFERRED",
          stmts: stmts.map(normalizeBatchItem),
        });
        return raws.map(toResultSet);
      }),
    async transaction(mode: TransactionMode = "write"): Promise<Transaction> {
      if (closed) throw new LibsqlError("The client is closed", "CLIENT_CLOSED");
      await ready;
      const release = await holder.acquire();
      try {
        await call({ op: "begin", sql: beginStatement(mode) });
      } catch (err) {
        release();
        throw err;
      }
      return new ReplicaTransaction(release);
    },
    executeMultiple: (sql: string) =>
      withConnection(async () => {
        await call({ op: "exec", sql });
      }),
    sync: () => withConnection(() => call<Replicated>({ op: "sync" })),
    async reconnect() {
      // the one connection is kept on purpose (see above): nothing to reconnect
    },
    close() {
      if (closed) return;
      closed = true;
      void call({ op: "close" })
        .catch(() => undefined)
        .finally(() => void worker.terminate());
    },
  } as ReplicaClient;
  return client;
}
