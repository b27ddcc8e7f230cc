import { AsyncResource } from "node:async_hooks";
import type { Transaction } from "@libsql/client";
import type { UnitOfWork, UnitOfWorkContext } from "./database-types.js";
import { classifyDatabaseError, TransientDatabaseError } from "./errors.js";
import { createSemaphore, type Release, type Semaphore } from "./semaphore.js";
import { reopenWriter, type UnitRuntime } from "./unit-of-work.js";

// ---- The write queue: one writer per process, and group commit (file: only) ----
// Write units that queue while the writer is busy run together when it frees up: one BEGIN IMMEDIATE, one
// SAVEPOINT per unit (in queue order, so each sees the earlier ones' writes, as if serial), one COMMIT.
// SAVEPOINT + RELEASE per unit replace BEGIN + COMMIT per unit (measured: bench/write-units.ts).
// `check-at-commit` units (migrations) and `exclusive` run alone, through the same FIFO writer gate.

/** Most write units of work that share one transaction (group commit, `file:` only). */
const WRITE_GROUP_MAX = 64;

export interface WriteQueue<TSchema extends Record<string, unknown>> {
  /** The FIFO writer mutex (an embedded replica's reads share it: it has a single connection). */
  readonly gate: Semaphore;
  /** Whether write units are grouped (`file:`); otherwise each runs alone through {@link solo}. */
  readonly grouping: boolean;
  /** One attempt of a write unit of work in the next group (settles after that group's COMMIT). */
  submit<T>(fn: UnitOfWork<TSchema, T>, attempt: number, stop: AbortSignal): Promise<T>;
  /** Wraps a job that runs alone holding the writer (closes the open group first: FIFO). */
  solo<T>(body: (attempt: number) => Promise<T>): (attempt: number, stop: AbortSignal) => Promise<T>;
  /** Write units waiting for the writer or for their turn in a running group (not the running one). */
  readonly depth: number;
}

interface GroupMember<TSchema extends Record<string, unknown>> {
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
interface WriteBatch<TSchema extends Record<string, unknown>> {
  members: GroupMember<TSchema>[];
  started: boolean;
}
type MemberOutcome = { ok: true; value: unknown } | { ok: false; error: unknown };

export function createWriteQueue<TSchema extends Record<string, unknown>>(
  runtime: UnitRuntime<TSchema>,
): WriteQueue<TSchema> {
  const { engine, logger } = runtime;
  const writer = engine.writer;
  const writeGate = createSemaphore(1);
  // Group commit saves fsyncs on a local file. On sqld / a replica's primary each unit is already one batch of
  // <= 2 round trips; a group would add a SAVEPOINT round trip per member while holding the primary's write lock,
  // which sqld takes back after 5 s (TRANSACTION_TIMEOUT).
  const grouping = engine.mode === "file";
  /** The batch new write units join; closed when it starts or when a solo job queues behind it (FIFO). */
  let openBatch: WriteBatch<TSchema> | undefined;
  /** Grouped units that have not started yet (depth). */
  const waitingMembers = new Set<GroupMember<TSchema>>();
  /** Solo jobs (exclusive, check-at-commit) waiting for the writer gate. */
  let soloWaiting = 0;

  function submit<T>(fn: UnitOfWork<TSchema, T>, attempt: number, stop: AbortSignal): Promise<T> {
    if (stop.aborted) return Promise.reject(stop.reason);
    return new Promise<T>((resolve, reject) => {
      let batch = openBatch;
      if (batch === undefined || batch.members.length >= WRITE_GROUP_MAX) {
        batch = { members: [], started: false };
        openBatch = batch;
        void runBatch(batch);
      }
      const target = batch;
      const member: GroupMember<TSchema> = {
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

  async function runBatch(batch: WriteBatch<TSchema>): Promise<void> {
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
  async function runGroup(members: GroupMember<TSchema>[]): Promise<void> {
    const outcomes = new Map<GroupMember<TSchema>, MemberOutcome>();
    const started = new Map<GroupMember<TSchema>, number>();
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
          const tx = runtime.makeTx(writer, open);
          const ctx: UnitOfWorkContext = { kind: "write", attempt: member.attempt, transaction: open };
          const value = await member.context.runInAsyncScope(() =>
            runtime.insideUnit.run(true, () => member.fn(tx, ctx)),
          );
          outcome = { ok: true, value };
        } catch (err) {
          outcome = { ok: false, error: err };
        }
        outcomes.set(member, outcome);
        try {
          if (!outcome.ok) {
            // transient: the connection may be poisoned (see reopenWriter)
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
          await reopenWriter(runtime);
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
      if (began !== undefined) {
        runtime.reportUnit("write", member.attempt, began, committed ? "commit" : "rollback");
      }
      if (committed) member.resolve(outcome.value);
      else member.reject(outcome !== undefined && !outcome.ok ? outcome.error : groupError);
    }
  }

  function solo<T>(body: (attempt: number) => Promise<T>) {
    return async (attempt: number, stop: AbortSignal): Promise<T> => {
      if (grouping) {
        openBatch = undefined;
        soloWaiting++;
      }
      let release: Release;
      try {
        release = await writeGate.acquire(stop);
      } finally {
        if (grouping) soloWaiting--;
      }
      try {
        return await body(attempt);
      } finally {
        release();
      }
    };
  }

  return {
    gate: writeGate,
    grouping,
    submit,
    solo,
    get depth() {
      return grouping ? waitingMembers.size + soloWaiting : writeGate.waiting;
    },
  };
}
