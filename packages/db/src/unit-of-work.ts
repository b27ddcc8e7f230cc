import type { AsyncLocalStorage } from "node:async_hooks";
import type { Client, Transaction } from "@libsql/client";
import type {
  DatabaseLogger,
  UnitOfWork,
  UnitOfWorkEvent,
  UnitOfWorkKind,
  WriteOptions,
} from "./database-types.js";
import { configureWriterConnection, type EngineClients } from "./engine.js";
import {
  ConstraintViolationError,
  classifyCommitError,
  classifyDatabaseError,
  TransientDatabaseError,
} from "./errors.js";
import {
  type PipelinedTransaction,
  pipelineWrites,
  type ReadAhead,
  type ReadAheadMiss,
} from "./pipelined-write.js";
import type { TxFactory } from "./unit-transaction.js";

// What a unit of work runs on, and one attempt of a write unit of work on its own (not grouped) transaction.

export type UnitReporter = (
  kind: UnitOfWorkKind,
  attempt: number,
  started: number,
  outcome: UnitOfWorkEvent["outcome"],
) => void;

/** The pieces of an open Database that the read path, the write queue and single write units share. */
export interface UnitRuntime<TSchema extends Record<string, unknown>> {
  engine: EngineClients;
  logger: DatabaseLogger | undefined;
  makeTx: TxFactory<TSchema>;
  // Marks code running inside a unit of work, to refuse nesting: a write inside a write would wait for
  // the writer it holds (deadlock), and a read inside a write would not see the write's own changes.
  insideUnit: AsyncLocalStorage<true>;
  /** Reports one attempt of a transaction to `onUnitOfWork`; a throwing observer never breaks the unit. */
  reportUnit: UnitReporter;
  isClosed(): boolean;
  /** Remote engines: what write units read ahead (see pipelined-write.ts). */
  readAhead: ReadAhead;
}

export function createUnitReporter(
  onUnitOfWork: ((event: UnitOfWorkEvent) => void) | undefined,
  logger: DatabaseLogger | undefined,
): UnitReporter {
  return (kind, attempt, started, outcome) => {
    try {
      onUnitOfWork?.({ kind, outcome, durationMs: performance.now() - started, attempt });
    } catch (err) {
      logger?.error?.({ err }, "onUnitOfWork observer failed");
    }
  };
}

/** Runs one attempt, reporting it to `onUnitOfWork` (when there is an observer) as commit or rollback. */
export async function observed<S extends Record<string, unknown>, T>(
  runtime: UnitRuntime<S>,
  observing: boolean,
  kind: UnitOfWorkKind,
  attempt: number,
  run: () => Promise<T>,
): Promise<T> {
  if (!observing) return run();
  const started = performance.now();
  try {
    const result = await run();
    runtime.reportUnit(kind, attempt, started, "commit");
    return result;
  } catch (err) {
    runtime.reportUnit(kind, attempt, started, "rollback");
    throw err;
  }
}

/**
 * Measured with @libsql/client 0.18: after SQLITE_BUSY (e.g. BEGIN IMMEDIATE while another process
 * writes), the failed statement stays pending on its connection and every later COMMIT there fails with
 * "SQLITE_BUSY: cannot commit transaction - SQL statements in progress", so retries could never succeed.
 * Rolling back does not clear it; only a new connection does. The writer client is ours alone (the caller
 * holds the write mutex), so it is reopened at once (the read path replaces its pool instead).
 */
export async function reopenWriter<S extends Record<string, unknown>>(
  runtime: UnitRuntime<S>,
): Promise<void> {
  try {
    runtime.engine.writer.reconnect();
    await configureWriterConnection(runtime.engine.writer);
  } catch (err) {
    runtime.logger?.error?.(
      { err, kind: "write" },
      "could not reopen the connection after a transient error",
    );
  }
}

/** After a failed write on `file:`: reopens the writer when the error is transient (see reopenWriter). */
async function afterWriteFailure<S extends Record<string, unknown>>(
  runtime: UnitRuntime<S>,
  err: unknown,
): Promise<void> {
  if (runtime.engine.mode === "file" && classifyDatabaseError(err) instanceof TransientDatabaseError) {
    await reopenWriter(runtime);
  }
}

