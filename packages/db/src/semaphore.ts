/**
 * A FIFO async semaphore. With one permit it is the process's single-writer mutex: SQLite allows one
 * writer per database, and @libsql/client gives every concurrent transaction its own connection, so
 * without this queue concurrent write transactions fight over the lock and all but one fail with
 * SQLITE_BUSY (measured: 10 concurrent -> 9 failures). Queuing in-process is fair and costs nothing;
 * SQLite's busy handler is left for *other* processes.
 */
export interface Semaphore {
  /**
   * Waits for a permit. Rejects with `signal.reason` if the signal aborts first (the waiter leaves the
   * queue, so a caller past its deadline never takes the writer).
   */
  acquire(signal?: AbortSignal): Promise<Release>;
  /** Callers waiting for a permit (not counting the ones holding one). */
  readonly waiting: number;
  /** Callers holding a permit. */
  readonly active: number;
}

export type Release = () => void;

interface Waiter {
  grant: () => void;
  signal: AbortSignal | undefined;
  onAbort: () => void;
}

export function createSemaphore(permits: number): Semaphore {
  if (!Number.isInteger(permits) || permits < 1) throw new RangeError("permits must be a positive integer");
  let active = 0;
  const queue: Waiter[] = [];

  const makeRelease = (): Release => {
    let released = false;
    return () => {
      // idempotent: a double release must not hand out an extra permit
      if (released) return;
      released = true;
      const next = queue.shift();
      if (next !== undefined) {
        next.signal?.removeEventListener("abort", next.onAbort);
        next.grant(); // the permit passes straight on; `active` is unchanged
      } else {
        active--;
      }
    };
  };

  return {
    acquire(signal) {
      if (signal?.aborted) return Promise.reject(signal.reason);
      if (active < permits) {
        active++;
        return Promise.resolve(makeRelease());
      }
      return new Promise<Release>((resolve, reject) => {
        const waiter: Waiter = {
          grant: () => resolve(makeRelease()),
          signal,
          onAbort: () => {
            const at = queue.indexOf(waiter);
            if (at >= 0) queue.splice(at, 1);
            reject(signal?.reason);
          },
        };
        queue.push(waiter);
        signal?.addEventListener("abort", waiter.onAbort, { once: true });
      });
    },
    get waiting() {
      return queue.length;
    },
    get active() {
      return active;
    },
  };
}
