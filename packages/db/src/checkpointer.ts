import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/**
 * WAL checkpoints off the event loop.
 *
 * By default SQLite checkpoints inside the COMMIT that pushes the WAL past 1,000 pages: that COMMIT then
 * copies ~4 MB into the database file and fsyncs it, on the writer's connection, which here means on the
 * service's only JavaScript thread — every request waits. Throughput barely moves (the fsync waits, it does
 * not compute), but the event loop stalls: on a copy of the bench database, 3,000 50-row RecordTestResults
 * transactions (libsql sync API) took p99 17.7 ms / max 310 ms with checkpoints inside COMMIT against p99
 * 5.6 ms / max 8 ms without the fsync, and under load the services' event-loop delay reached ~1 s
 * (test/load/README.md). So the writer connection runs with `wal_autocheckpoint=0` and a worker thread with a
 * connection of its own runs `PRAGMA wal_checkpoint(PASSIVE)` every `intervalMs`: a PASSIVE checkpoint never
 * waits for (or blocks) the writer or readers, and the writer restarts the WAL from its beginning once a
 * checkpoint has caught up, so the WAL stays bounded as before.
 *
 * If the worker cannot start or dies, `onFailure` runs once (createDatabase turns automatic checkpoints back
 * on for the writer) — the database never goes without checkpoints.
 */
export interface CheckpointerOptions {
  path: string;
  timeout: number;
  encryptionKey?: string;
  intervalMs: number;
  onFailure(err: unknown): void;
}

export interface Checkpointer {
  stop(): Promise<void>;
}

// CommonJS, evaluated in the worker: no build step or loader needed (the services also run from source).
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.libsql);
const db = new Database(workerData.path, { timeout: workerData.timeout, encryptionKey: workerData.encryptionKey });
const checkpoint = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
const timer = setInterval(() => {
  try {
    checkpoint.all();
  } catch (err) {
    // SQLITE_BUSY: another checkpoint (maintenance) is running; the next tick tries again
    if (!String(err && err.code).startsWith("SQLITE_BUSY")) throw err;
  }
}, workerData.intervalMs);
parentPort.on("message", (message) => {
  if (message !== "stop") return;
  clearInterval(timer);
  db.close();
  parentPort.close();
});
`;

export function startCheckpointer(options: CheckpointerOptions): Checkpointer {
  const libsql = createRequire(import.meta.url).resolve("libsql");
  let failed = false;
  let stopping = false;
  const fail = (err: unknown) => {
    if (failed || stopping) return;
    failed = true;
    options.onFailure(err);
  };
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: {
      libsql,
      path: options.path,
      timeout: options.timeout,
      encryptionKey: options.encryptionKey,
      intervalMs: options.intervalMs,
    },
  });
  worker.unref(); // never what keeps a process alive
  worker.on("error", fail);
  worker.on("exit", (code) => fail(new Error(`checkpoint worker exited with code ${code}`)));
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  return {
    async stop() {
      stopping = true;
      worker.postMessage("stop");
      const timer = setTimeout(() => void worker.terminate(), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}
