import type { Logger } from "pino";
import type { UnitOfWork } from "./context.js";

/**
 * Readiness: whether this instance can answer calls now, as opposed to liveness (the process answers at all).
 * A periodic probe of the database sets it; the server reports it as grpc.health.v1 (every name) on the gRPC
 * port and `GET /readyz` on the Connect port, while `GET /healthz` stays liveness. Load balancers and compose
 * take an instance out while its database is unreachable, refuses the service's token or cannot be read, and back
 * when the probe passes again — without a restart, which would not help.
 */
export interface ReadinessOptions {
  /**
   * One check; resolves when the instance is ready. Default (with a database): a read unit of work reading
   * `sqlite_master` — through the same read path as the calls, so on an embedded replica it is the local file
   * that is checked (a replica serves reads while its primary is away; its writes fail per call, UNAVAILABLE).
   */
  readonly probe?: (signal: AbortSignal) => Promise<unknown>;
  /** Time between the end of one probe and the start of the next. Default 5,000 ms. */
  readonly intervalMs?: number;
  /** A probe that has not settled by then counts as failed (a stopped server may never answer). Default 3,000 ms. */
  readonly timeoutMs?: number;
}

export const defaultReadinessIntervalMs = 5_000;
export const defaultReadinessTimeoutMs = 3_000;

/** The default probe: one cheap statement through a read unit of work (sqlite_master: page 1 is read). */
export function databaseProbe<Tx>(db: UnitOfWork<Tx>): (signal: AbortSignal) => Promise<unknown> {
  return (signal) =>
    db.read(
      async (tx) => {
        // drizzle's handle (what @autoforge/db gives); any other UnitOfWork passes by completing the unit
        const all = (tx as { all?: (query: string) => Promise<unknown> } | null)?.all;
        if (typeof all === "function") await all.call(tx, "SELECT count(*) FROM sqlite_master");
      },
      { signal },
    );
}

export interface Readiness {
  readonly ready: boolean;
  /** Runs one probe now and returns the outcome (also applied). Probes never overlap. */
  check(): Promise<boolean>;
  /** Probes every `intervalMs` from now on (timer unref'd). */
  start(): void;
  /** Stops probing; an in-flight probe is aborted and its outcome ignored. */
  stop(): void;
}

/**
 * Runs `probe` and tracks the outcome: ready after a probe that passed, not ready after one that failed or
 * timed out. `onChange` is called on every change; the first failure is logged at error with its cause, the
 * recovery at info (one line each, not one per probe).
 */
export function createReadiness(
  options: ReadinessOptions & {
    readonly probe: (signal: AbortSignal) => Promise<unknown>;
    readonly logger: Logger;
    readonly onChange: (ready: boolean) => void;
  },
): Readiness {
  const intervalMs = options.intervalMs ?? defaultReadinessIntervalMs;
  const timeoutMs = options.timeoutMs ?? defaultReadinessTimeoutMs;
  let ready = false;
  let known = false;
  let stopped = false;
  let running: Promise<boolean> | undefined;
  let timer: NodeJS.Timeout | undefined;
  const controller = new AbortController();

  const apply = (next: boolean, err?: unknown) => {
    if (stopped) return;
    const changed = !known || next !== ready;
    known = true;
    ready = next;
    if (!changed) return;
    if (next) {
      options.logger.info("ready: the database answers (health SERVING, /readyz 200)");
    } else {
      options.logger.error(
        { err },
        "not ready: the database does not answer (health NOT_SERVING, /readyz 503) until it does again",
      );
    }
    options.onChange(next);
  };

  // A probe that timed out may still be running (a statement to a stopped server is not aborted): no second
  // one starts beside it, so a hung database never piles up probes; the instance stays not ready meanwhile.
  let hung: Promise<unknown> | undefined;

  const probeOnce = async (): Promise<boolean> => {
    if (hung !== undefined) return false;
    const attempt = new AbortController();
    const onStop = () => attempt.abort(controller.signal.reason);
    controller.signal.addEventListener("abort", onStop, { once: true });
    let timeout: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timeout = setTimeout(() => {
        const err = new Error(`the readiness probe did not answer within ${timeoutMs} ms`);
        attempt.abort(err);
        reject(err);
      }, timeoutMs);
    });
    const probing = options.probe(attempt.signal);
    try {
      await Promise.race([probing, timedOut]);
      apply(true);
      return true;
    } catch (err) {
      apply(false, err);
      if (attempt.signal.aborted) {
        const settled = probing.then(
          () => undefined,
          () => undefined,
        );
        hung = settled;
        void settled.then(() => {
          if (hung === settled) hung = undefined;
        });
      }
      return false;
    } finally {
      clearTimeout(timeout);
      controller.signal.removeEventListener("abort", onStop);
    }
  };

  const check = (): Promise<boolean> => {
    running ??= probeOnce().finally(() => {
      running = undefined;
    });
    return running;
  };

  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      void check().finally(schedule);
    }, intervalMs);
    timer.unref();
  };

  return {
    get ready() {
      return ready;
    },
    check,
    start() {
      if (timer === undefined && !stopped) schedule();
    },
    stop() {
      stopped = true;
      clearTimeout(timer);
      controller.abort(new Error("readiness stopped"));
    },
  };
}
