import { createGrpcJsTransport } from "@autoforge/client/node";
import {
  type GetPromptResponse,
  type ListPromptEventsResponse,
  PromptService,
  type SetPromptLabelResponse,
  type WatchPromptEventsResponse,
} from "@autoforge/contracts/prompt/v1";
import { injectTraceContext } from "@autoforge/server";
import type { DescMethod } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import {
  BrokenCircuitError,
  CircuitState,
  ConsecutiveBreaker,
  circuitBreaker,
  ExponentialBackoff,
  fullJitterGenerator,
  handleWhen,
  type IBackoff,
  retry,
} from "cockatiel";
import type { Logger } from "pino";
import { UnavailableError } from "./domain/errors.js";

/**
 * The gRPC client of PromptService: created once at startup from PROMPT_SERVICE_URL (connect-es client over a
 * grpc-js channel, `createGrpcJsTransport`), with the resilience rules of architecture §4:
 *
 * - **Retry** only methods whose descriptor says they are safe (`NO_SIDE_EFFECTS` / `IDEMPOTENT`), only on
 *   UNAVAILABLE / RESOURCE_EXHAUSTED, with exponential backoff and full jitter (cockatiel).
 * - **Budget**: every call gets the caller's deadline minus a margin. Each attempt's `timeoutMs` is what is left
 *   of the budget, and a retry whose backoff would end past it is not taken, so a dependency that is down
 *   answers UNAVAILABLE ("prompt-service unavailable: ...") before the caller's own deadline, never
 *   DEADLINE_EXCEEDED.
 * - **Circuit breaker** (cockatiel ConsecutiveBreaker): after `threshold` consecutive transport failures calls fail
 *   at once for `halfOpenAfterMs`; then one trial call decides whether it closes again.
 */
export interface PromptClientOptions {
  /** e.g. http://127.0.0.1:50051 (gRPC over h2c). */
  readonly baseUrl: string;
  readonly logger: Logger;
  /** Attempts including the first (idempotent methods only). Default 4. */
  readonly maxAttempts?: number;
  /** First backoff bound (full jitter). Default 50 ms. */
  readonly initialDelayMs?: number;
  /** Backoff cap. Default 1,000 ms. */
  readonly maxDelayMs?: number;
  /** Kept free of the caller's remaining time, to answer before its deadline. Default 250 ms. */
  readonly deadlineMarginMs?: number;
  /** Consecutive failures that open the breaker. Default 5. */
  readonly breakerThreshold?: number;
  /** How long an open breaker fails calls before a trial call. Default 2,000 ms. */
  readonly halfOpenAfterMs?: number;
  /** For tests: a transport to use instead of one built from baseUrl. */
  readonly transport?: Transport;
}

/** Per-call inputs: who calls (their bearer token is forwarded), until when, and their cancellation. */
export interface CallOptions {
  /** The bearer token to send (the caller's, or the service's own for the event feed). */
  readonly token: string;
  /** Epoch ms: the caller's deadline. */
  readonly deadline: number;
  readonly signal?: AbortSignal | undefined;
  /** Forwarded as x-request-id, so both services' logs carry the same id. */
  readonly requestId?: string | undefined;
}

export interface PromptClient {
  /**
   * A prompt (version 0: its current version) in `project`, the project the caller acts in (prompt-service
   * answers NOT_FOUND for a prompt of another project, or a project the token is no member of).
   */
  getPrompt(
    request: { id: string; version: number; project: string },
    call: CallOptions,
  ): Promise<GetPromptResponse>;
  /**
   * Moves a label with prompt-service's compare-and-swap (`expectedVersion`: where it must point now, 0 = absent).
   * Not retried (the method has side effects): a lost answer leaves the decision to the caller.
   */
  setPromptLabel(
    request: {
      id: string;
      label: string;
      version: number;
      expectedVersion: number;
      reason: string;
      project: string;
    },
    call: CallOptions,
  ): Promise<SetPromptLabelResponse>;
  /** A page of the change feed: `project` "" with the all-projects token = every project's events. */
  listPromptEvents(
    request: { afterSequence: bigint; pageSize: number; project: string },
    call: CallOptions,
  ): Promise<ListPromptEventsResponse>;
  /**
   * The event stream (`project` as in listPromptEvents); not retried here (the consumer reconnects). Ends when
   * `signal` aborts.
   */
  watchPromptEvents(
    request: { afterSequence: bigint; project: string },
    call: { token: string; signal: AbortSignal },
  ): AsyncIterable<WatchPromptEventsResponse>;
  readonly breakerState: "closed" | "open" | "half-open" | "isolated";
  close(): void;
}

