import type { DescMessage, DescMethodStreaming, DescMethodUnary, MessageInitShape } from "@bufbuild/protobuf";
import {
  Code,
  ConnectError,
  type ContextValues,
  createContextValues,
  type Interceptor,
  type StreamResponse,
  type Transport,
  type UnaryResponse,
} from "@connectrpc/connect";
import { runStreamingCall, runUnaryCall } from "@connectrpc/connect/protocol";
import {
  createRequestIdInterceptor,
  createRetryInterceptor,
  deadlineKey,
  type RetryOptions,
} from "./retry.js";
import type { TokenProvider } from "./token.js";

/** Default deadline of a unary call (ms) when the call passes no `timeoutMs` of its own. */
export const defaultTimeoutMs = 10_000;

export interface PolicyTransportOptions {
  tokens: TokenProvider;
  /** Deadline of each unary call without its own `timeoutMs` (ms). Default 10 s; 0: none. Streams: none. */
  timeoutMs?: number;
  /** Retry rules (see retry.ts); `false`: no retries (request ids are still generated). */
  retry?: RetryOptions | false;
  /** Run on every attempt, after the token is set (logging, metrics, extra headers). */
  interceptors?: Interceptor[];
}

/**
 * A per-attempt interceptor that sends `authorization: Bearer <token>` from the provider, unless the call set
 * its own `authorization` header (a service forwarding its caller's token). A token the server refuses
 * (UNAUTHENTICATED) is forgotten, so the next call asks the provider for a new one.
 */
export function createAuthInterceptor(tokens: TokenProvider): Interceptor {
  return (next) => async (req) => {
    if (req.header.has("authorization")) return next(req);
    const token = await tokens.token(req.signal);
    if (token === "") return next(req);
    const header = new Headers(req.header);
    header.set("authorization", `Bearer ${token}`);
    try {
      return await next({ ...req, header });
    } catch (e) {
      if (e instanceof ConnectError && e.code === Code.Unauthenticated) tokens.invalidate(token);
      throw e;
    }
  };
}

/**
 * Wraps any connect-es Transport (connect-node, connect-web, grpc-js) with the client's call policies, in this
 * order: default deadline, request id (once per logical call), retry, then per attempt the token and the
 * caller's interceptors. Each attempt is sent with the time left of the call's deadline (or `attemptTimeoutMs`,
 * whichever is shorter) as its timeout, so the server sees the real remaining budget. Errors pass through
 * unchanged: a `ConnectError` with its code, message, metadata and details.
 */
export function createPolicyTransport(inner: Transport, options: PolicyTransportOptions): Transport {
  const unaryTimeout = options.timeoutMs ?? defaultTimeoutMs;
  const retry = options.retry === false ? { maxAttempts: 1 } : (options.retry ?? {});
  const attemptTimeoutMs = retry.attemptTimeoutMs;
  const auth = createAuthInterceptor(options.tokens);
  const perAttempt = [auth, ...(options.interceptors ?? [])];
  const unaryInterceptors = [
    createRequestIdInterceptor({ generate: retry.generateRequestIds ?? true }),
    createRetryInterceptor(retry),
    ...perAttempt,
  ];

  return {
    unary<I extends DescMessage, O extends DescMessage>(
      method: DescMethodUnary<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: MessageInitShape<I>,
      contextValues?: ContextValues,
    ): Promise<UnaryResponse<I, O>> {
      const effective = positive(timeoutMs === undefined ? unaryTimeout : timeoutMs);
      const deadline = effective === undefined ? undefined : Date.now() + effective;
      const values = contextValues ?? createContextValues();
      values.set(deadlineKey, deadline);
      return runUnaryCall<I, O>({
        interceptors: unaryInterceptors,
        signal,
        timeoutMs: effective,
        req: {
          stream: false,
          service: method.parent,
          method,
          requestMethod: "POST",
          url: `/${method.parent.typeName}/${method.name}`,
          header: new Headers(header),
          contextValues: values,
          message: input,
        },
        next: (req) => {
          const attempt = attemptTimeout(deadline, attemptTimeoutMs);
          if (attempt !== undefined && attempt <= 0) {
            return Promise.reject(new ConnectError("the call's deadline has passed", Code.DeadlineExceeded));
          }
          return inner.unary(req.method, req.signal, attempt, req.header, req.message, req.contextValues);
        },
      });
    },

    stream<I extends DescMessage, O extends DescMessage>(
      method: DescMethodStreaming<I, O>,
      signal: AbortSignal | undefined,
      timeoutMs: number | undefined,
      header: ConstructorParameters<typeof Headers>[0],
      input: AsyncIterable<MessageInitShape<I>>,
      contextValues?: ContextValues,
    ): Promise<StreamResponse<I, O>> {
      // Streams get no default deadline (a watch runs until it is aborted) and are never retried here.
      const effective = positive(timeoutMs);
      return runStreamingCall<I, O>({
        interceptors: perAttempt,
        signal,
        timeoutMs: effective,
        req: {
          stream: true,
          service: method.parent,
          method,
          requestMethod: "POST",
          url: `/${method.parent.typeName}/${method.name}`,
          header: new Headers(header),
          contextValues: contextValues ?? createContextValues(),
          message: input,
        },
        next: (req) =>
          inner.stream(req.method, req.signal, effective, req.header, req.message, req.contextValues),
      });
    },
  };
}

function positive(ms: number | undefined): number | undefined {
  return ms === undefined || ms <= 0 ? undefined : ms;
}

function attemptTimeout(
  deadline: number | undefined,
  attemptTimeoutMs: number | undefined,
): number | undefined {
  const left = deadline === undefined ? undefined : deadline - Date.now();
  if (attemptTimeoutMs === undefined || attemptTimeoutMs <= 0) return left;
  return left === undefined ? attemptTimeoutMs : Math.min(left, attemptTimeoutMs);
}
