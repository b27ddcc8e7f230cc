import type { DatabaseLogger } from "./database-types.js";

// An embedded replica's writes commit on the primary (engine.ts); the unit returns once the replica has pulled
// them, so the process reads its own writes from the local file.

/**
 * `sync` coalesced for concurrent callers: each call resolves after a sync that *started after the call*, and
 * callers arriving while one runs share the next one, so N concurrent commits cost at most two syncs. A failed
 * sync does not fail the write it follows (that is committed on the primary): it is logged, and the replica's
 * periodic sync catches up.
 */
export function createSyncAfterWrite(
  sync: () => Promise<unknown>,
  logger: DatabaseLogger | undefined,
): () => Promise<void> {
  let running: Promise<void> | undefined;
  let next: Promise<void> | undefined;
  const start = (): Promise<void> => {
    const run = sync().then(
      () => undefined,
      (err: unknown) => {
        logger?.warn?.(
          { err },
          "embedded replica: sync after a write failed; the periodic sync will catch up",
        );
      },
    );
    running = run.finally(() => {
      running = undefined;
    });
    return running;
  };
  return () => {
    if (running === undefined) return start();
    next ??= running.then(() => {
      next = undefined;
      return start();
    });
    return next;
  };
}