const transientCodes = new Set([Code.Unavailable, Code.ResourceExhausted]);
/** Failures that say something about the dependency's health (they count for the breaker). */
const breakerCodes = new Set([
  Code.Unavailable,
  Code.ResourceExhausted,
  Code.DeadlineExceeded,
  Code.Unknown,
  Code.Internal,
]);

export function isRetrySafe(method: DescMethod): boolean {
  return (
    method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS ||
    method.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT
  );
}

/** The UNAVAILABLE error a handler throws when prompt-service cannot answer (names the dependency). */
export function promptServiceUnavailable(e: unknown): UnavailableError {
  let reason: string;
  if (e instanceof BrokenCircuitError) reason = "circuit breaker open after repeated failures";
  else if (e instanceof ConnectError) reason = `${Code[e.code] ?? e.code}: ${e.rawMessage}`;
  else if (e instanceof Error) reason = e.message;
  else reason = String(e);
  return new UnavailableError(`prompt-service unavailable: ${reason}`, {
    reason: "DEPENDENCY_UNAVAILABLE",
    metadata: { dependency: "prompt-service" },
  });
}

const tracer = trace.getTracer("@autoforge/evaluation-service");

/**
 * One attempt as an OpenTelemetry client span (`autoforge.prompt.v1.PromptService/GetPrompt`), child of the
 * active span (the RPC being served), with its W3C `traceparent` in the request headers: prompt-service's
 * server span becomes its child. A no-op without an SDK.
 */
function tracedAttempt<T>(
  method: DescMethod,
  headers: Headers,
  run: (headers: Headers) => Promise<T>,
): Promise<T> {
  const service = PromptService.typeName;
  return tracer.startActiveSpan(
    `${service}/${method.name}`,
    {
      kind: SpanKind.CLIENT,
      attributes: { "rpc.system": "grpc", "rpc.service": service, "rpc.method": method.name },
    },
    async (span) => {
      const withTrace = new Headers(headers);
      injectTraceContext(withTrace);
      try {
        const result = await run(withTrace);
        span.setAttribute("rpc.grpc.status_code", 0);
        return result;
      } catch (e) {
        const err = ConnectError.from(e);
        span.setAttribute("rpc.grpc.status_code", err.code);
        span.setStatus({ code: SpanStatusCode.ERROR, message: err.rawMessage });
        throw e;
      } finally {
        span.end();
      }
    },
  );
}