/** Outside any transaction, on the writer connection, holding the writer queue (see Database.exclusive). */
export async function runExclusive<S extends Record<string, unknown>, T>(
  runtime: UnitRuntime<S>,
  fn: (client: Client) => Promise<T>,
): Promise<T> {
  try {
    return await runtime.insideUnit.run(true, () => fn(runtime.engine.writer));
  } catch (err) {
    await afterWriteFailure(runtime, err);
    throw err;
  }
}

/** One attempt of a write unit of work in a transaction of its own, holding the writer. */
export async function runWriteTransaction<TSchema extends Record<string, unknown>, T>(
  runtime: UnitRuntime<TSchema>,
  fn: UnitOfWork<TSchema, T>,
  attempt: number,
  foreignKeys: NonNullable<WriteOptions["foreignKeys"]>,
): Promise<T> {
  const seen: { miss?: ReadAheadMiss | undefined } = {};
  try {
    return await runWriteTransactionOnce(runtime, fn, attempt, foreignKeys, runtime.readAhead, seen);
  } catch (err) {
    // rolled back already (whatever `fn` made of the miss): the same attempt again, without reading ahead
    if (seen.miss === undefined) throw err;
    runtime.logger?.debug?.({ sql: seen.miss.sql }, "read-ahead missed; the write unit runs again");
    return runWriteTransactionOnce(runtime, fn, attempt, foreignKeys, undefined, {});
  }
}

async function runWriteTransactionOnce<TSchema extends Record<string, unknown>, T>(
  runtime: UnitRuntime<TSchema>,
  fn: UnitOfWork<TSchema, T>,
  attempt: number,
  foreignKeys: NonNullable<WriteOptions["foreignKeys"]>,
  readAhead: ReadAhead | undefined,
  seen: { miss?: ReadAheadMiss | undefined },
): Promise<T> {
  const { engine, logger } = runtime;
  const client = engine.writer;
  const fkOffOutside = foreignKeys === "check-at-commit" && !engine.remoteWriter;
  let libsqlTx: Transaction | undefined;
  let pipelined: PipelinedTransaction | undefined;
  try {
    if (fkOffOutside) await client.execute("PRAGMA foreign_keys=OFF");
    const opened = await client.transaction("write");
    // remote: INSERTs wait for the next statement or the COMMIT, in one request (see pipelined-write.ts)
    pipelined =
      engine.remoteWriter && foreignKeys === "immediate" ? pipelineWrites(opened, readAhead) : undefined;
    libsqlTx = pipelined ?? opened;
    if (foreignKeys === "check-at-commit" && !fkOffOutside) {
      // Remote: there is no statement before BEGIN on the transaction's own connection (one Hrana stream),
      // so end the empty transaction just begun, switch enforcement off there, and begin again: `fn` runs
      // in the second transaction, with foreign keys off, as on `file:`. The stream's connection is closed
      // with it, so the setting never reaches another unit of work. A failure here fails the unit before
      // `fn` runs.
      await libsqlTx.executeMultiple("COMMIT; PRAGMA foreign_keys=OFF; BEGIN IMMEDIATE");
    }
    const open = libsqlTx;
    const tx = runtime.makeTx(client, open);
    const result = await runtime.insideUnit.run(true, () =>
      fn(tx, { kind: "write", attempt, transaction: open }),
    );
    if (foreignKeys === "check-at-commit") {
      const violations = await open.execute("PRAGMA foreign_key_check");
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
    try {
      await open.commit();
    } catch (err) {
      // remote: when the connection broke after COMMIT may have reached the server, the unit must not run
      // again (CommitOutcomeUnknownError is not transient); a local file's COMMIT is always decided
      throw engine.mode === "file" || pipelined?.miss !== undefined ? err : classifyCommitError(err);
    }
    return result;
  } catch (err) {
    seen.miss = pipelined?.miss;
    // Always roll back, SQLITE_BUSY included: libSQL may otherwise keep holding the write lock.
    if (libsqlTx !== undefined && !libsqlTx.closed) {
      try {
        await libsqlTx.rollback();
      } catch (rollbackError) {
        logger?.error?.({ err: rollbackError, kind: "write" }, "rollback failed");
      }
    }
    libsqlTx?.close();
    await afterWriteFailure(runtime, err);
    throw err;
  } finally {
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
