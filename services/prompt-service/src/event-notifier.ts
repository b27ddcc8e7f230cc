/**
 * In-process "an event committed" signal for WatchPromptEvents. Handlers call `notify()` after their unit of
 * work commits; watchers wait for the version to move past what they saw, or for the fallback poll (which
 * picks up events committed by other processes on the same database).
 */
export interface EventNotifier {
  /** Increases on every notify(). Read it BEFORE querying, then wait for it to move. */
  readonly version: number;
  notify(): void;
  /** Resolves when version > seen, after `timeoutMs`, or when `signal` aborts (whichever first). */
  waitForChange(seen: number, timeoutMs: number, signal: AbortSignal): Promise<void>;
}

export function createEventNotifier(): EventNotifier {
  let version = 0;
  const waiters = new Set<() => void>();
  return {
    get version() {
      return version;
    },
    notify() {
      version++;
      for (const wake of [...waiters]) wake();
    },
    waitForChange(seen, timeoutMs, signal) {
      if (version > seen || signal.aborted) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          waiters.delete(done);
          signal.removeEventListener("abort", done);
          resolve();
        };
        const timer = setTimeout(done, timeoutMs);
        waiters.add(done);
        signal.addEventListener("abort", done, { once: true });
      });
    },
  };
}