export function createPromptClient(options: PromptClientOptions): PromptClient {
  const {
    logger,
    maxAttempts = 4,
    initialDelayMs = 50,
    maxDelayMs = 1_000,
    deadlineMarginMs = 250,
    breakerThreshold = 5,
    halfOpenAfterMs = 2_000,
  } = options;
  const own =
    options.transport === undefined ? createGrpcJsTransport({ address: options.baseUrl }) : undefined;
  const client = createClient(PromptService, own ?? (options.transport as Transport));

  const breaker = circuitBreaker(
    handleWhen((e) => e instanceof ConnectError && breakerCodes.has(e.code)),
    { halfOpenAfter: halfOpenAfterMs, breaker: new ConsecutiveBreaker(breakerThreshold) },
  );
  breaker.onBreak(() => logger.warn({ dependency: "prompt-service" }, "circuit breaker opened"));
  breaker.onReset(() => logger.info({ dependency: "prompt-service" }, "circuit breaker closed"));

  /** Runs one unary method under the budget, breaker and (when the method allows it) retry policy. */
  async function call<T>(
    method: DescMethod,
    callOptions: CallOptions,
    invoke: (opts: { timeoutMs: number; headers: Headers; signal: AbortSignal | undefined }) => Promise<T>,
  ): Promise<T> {
    const now = Date.now();
    const remaining = callOptions.deadline - now;
    // The budget ends a margin before the caller's deadline (at most half of what is left), so the caller
    // still has time to answer UNAVAILABLE itself.
    const budgetEnd = now + Math.max(0, remaining - Math.min(deadlineMarginMs, remaining / 2));
    const retrySafe = isRetrySafe(method);
    const headers = new Headers({ authorization: `Bearer ${callOptions.token}` });
    if (callOptions.requestId !== undefined) headers.set("x-request-id", callOptions.requestId);

    const exponential = new ExponentialBackoff({
      generator: fullJitterGenerator,
      initialDelay: initialDelayMs,
      maxDelay: maxDelayMs,
    });
    let drawn: IBackoff<unknown> | undefined;
    let plannedDelay = 0;
    const replay = (): IBackoff<unknown> => ({ duration: plannedDelay, next: replay });
    const retryPolicy = retry(
      handleWhen((e) => {
        if (!retrySafe || !(e instanceof ConnectError) || !transientCodes.has(e.code)) return false;
        if (callOptions.signal?.aborted) return false;
        // Draw the delay here: a retry whose backoff would end past the budget is not taken.
        drawn = drawn === undefined ? exponential.next() : drawn.next(undefined);
        plannedDelay = drawn.duration;
        return Date.now() + plannedDelay < budgetEnd;
      }),
      { maxAttempts: maxAttempts - 1, backoff: { next: replay } },
    );
    const listener = retryPolicy.onRetry((event) => {
      logger.warn(
        {
          dependency: "prompt-service",
          rpc: method.name,
          attempt: event.attempt,
          delayMs: event.delay,
          error: "error" in event ? String(event.error) : undefined,
        },
        "retrying prompt-service call",
      );
    });
    let lastError: unknown;
    try {
      return await retryPolicy.execute(
        () =>
          breaker.execute(async () => {
            const timeoutMs = Math.floor(budgetEnd - Date.now());
            if (timeoutMs <= 0) {
              throw (
                lastError ??
                new ConnectError("no time left before the caller's deadline", Code.DeadlineExceeded)
              );
            }
            try {
              return await tracedAttempt(method, headers, (traced) =>
                invoke({ timeoutMs, headers: traced, signal: callOptions.signal }),
              );
            } catch (e) {
              lastError = e;
              throw e;
            }
          }),
        callOptions.signal,
      );
    } finally {
      listener.dispose();
    }
  }

  return {
    getPrompt(request, callOptions) {
      return call(PromptService.method.getPrompt, callOptions, (o) =>
        client.getPrompt({ id: request.id, version: request.version, project: request.project }, o),
      );
    },
    setPromptLabel(request, callOptions) {
      return call(PromptService.method.setPromptLabel, callOptions, (o) => client.setPromptLabel(request, o));
    },
    listPromptEvents(request, callOptions) {
      return call(PromptService.method.listPromptEvents, callOptions, (o) =>
        client.listPromptEvents(
          { afterSequence: request.afterSequence, pageSize: request.pageSize, project: request.project },
          o,
        ),
      );
    },
    watchPromptEvents(request, callOptions) {
      return client.watchPromptEvents(
        { afterSequence: request.afterSequence, project: request.project },
        { headers: { authorization: `Bearer ${callOptions.token}` }, signal: callOptions.signal },
      );
    },
    get breakerState() {
      switch (breaker.state) {
        case CircuitState.Closed:
          return "closed";
        case CircuitState.Open:
          return "open";
        case CircuitState.HalfOpen:
          return "half-open";
        default:
          return "isolated";
      }
    },
    close() {
      own?.close();
    },
  };
}
