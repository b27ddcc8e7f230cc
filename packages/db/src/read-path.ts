import type { Client, Transaction } from "@libsql/client";
import type { UnitOfWork } from "./database-types.js";
import { classifyDatabaseError, TransientDatabaseError } from "./errors.js";
import { createLocalClient } from "./local-client.js";
import {
  type GuardedReadTransaction,
  guardReadTransaction,
  type ReadNeedsTransaction,
} from "./read-only-guard.js";
import type { UnitRuntime } from "./unit-of-work.js";

// The read path: one attempt of a read unit of work, and the read-only pool it runs on for `file:`.

export const DEFAULT_READ_CONCURRENCY = 16;

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

export interface ReadPathOptions {
  /** Connections of the `file:` read pool (the most read units holding a transaction at once). */
  readConcurrency: number;
  encryptionKey?: string | undefined;
}

export interface ReadPath<TSchema extends Record<string, unknown>> {
  /** One attempt of a read unit of work (the caller holds a read permit). */
  run<T>(fn: UnitOfWork<TSchema, T>, attempt: number): Promise<T>;
  /** Waits for a pool refresh under way, then closes the pool. */
  close(): Promise<void>;
}

export async function createReadPath<TSchema extends Record<string, unknown>>(
  runtime: UnitRuntime<TSchema>,
  options: ReadPathOptions,
): Promise<ReadPath<TSchema>> {
  const { engine, logger } = runtime;
  const { readConcurrency } = options;

  /** Opens a read pool with exactly `readConcurrency` connections, each set to `query_only` once. */
  async function openReadPool(): Promise<ReadPool> {
    const client = createLocalClient({
      path: engine.localPath,
      timeout: engine.timeout,
      concurrency: readConcurrency,
      encryptionKey: options.encryptionKey,
    });
    try {
      // Concurrent transactions each pin a distinct connection, so this opens the pool's every connection
      // (nobody else can see the client yet). At most readConcurrency read units hold one at once
      // (the read gate), so the pool never opens another.
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

  // An embedded replica's reads are local too: the same read-only pool on its local copy (they must not go
  // through the replica connection, which sends transactions to the primary and blocks while it waits).
  // query_only connections never write the file the replicator owns.
  let readPool: ReadPool | undefined = engine.mode !== "remote" ? await openReadPool() : undefined;
  let refreshingReadPool: Promise<void> | undefined;

  /**
   * Swaps in a freshly primed read pool; the old one closes when its last read unit leaves it. The pool is
   * shared by concurrent reads, so it is replaced rather than reconnected (see reopenWriter for why a
   * transient error poisons a connection); reads end with ROLLBACK, which a pending statement does not
   * block, so a poisoned reader connection is still usable meanwhile.
   */
  function refreshReadPool(): Promise<void> {
    refreshingReadPool ??= (async () => {
      try {
        const fresh = await openReadPool();
        const old = readPool;
        if (runtime.isClosed() || old === undefined) {
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

  /** Remote engines: first statements of read units that turned out to run more than one (read-only-guard.ts). */
  const multiStatement = new Set<string>();
  const oneShot = engine.mode === "remote" ? { multiStatement } : undefined;

  async function run<T>(fn: UnitOfWork<TSchema, T>, attempt: number): Promise<T> {
    const seen: { retry?: ReadNeedsTransaction | undefined } = {};
    try {
      return await runOnce(fn, attempt, seen);
    } catch (err) {
      // a one-request read ran a second statement: the same attempt again, as an interactive transaction
      if (seen.retry === undefined) throw err;
      return runOnce(fn, attempt, {});
    }
  }

  async function runOnce<T>(
    fn: UnitOfWork<TSchema, T>,
    attempt: number,
    seen: { retry?: ReadNeedsTransaction | undefined },
  ): Promise<T> {
    // file: read units run on the read pool, whose connections all have query_only=ON (see ReadPool): an
    // accidental write in a read unit fails instead of silently bypassing the writer queue (libSQL's
    // "BEGIN TRANSACTION READONLY" is not enforced on local files). The pragma is never reset: the pool
    // serves read units only. Elsewhere (sqld, a replica) the pragma is refused: see read-only-guard.ts.
    const pool = readPool;
    const client = pool?.client ?? engine.reader;
    const guardReadOnly = pool !== undefined && !pool.primed;
    if (pool !== undefined) pool.holders++;
    let libsqlTx: Transaction | undefined;
    let guarded: GuardedReadTransaction | undefined;
    try {
      const opened = await client.transaction("read");
      if (pool === undefined) guarded = guardReadTransaction(opened, { oneShot });
      const open: Transaction = guarded ?? opened;
      libsqlTx = open;
      if (guardReadOnly) await open.execute("PRAGMA query_only=ON");
      const tx = runtime.makeTx(client, open);
      const result = await runtime.insideUnit.run(true, () =>
        fn(tx, { kind: "read", attempt, transaction: open }),
      );
      if (guarded !== undefined) {
        await guarded.finish();
      } else {
        // A read has nothing to commit; ROLLBACK ends it too and, unlike COMMIT, cannot fail on a
        // statement left pending on the connection.
        await open.rollback();
      }
      return result;
    } catch (err) {
      seen.retry = guarded?.needsTransaction;
      if (libsqlTx !== undefined && !libsqlTx.closed) {
        try {
          await libsqlTx.rollback();
        } catch (rollbackError) {
          logger?.error?.({ err: rollbackError, kind: "read" }, "rollback failed");
          // the pool drops a connection it cannot roll back and may open an unguarded one in its place
          if (pool !== undefined) {
            pool.primed = false;
            void refreshReadPool();
          }
        }
      }
      if (pool !== undefined && classifyDatabaseError(err) instanceof TransientDatabaseError) {
        libsqlTx?.close();
        await refreshReadPool();
      }
      throw err;
    } finally {
      // returns the connection to the pool on every path (idempotent after commit/rollback)
      libsqlTx?.close();
      if (pool !== undefined) {
        pool.holders--;
        if (pool.retired && pool.holders === 0) pool.client.close();
      }
    }
  }

  return {
    run,
    async close() {
      await refreshingReadPool;
      readPool?.client.close();
    },
  };
}
