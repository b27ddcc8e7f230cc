import { AsyncLocalStorage } from "node:async_hooks";
import { drizzle, type LibSQLDatabase } from "drizzle-orm/libsql";
import type { Database, DatabaseOptions, UnitOfWorkKind, UnitOfWorkOptions } from "./database-types.js";
import { openEngine } from "./engine.js";
import { DatabaseClosedError, DeadlineExceededError, TransientDatabaseError } from "./errors.js";
import { createReadAhead } from "./pipelined-write.js";
import { createReadPath, DEFAULT_READ_CONCURRENCY } from "./read-path.js";
import { createSyncAfterWrite } from "./replica-sync.js";
import { createRetryRunner } from "./retry.js";
import { createSemaphore, type Release, type Semaphore } from "./semaphore.js";
import {
  createUnitReporter,
  observed,
  runExclusive,
  runWriteTransaction,
  type UnitRuntime,
} from "./unit-of-work.js";
import { createTxFactory } from "./unit-transaction.js";
import { createWriteQueue } from "./write-queue.js";

export type {
  Database,
  DatabaseLogger,
  DatabaseMode,
  DatabaseOptions,
  DatabaseRetryEvent,
  Tx,
  UnitOfWork,
  UnitOfWorkContext,
  UnitOfWorkEvent,
  UnitOfWorkKind,
  UnitOfWorkOptions,
  WriteOptions,
} from "./database-types.js";

// createDatabase puts the pieces together: the engine's clients (engine.ts), the read path (read-path.ts), the
// write queue with group commit (write-queue.ts) and single write units (unit-of-work.ts), under one retry,
// deadline and shutdown policy (here).

/**
 * Opens a database.
 *
 * `file:` — three clients on the same WAL file: a writer with exactly one connection, a read-only pool for
 * read units of work, and a small pool for tooling. SQLite's busy timeout (`busyTimeoutMs`) only matters
 * against other processes: in-process writers queue instead (and queued writes share one transaction: group
 * commit).
 * Remote — one client; writes still go through the in-process queue so a process never competes with itself.
 * Embedded replica — reads on a read-only pool of the local copy, write units on the primary's HTTP API (as
 * remote), each followed by a sync of the replica connection before it returns.
 */
export async function createDatabase<TSchema extends Record<string, unknown> = Record<string, never>>(
  options: DatabaseOptions<TSchema>,
): Promise<Database<TSchema>> {
  const engine = await openEngine(options);
  const { writer, reader } = engine;
  const logger = options.logger;
  const readConcurrency = options.readConcurrency ?? DEFAULT_READ_CONCURRENCY;

  let closed = false;
  let orm: LibSQLDatabase<TSchema> | undefined;
  const runtime: UnitRuntime<TSchema> = {
    engine,
    logger,
    makeTx: createTxFactory(options.schema),
    insideUnit: new AsyncLocalStorage<true>(),
    reportUnit: createUnitReporter(options.onUnitOfWork, logger),
    isClosed: () => closed,
    readAhead: createReadAhead(),
  };
  const observing = options.onUnitOfWork !== undefined;

  let readPath: Awaited<ReturnType<typeof createReadPath<TSchema>>>;
  try {
    readPath = await createReadPath(runtime, { readConcurrency, encryptionKey: options.encryptionKey });
  } catch (err) {
    if (reader !== writer) reader.close();
    writer.close();
    throw err;
  }
  const writeQueue = createWriteQueue(runtime);
  const replica = engine.replica;
  const syncAfterWrite =
    replica === undefined ? undefined : createSyncAfterWrite(() => replica.sync(), logger);
  // reads never wait for the writer: a pool of local connections (file:, a replica), or HTTP streams (remote)
  const readGate: Semaphore = createSemaphore(readConcurrency);
  const runWithRetry = createRetryRunner(options.retry);
  const inFlight = new Set<Promise<unknown>>();

  /** Runs `body` holding a read permit. */
  function gatedRead<T>(body: (attempt: number) => Promise<T>) {
    return async (attempt: number, stop: AbortSignal): Promise<T> => {
      const release: Release = await readGate.acquire(stop);
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
    if (runtime.insideUnit.getStore()) {
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
    mode: engine.mode,
    client: reader,
    drizzle() {
      orm ??= drizzle(reader, options.schema ? { schema: options.schema } : {}) as LibSQLDatabase<TSchema>;
      return orm;
    },
    read: (fn, unitOptions = {}) =>
      runUnit(
        "read",
        gatedRead((attempt) =>
          observed(runtime, observing, "read", attempt, () => readPath.run(fn, attempt)),
        ),
        unitOptions,
      ),
    write: (fn, unitOptions = {}) => {
      const foreignKeys = unitOptions.foreignKeys ?? "immediate";
      if (writeQueue.grouping && foreignKeys === "immediate") {
        return runUnit("write", (attempt, stop) => writeQueue.submit(fn, attempt, stop), unitOptions);
      }
      const solo = writeQueue.solo((attempt) =>
        observed(runtime, observing, "write", attempt, () =>
          runWriteTransaction(runtime, fn, attempt, foreignKeys),
        ),
      );
      if (syncAfterWrite === undefined) return runUnit("write", solo, unitOptions);
      // a replica: the unit returns once the local copy has the commit (the writer is free meanwhile)
      return runUnit(
        "write",
        async (attempt, stop) => {
          const result = await solo(attempt, stop);
          await syncAfterWrite();
          return result;
        },
        unitOptions,
      );
    },
    exclusive: (fn, unitOptions = {}) =>
      runUnit(
        "write",
        writeQueue.solo(() => runExclusive(runtime, fn)),
        unitOptions,
      ),
    get writeQueueDepth() {
      return writeQueue.depth;
    },
    get readQueueDepth() {
      return readGate.waiting;
    },
    async sync() {
      if (engine.replica === undefined) return;
      try {
        await engine.replica.sync();
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
      await readPath.close();
      if (reader !== writer) reader.close();
      writer.close();
      // an embedded replica's worker: the file is the replicator's until it has exited
      await engine.replica?.stopped;
    },
  };
}
