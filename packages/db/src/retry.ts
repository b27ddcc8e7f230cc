import { ExponentialBackoff, fullJitterGenerator, handleWhen, type IBackoff, retry } from "cockatiel";
import { classifyDatabaseError, DeadlineExceededError, TransientDatabaseError } from "./errors.js";

export interface RetryPolicyOptions {
  /** Total attempts including the first. Default 5. */
  maxAttempts?: number;
  /** Upper bound of the first backoff (full jitter draws from [0, bound)). Default 10 ms. */
  initialDelayMs?: number;
  /** Cap of the exponentially growing bound. Default 1,000 ms. */
  maxDelayMs?: number;
}

/** Emitted before each retry (after a failed attempt, before the backoff sleep). */
export interface RetryEvent {
  /** The attempt that failed, starting at 1. */
  attempt: number;
  /** How long the retry will wait before the next attempt. */
  delayMs: number;
  error: TransientDatabaseError;
}

export interface RetryRunOptions {
  /** Epoch ms. No attempt starts and no backoff sleeps past it. */
  deadline?: number | undefined;
  signal?: AbortSignal | undefined;
  onRetry?: ((event: RetryEvent) => void) | undefined;
}

const DEFAULTS = { maxAttempts: 5, initialDelayMs: 10, maxDelayMs: 1_000 } as const;

/**
 * Runs `attempt` and, while it fails with a {@link TransientDatabaseError}, runs it again after an
 * exponential backoff with full jitter (a uniform draw from [0, min(cap, base * 2^n))): under contention
 * the retries of many callers spread out instead of colliding again in lockstep, which is what the
 * AWS "exponential backoff and jitter" analysis found to finish the most work with the fewest calls.
 *
 * Bounded twice: by `maxAttempts`, and by the deadline — a retry whose sleep would end at or after the
 * deadline is not taken and the last transient error is thrown instead, so the caller learns the real
 * cause early rather than timing out later. Everything else (constraint violations, bugs) fails at once.
 *
 * cockatiel chooses the delay only after its error filter has accepted the error, so the filter draws the
 * delay itself (from cockatiel's ExponentialBackoff with fullJitterGenerator) and refuses the retry when
 * that delay would cross the deadline; the backoff handed to cockatiel then replays the drawn delay.
 */
export function createRetryRunner(options: RetryPolicyOptions = {}) {
  const maxAttempts = options.maxAttempts ?? DEFAULTS.maxAttempts;
  const initialDelay = options.initialDelayMs ?? DEFAULTS.initialDelayMs;
  const maxDelay = options.maxDelayMs ?? DEFAULTS.maxDelayMs;
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new RangeError("maxAttempts must be an integer >= 1");
  }

  return async function runWithRetry<T>(
    attempt: (attemptNumber: number) => Promise<T>,
    run: RetryRunOptions = {},
  ): Promise<T> {
    const { deadline, signal, onRetry } = run;
    const exponential = new ExponentialBackoff({ generator: fullJitterGenerator, initialDelay, maxDelay });
    let drawn: IBackoff<unknown> | undefined;
    let plannedDelay = 0;
    let lastError: TransientDatabaseError | undefined;

    const policy = retry(
      handleWhen((err) => {
        if (!(err instanceof TransientDatabaseError) || signal?.aborted) return false;
        drawn = drawn === undefined ? exponential.next() : drawn.next(undefined);
        plannedDelay = drawn.duration;
        return deadline === undefined || Date.now() + plannedDelay < deadline;
      }),
      {
        maxAttempts: maxAttempts - 1, // cockatiel counts retries, not attempts
        backoff: { next: replay },
      },
    );
    function replay(): IBackoff<unknown> {
      return { duration: plannedDelay, next: replay };
    }
    const listener = policy.onRetry((event) => {
      if ("error" in event && event.error instanceof TransientDatabaseError) {
        onRetry?.({ attempt: event.attempt, delayMs: event.delay, error: event.error });
      }
    });

    try {
      return await policy.execute(async ({ attempt: retries }) => {
        if (signal?.aborted) throw signal.reason;
        if (deadline !== undefined && Date.now() >= deadline) {
          throw lastError ?? new DeadlineExceededError();
        }
        try {
          return await attempt(retries + 1);
        } catch (err) {
          const classified = classifyDatabaseError(err);
          if (classified instanceof TransientDatabaseError) lastError = classified;
          throw classified;
        }
      }, signal);
    } finally {
      listener.dispose();
    }
  };
}

export type RetryRunner = ReturnType<typeof createRetryRunner>;
