import { type DescField, type DescMethod, ScalarType } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextKey,
  createContextValues,
  type Interceptor,
  type UnaryRequest,
} from "@connectrpc/connect";
import { ExponentialBackoff, handleWhen, type IBackoff, retry } from "cockatiel";
import { uuidv7 } from "uuidv7";

/**
 * How a method may be retried, from its descriptor:
 * - `read`: `idempotency_level = NO_SIDE_EFFECTS`;
 * - `idempotent`: `IDEMPOTENT` (deletes, restores, label moves, settings);
 * - `keyed-create`: a write whose request has a `request_id` (the contracts' AIP-155 idempotency key: the server
 *   answers a repeated key with the first response), retried only when the request carries one;
 * - `never`: any other write, and every streaming method.
 */
export type RetryClass = "read" | "idempotent" | "keyed-create" | "never";

export function retryClass(method: DescMethod): RetryClass {
  if (method.methodKind !== "unary") return "never";
  if (method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS) return "read";
  if (method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT) return "idempotent";
  return requestIdField(method) === undefined ? "never" : "keyed-create";
}

/** The request's `request_id` field (a string), if the method has one. */
export function requestIdField(method: DescMethod): DescField | undefined {
  return method.input.fields.find(
    (f) => f.name === "request_id" && f.fieldKind === "scalar" && f.scalar === ScalarType.STRING,
  );
}

export interface RetryOptions {
  /** Attempts including the first. Default 4; 1 turns retries off. */
  maxAttempts?: number;
  /** First backoff delay (ms), before jitter. Default 100. */
  initialDelayMs?: number;
  /** Cap of one backoff delay (ms). Default 1,000. */
  maxDelayMs?: number;
  /**
   * Timeout of one attempt (ms). Default: none, each attempt gets what is left of the call's deadline. With it, a
   * read whose attempt timed out (DEADLINE_EXCEEDED) is retried while the call's deadline leaves room.
   */
  attemptTimeoutMs?: number;
  /** A retry is taken only when at least this much (ms) of the deadline remains after its backoff. Default 50. */
  minAttemptMs?: number;
  /**
   * Generate a `request_id` (UUIDv7) for keyed creates that leave it empty, once per logical call, so every
   * attempt sends the same key. Default true; per call: `contextValues: withoutRequestId()`.
   */
  generateRequestIds?: boolean;
  /** Called before each retry's backoff (logging, metrics). */
  onRetry?: (event: RetryEvent) => void;
}

export interface RetryEvent {
  readonly method: DescMethod;
  /** The attempt that is about to run: 2 for the first retry. */
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: ConnectError;
}

/** The call's deadline (epoch ms), set by the client's transport for the interceptors. */
export const deadlineKey = createContextKey<number | undefined>(undefined, { description: "deadline" });
/** Set to true in a call's `contextValues` to send a keyed create without a generated `request_id`. */
export const skipRequestIdKey = createContextKey(false, { description: "skip generated request_id" });
/** The `request_id` the client generated for the call (read it from the `contextValues` you passed). */
export const generatedRequestIdKey = createContextKey<string | undefined>(undefined, {
  description: "generated request_id",
});

/**
 * Call options' `contextValues` for a keyed create that must not get a generated `request_id`: such a call
 * (with an empty `request_id`) is never retried.
 */
export function withoutRequestId(values: ContextValues = createContextValues()): ContextValues {
  return values.set(skipRequestIdKey, true);
}

/**
 * Fills an empty `request_id` of a keyed create with a UUIDv7, before the retry interceptor (so before the first
 * attempt): one key per logical call, sent by every attempt.
 */
export function createRequestIdInterceptor(options: { generate?: boolean } = {}): Interceptor {
  const generate = options.generate ?? true;
  return (next) => async (req) => {
    if (!generate || req.stream || retryClass(req.method) !== "keyed-create") return next(req);
    if (req.contextValues.get(skipRequestIdKey)) return next(req);
    const field = requestIdField(req.method);
    if (field === undefined) return next(req);
    const message = req.message as unknown as Record<string, unknown>;
    if (message[field.localName] !== "") return next(req);
    const requestId = uuidv7();
    req.contextValues.set(generatedRequestIdKey, requestId);
    // A copy: the caller's message object is not changed.
    return next({ ...req, message: { ...req.message, [field.localName]: requestId } } as typeof req);
  };
}

const transientCodes = new Set([Code.Unavailable, Code.ResourceExhausted]);

/** Whether `error` of an attempt of a `kind` method may be retried (the budget is checked separately). */
export function isRetryableError(kind: RetryClass, error: unknown): error is ConnectError {
  if (kind === "never" || !(error instanceof ConnectError)) return false;
  if (transientCodes.has(error.code)) return true;
  // A read's attempt that timed out before the call's deadline (attemptTimeoutMs, or the server's own limit).
  return kind === "read" && error.code === Code.DeadlineExceeded;
}

/** Whether the request of a keyed create carries a key (a create without one is never retried). */
function hasRequestId(req: UnaryRequest): boolean {
  const field = requestIdField(req.method);
  if (field === undefined) return false;
  const value = (req.message as unknown as Record<string, unknown>)[field.localName];
  return typeof value === "string" && value !== "";
}

/**
 * Retries unary calls by the rules of {@link retryClass}: UNAVAILABLE and RESOURCE_EXHAUSTED for reads,
 * idempotent methods and keyed creates that carry a `request_id`; DEADLINE_EXCEEDED of an attempt for reads;
 * exponential backoff with decorrelated jitter (cockatiel); never past the call's deadline (a retry whose
 * backoff would end less than `minAttemptMs` before it is not taken, and the last error is returned). The
 * error of the last attempt is rethrown as it came (code, message, metadata, details). Streams pass through.
 */
export function createRetryInterceptor(options: RetryOptions = {}): Interceptor {
  const maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? 4));
  const initialDelay = options.initialDelayMs ?? 100;
  const maxDelay = options.maxDelayMs ?? 1_000;
  const minAttemptMs = options.minAttemptMs ?? 50;
  return (next) => async (req) => {
    if (req.stream || maxAttempts <= 1) return next(req);
    const kind = retryClass(req.method);
    if (kind === "never" || (kind === "keyed-create" && !hasRequestId(req))) return next(req);
    const deadline = req.contextValues.get(deadlineKey);
    const exponential = new ExponentialBackoff({ initialDelay, maxDelay });
    // The delay is drawn when the error is judged, so a retry whose backoff would overrun the deadline is not
    // taken at all; cockatiel then sleeps exactly that delay.
    let drawn: IBackoff<unknown> | undefined;
    let plannedDelay = 0;
    const replay = (): IBackoff<unknown> => ({ duration: plannedDelay, next: replay });
    const policy = retry(
      handleWhen((error) => {
        if (req.signal.aborted || !isRetryableError(kind, error)) return false;
        drawn = drawn === undefined ? exponential.next() : drawn.next(undefined);
        plannedDelay = drawn.duration;
        return deadline === undefined || Date.now() + plannedDelay + minAttemptMs < deadline;
      }),
      { maxAttempts: maxAttempts - 1, backoff: { next: replay } },
    );
    const listener =
      options.onRetry === undefined
        ? undefined
        : policy.onRetry((event) => {
            if ("error" in event && event.error instanceof ConnectError) {
              options.onRetry?.({
                method: req.method,
                attempt: event.attempt + 1,
                delayMs: event.delay,
                error: event.error,
              });
            }
          });
    try {
      return await policy.execute(() => next(req), req.signal);
    } finally {
      listener?.dispose();
    }
  };
}
