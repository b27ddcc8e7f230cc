import type { Server } from "./server.js";

export interface RunUntilSignalOptions {
  /** Grace period for in-flight calls. Default 10 s. */
  readonly graceMs?: number;
  /** Runs after the server stopped (close the database here). */
  readonly onStopped?: () => Promise<void> | void;
  /** Reports a failed shutdown; default console.error. */
  readonly onError?: (error: unknown) => void;
  readonly signals?: readonly NodeJS.Signals[];
}

/**
 * For a service's main.ts: on SIGTERM or SIGINT, shut the server down (draining in-flight calls), run
 * `onStopped`, and exit 0 (1 if shutdown failed). A second signal exits at once with 1.
 */
export function runUntilSignal(server: Pick<Server, "shutdown">, options: RunUntilSignalOptions = {}): void {
  const {
    graceMs = 10_000,
    onStopped,
    onError = (e) => console.error(e),
    signals = ["SIGTERM", "SIGINT"],
  } = options;
  let stopping = false;
  const onSignal = () => {
    if (stopping) process.exit(1);
    stopping = true;
    (async () => {
      await server.shutdown({ graceMs });
      await onStopped?.();
    })().then(
      () => process.exit(0),
      (e: unknown) => {
        onError(e);
        process.exit(1);
      },
    );
  };
  for (const signal of signals) process.on(signal, onSignal);
}
