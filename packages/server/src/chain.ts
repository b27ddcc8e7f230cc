import { create, type DescMethod, type Message, toJson } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { context, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { Logger } from "pino";
import { uuidv7 } from "uuidv7";
import type { Authenticator } from "./auth.js";
import type { CallContext, DatabaseBinding, Principal } from "./context.js";
import {
  codeName,
  DeadlineExceededError,
  InvalidArgumentError,
  mapError,
  PermissionDeniedError,
  toConnectError,
  UnavailableError,
} from "./errors.js";
import type { RpcMetrics } from "./metrics.js";
import { type ProjectScope, resolveProjectScope } from "./projects.js";
import type { RegisteredService } from "./service.js";
import { endRpcSpan, extractTraceContext, rpcSystem, tracer } from "./tracing.js";

/** What a transport adapter hands the chain for one call (the only transport-specific part). */
export interface IncomingCall {
  readonly service: RegisteredService<unknown>;
  readonly method: DescMethod;
  /** "grpc" on the gRPC port; "connect", "grpc-web" or "grpc" on the Connect port. */
  readonly protocol: string;
  readonly requestHeaders: Headers;
  /** The client's timeout, if it sent one. */
  readonly timeoutMs: number | undefined;
  /** Aborted when the client cancels or disconnects. */
  readonly transportSignal: AbortSignal;
  readonly request: Message;
  /** Set when the request's bytes did not decode (`request` is then empty): the call fails with it. */
  readonly decodeError?: Error | undefined;
  /**
   * Client streaming only: the messages after `request` (the first message, or an empty one when the client
   * sent none). Iterating throws UndecodableRequestError for a message that does not decode.
   */
  readonly rest?: AsyncIterable<Message> | undefined;
  /** Sends one response message; resolves when the next may be sent. */
  send(response: Message): Promise<void>;
  setResponseHeader(name: string, value: string): void;
}

/** Runs one call through the chain. Rejects with a ConnectError that is already mapped and logged. */
export type CallPipeline = (call: IncomingCall) => Promise<void>;

/** Per-call state the middleware fills in, stage by stage. */
export interface CallState {
  readonly call: IncomingCall;
  readonly streaming: boolean;
  requestId: string;
  /** The call's child logger (service, rpc, requestId), created on first use: most calls never need it. */
  logger: () => Logger;
  deadline: number;
  controller: AbortController;
  principal: Principal | undefined;
  /** Set by auth for methods that act in a project. */
  project: ProjectScope | undefined;
}

export type Middleware = (state: CallState, next: () => Promise<void>) => Promise<void>;

/** Tracks calls in flight so shutdown can refuse new ones, end streams, and wait for the rest. */
export interface CallTracker {
  readonly draining: boolean;
  readonly inFlight: number;
  /** Registers a call; returns its release function. Throws UNAVAILABLE while draining. */
  admit(controller: AbortController, streaming: boolean): () => void;
  /** Refuse new calls, and end streams (their signal aborts with UNAVAILABLE). */
  drain(): void;
  /** Abort every call still in flight (grace period over). */
  abortAll(): void;
  /** Resolves once no call is in flight. */
  idle(): Promise<void>;
}

export function createCallTracker(): CallTracker {
  const calls = new Map<AbortController, boolean>();
  let draining = false;
  let waiters: (() => void)[] = [];
  // RetryInfo (the default delay): another replica, or this one restarted, can answer
  const shuttingDown = () => new UnavailableError("the server is shutting down", { reason: "SHUTTING_DOWN" });
  return {
    get draining() {
      return draining;
    },
    get inFlight() {
      return calls.size;
    },
    admit(controller, streaming) {
      if (draining) throw shuttingDown();
      calls.set(controller, streaming);
      return () => {
        calls.delete(controller);
        if (calls.size === 0) {
          for (const w of waiters) w();
          waiters = [];
        }
      };
    },
    drain() {
      draining = true;
      for (const [controller, streaming] of calls) if (streaming) controller.abort(shuttingDown());
    },
    abortAll() {
      for (const controller of calls.keys()) controller.abort(shuttingDown());
    },
    idle() {
      return calls.size === 0 ? Promise.resolve() : new Promise((resolve) => waiters.push(resolve));
    },
  };
}

/** Observes each call (metrics): started, messages received and sent, handled with its final code. */
export type CallObserver = RpcMetrics;

export interface ChainOptions<Tx> {
  readonly logger: Logger;
  readonly authenticate: Authenticator;
  readonly database: DatabaseBinding<Tx> | undefined;
  readonly tracker: CallTracker;
  /** Cap (and default) for a call's deadline. */
  readonly maxTimeoutMs: number;
  readonly observe?: CallObserver | undefined;
}

/**
 * The call's server span (`package.Service/Method`), child of the caller's W3C `traceparent` when it sent one;
 * the rest of the chain runs in its context, so log lines carry its trace id and outbound calls and units of
 * work become its children. A no-op without an OpenTelemetry SDK.
 */
export const tracingMiddleware: Middleware = async (state, next) => {
  const { call } = state;
  const parent = extractTraceContext(call.requestHeaders);
  const span = tracer.startSpan(
    `${call.service.service.typeName}/${call.method.name}`,
    {
      kind: SpanKind.SERVER,
      attributes: {
        "rpc.system": rpcSystem(call.protocol),
        "rpc.service": call.service.service.typeName,
        "rpc.method": call.method.name,
        "rpc.protocol": call.protocol,
      },
    },
    parent,
  );
  let code: Code | 0 = 0;
  let message: string | undefined;
  try {
    await context.with(trace.setSpan(parent, span), next);
  } catch (e) {
    const err = ConnectError.from(e);
    code = err.code;
    message = err.rawMessage;
    throw err;
  } finally {
    endRpcSpan(span, code, message, SpanKind.SERVER);
  }
};

const requestIdPattern = /^[\w.:/+=-]{1,128}$/;

/** `x-request-id` from the client (when sane), else a new UUIDv7; echoed back in the response header. */
export const requestIdMiddleware: Middleware = (state, next) => {
  const given = state.call.requestHeaders.get("x-request-id");
  state.requestId = given !== null && requestIdPattern.test(given) ? given : uuidv7();
  state.call.setResponseHeader("x-request-id", state.requestId);
  return next();
};

function logLevel(code: Code | 0): "debug" | "warn" | "error" {
  switch (code) {
    case Code.Internal:
    case Code.Unknown:
    case Code.DataLoss:
      return "error";
    case Code.PermissionDenied:
    case Code.Unauthenticated:
    case Code.Unavailable:
    case Code.DeadlineExceeded:
    case Code.ResourceExhausted:
      return "warn";
    default:
      // the access line of a call that went as the caller asked (or failed by the caller's doing): at info
      // this would be one line per request, drowning what matters under load
      return "debug";
  }
}

function bodyAsJson(message: Message, method: DescMethod): unknown {
  try {
    return toJson(method.input, message);
  } catch {
    return "(not representable as JSON)";
  }
}

/**
 * One JSON line per call: rpc (`package.Service/Method`), requestId, principal, protocol, code, durationMs
 * (and, inside a traced call, trace_id / span_id from the logger's mixin); the process logger's own `service`
 * field names the service process. The line is at debug for OK and the caller's own errors (NOT_FOUND,
 * INVALID_ARGUMENT, ...), at warn / error for the codes that need a look; the request body only at debug.
 */
export function loggingMiddleware(root: Logger, observe?: CallObserver): Middleware {
  return async (state, next) => {
    const { call } = state;
    const bindings = {
      rpc: `${call.service.service.typeName}/${call.method.name}`,
      requestId: state.requestId,
    };
    let child: Logger | undefined;
    state.logger = () => {
      child ??= root.child(bindings);
      return child;
    };
    const observed = { service: call.service.service, method: call.method, protocol: call.protocol };
    observe?.started(observed);
    if (call.decodeError === undefined) observe?.received(observed);
    const started = performance.now();
    let code: Code | 0 = 0;
    let message: string | undefined;
    try {
      await next();
    } catch (e) {
      const err = ConnectError.from(e);
      code = err.code;
      message = err.rawMessage;
      throw err;
    } finally {
      const durationMs = Math.round((performance.now() - started) * 1000) / 1000;
      const level = logLevel(code);
      if (root.isLevelEnabled(level)) {
        const debug = root.isLevelEnabled("debug");
        root[level](
          {
            ...bindings,
            protocol: call.protocol,
            principal: state.principal?.subject,
            code: codeName(code),
            durationMs,
            ...(message === undefined ? {} : { error: message }),
            ...(debug ? { request: bodyAsJson(call.request, call.method) } : {}),
          },
          code === 0 ? "call ok" : "call failed",
        );
      }
      observe?.handled(observed, code, durationMs / 1000);
    }
  };
}

function isAbortLike(e: unknown, signal: AbortSignal): boolean {
  return (
    signal.aborted &&
    (e === signal.reason || (e instanceof Error && (e.name === "AbortError" || e.name === "TimeoutError")))
  );
}

/**
 * The one place errors become statuses (see `mapError`). Sits just inside logging, so every failure (auth,
 * validation, handler, database) is mapped once and the log line carries the final code. INTERNAL causes
 * are logged here and never sent.
 */
export const errorMiddleware: Middleware = async (state, next) => {
  try {
    await next();
  } catch (e) {
    // An abort surfacing as a generic AbortError (e.g. from the database) reports why the call was aborted.
    const source = isAbortLike(e, state.controller.signal) ? state.controller.signal.reason : e;
    const mapped = mapError(source, state.deadline);
    if (mapped.cause !== undefined) state.logger().error({ err: mapped.cause }, "unexpected error");
    throw toConnectError(mapped);
  }
};

/** Refuses calls while the server drains, and tracks the rest. */
export function admissionMiddleware(tracker: CallTracker): Middleware {
  return async (state, next) => {
    const release = tracker.admit(state.controller, state.streaming);
    try {
      await next();
    } finally {
      release();
    }
  };
}

/**
 * Unary and client-streaming calls: deadline = now + min(client timeout, maxTimeoutMs). Server streams (change feeds) are meant to
 * stay open: they end at the client's own deadline if it sent one, else on cancel or shutdown. The call's
 * signal aborts on deadline or client cancel.
 */
export function deadlineMiddleware(maxTimeoutMs: number): Middleware {
  return async (state, next) => {
    const { call, controller } = state;
    const timeoutMs = state.streaming
      ? call.timeoutMs
      : Math.min(call.timeoutMs ?? maxTimeoutMs, maxTimeoutMs);
    state.deadline = timeoutMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeoutMs;
    const timer =
      timeoutMs === undefined
        ? undefined
        : setTimeout(() => controller.abort(new DeadlineExceededError("deadline exceeded")), timeoutMs);
    const onCancel = () => {
      // Transports also end a call whose deadline passed (connect-node aborts with DEADLINE_EXCEEDED, grpc-js
      // reports it as a cancel): keep the code the client sees in the log.
      const reason: unknown = call.transportSignal.reason;
      const expired =
        (reason instanceof ConnectError && reason.code === Code.DeadlineExceeded) ||
        Date.now() >= state.deadline - 5;
      controller.abort(
        expired
          ? new DeadlineExceededError("deadline exceeded")
          : new ConnectError("the client cancelled the call", Code.Canceled),
      );
    };
    if (call.transportSignal.aborted) onCancel();
    else call.transportSignal.addEventListener("abort", onCancel, { once: true });
    try {
      if (controller.signal.aborted) throw controller.signal.reason;
      await next();
    } finally {
      clearTimeout(timer);
      call.transportSignal.removeEventListener("abort", onCancel);
    }
  };
}

/** A request that did not decode fails here, before auth and validation look at its (empty) fields. */
export const decodeMiddleware: Middleware = (state, next) => {
  if (state.call.decodeError !== undefined) throw state.call.decodeError;
  return next();
};

/**
 * Bearer token -> principal (UNAUTHENTICATED), then the method's declared access: the project the request
 * names and the caller's role there (NOT_FOUND for a project the caller is no member of, PERMISSION_DENIED
 * for a member without the role), or an operator role for methods without a project.
 */
export function authMiddleware(authenticate: Authenticator): Middleware {
  return async (state, next) => {
    const { call } = state;
    const principal = await authenticate(call.requestHeaders.get("authorization"));
    state.principal = principal;
    const needs = call.service.access(call.method);
    if (needs.kind === "operator") {
      if (!principal.roles.some((r) => needs.roles.includes(r))) {
        throw new PermissionDeniedError(
          `${call.method.name} requires one of the roles: ${needs.roles.join(", ")}`,
        );
      }
    } else {
      const requested = call.service.hasProjectField(call.method)
        ? String((call.request as unknown as { project?: unknown }).project ?? "")
        : "";
      state.project = resolveProjectScope(principal, requested, needs, call.method.name);
    }
    await next();
  };
}

/** The request's one declaration of constraints; runs before the handler, so bad input changes nothing. */
export const validationMiddleware: Middleware = (state, next) => {
  const { call } = state;
  call.service.validators.get(call.method.input.typeName)?.validate(call.request);
  return next();
};

/** Rejects with the signal's reason as soon as it aborts; `promise` keeps running but is ignored. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) {
    promise.catch(() => {});
    return Promise.reject(signal.reason);
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener("abort", onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener("abort", onAbort);
        reject(e);
      },
    );
  });
}

function createCallContext<Tx>(state: CallState, database: DatabaseBinding<Tx> | undefined): CallContext<Tx> {
  const { call } = state;
  const principal = state.principal;
  if (principal === undefined) throw new Error("handler reached without a principal");
  const signal = state.controller.signal;
  // A stream may run one unit of work per message (each short, one after the other), a `stepwise` method one per
  // step; any other call runs one.
  const perMessage = call.method.methodKind !== "unary" || call.service.isStepwise(call.method);
  let unitOfWorkUsed = false;
  let unitOfWorkOpen = false;
  return {
    service: call.service.service,
    method: call.method,
    principal,
    get project() {
      if (state.project === undefined) throw new Error(`${call.method.name} does not act in a project`);
      return state.project;
    },
    requestId: state.requestId,
    deadline: state.deadline,
    signal,
    requestHeaders: call.requestHeaders,
    get logger() {
      return state.logger();
    },
    unitOfWork(fn) {
      if (unitOfWorkUsed && !perMessage)
        throw new Error(`${call.method.name}: unitOfWork may be called at most once per call`);
      if (unitOfWorkOpen)
        throw new Error(`${call.method.name}: a unit of work is already open in this call (one at a time)`);
      unitOfWorkUsed = true;
      if (database === undefined) throw new Error("no database configured for this server");
      const readOnly = call.method.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS;
      const kind = readOnly ? "read" : "write";
      // a server stream without a client timeout has no deadline (Infinity): none for its units either (a timer
      // of Infinity ms overflows and would fire at once)
      const options = Number.isFinite(state.deadline) ? { deadline: state.deadline, signal } : { signal };
      let attempts = 0;
      const run = (tx: Tx) => {
        attempts++;
        return fn(tx, {
          async audit(entry) {
            if (readOnly)
              throw new Error(`${call.method.name} is NO_SIDE_EFFECTS: it may not write audit rows`);
            await database.appendAudit(tx, {
              ...entry,
              actor: principal.subject,
              requestId: state.requestId,
            });
          },
        });
      };
      // one span for the unit of work, retries included: kind and how many attempts it took
      unitOfWorkOpen = true;
      return tracer.startActiveSpan(
        `unit of work ${kind}`,
        { attributes: { "db.unit_of_work.kind": kind } },
        async (span) => {
          try {
            return await (readOnly ? database.db.read(run, options) : database.db.write(run, options));
          } catch (e) {
            // the error's name only: a database error's message may carry the statement's values
            span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.name : "error" });
            throw e;
          } finally {
            unitOfWorkOpen = false;
            span.setAttribute("db.unit_of_work.attempts", attempts);
            span.end();
          }
        },
      );
    },
  };
}

/**
 * A client stream's requests as the handler sees them: the first message (already through auth and validation),
 * then each later one as it arrives, validated like the first and counted as received. A later message may
 * leave `project` empty or repeat the first one's; another project is INVALID_ARGUMENT (the call's project and
 * role were resolved once, on the first message). Every read races the call's signal, so a cancelled client
 * or a passed deadline ends the iteration with that reason.
 */
async function* clientStream(
  state: CallState,
  observe: CallObserver | undefined,
): AsyncGenerator<Message, void, undefined> {
  const { call } = state;
  const signal = state.controller.signal;
  yield call.request;
  if (call.rest === undefined) return;
  const validator = call.service.validators.get(call.method.input.typeName);
  const projectOf = (m: Message) =>
    call.service.hasProjectField(call.method)
      ? String((m as unknown as { project?: unknown }).project ?? "")
      : "";
  const project = projectOf(call.request);
  const observed = { service: call.service.service, method: call.method, protocol: call.protocol };
  const iterator = call.rest[Symbol.asyncIterator]();
  let received = 1;
  let finished = false;
  try {
    for (;;) {
      const next = await raceAbort(iterator.next(), signal);
      if (next.done === true) break;
      observe?.received(observed);
      const requested = projectOf(next.value);
      if (requested !== "" && requested !== project && requested !== state.project?.id) {
        throw new InvalidArgumentError(
          "project",
          "must be empty or the first message's project in every message of the stream",
        );
      }
      received++;
      try {
        validator?.validate(next.value);
      } catch (e) {
        if (!(e instanceof InvalidArgumentError)) throw e;
        // the fields are the message's own: say which message of the stream they are in
        const [first, ...more] = e.violations.map((v) => ({
          ...v,
          description: `${v.description} (message ${received} of the stream)`,
        }));
        throw new InvalidArgumentError([first as (typeof e.violations)[0], ...more]);
      }
      yield next.value;
    }
    finished = true;
  } finally {
    if (!finished) iterator.return?.().catch(() => {});
  }
}

function handlerStage<Tx>(database: DatabaseBinding<Tx> | undefined, observe?: CallObserver): Middleware {
  return async (state) => {
    const { call } = state;
    const ctx = createCallContext(state, database);
    const signal = state.controller.signal;
    const handler = call.service.handler(call.method);
    const output = call.method.output;
    if (call.method.methodKind === "client_streaming") {
      const response = await raceAbort(
        handler(clientStream(state, observe), ctx as CallContext<unknown>) as Promise<unknown>,
        signal,
      );
      await call.send(create(output, response as never));
      return;
    }
    if (!state.streaming) {
      const response = await raceAbort(
        handler(call.request, ctx as CallContext<unknown>) as Promise<unknown>,
        signal,
      );
      await call.send(create(output, response as never));
      return;
    }
    const iterator = (handler(call.request, ctx as CallContext<unknown>) as AsyncIterable<unknown>)[
      Symbol.asyncIterator
    ]();
    let finished = false;
    try {
      for (;;) {
        const result = await raceAbort(iterator.next(), signal);
        if (result.done === true) break;
        await raceAbort(call.send(create(output, result.value as never)), signal);
      }
      finished = true;
    } finally {
      // Stop the generator so its finally blocks run; not awaited, it may be suspended in an await.
      if (!finished) iterator.return?.().catch(() => {});
    }
  };
}

function compose(middleware: readonly Middleware[]): (state: CallState) => Promise<void> {
  return (state) => {
    const dispatch = (i: number): Promise<void> => {
      const m = middleware[i];
      if (m === undefined) return Promise.resolve();
      return m(state, () => dispatch(i + 1));
    };
    return dispatch(0);
  };
}

/**
 * The chain, identical for both ports:
 * trace span -> request id -> logging -> error mapping -> admission (drain) -> deadline -> decode -> auth -> validation ->
 * handler.
 */
export function createCallPipeline<Tx>(options: ChainOptions<Tx>): CallPipeline {
  const run = compose([
    tracingMiddleware,
    requestIdMiddleware,
    loggingMiddleware(options.logger, options.observe),
    errorMiddleware,
    admissionMiddleware(options.tracker),
    deadlineMiddleware(options.maxTimeoutMs),
    decodeMiddleware,
    authMiddleware(options.authenticate),
    validationMiddleware,
    handlerStage(options.database, options.observe),
  ]);
  const observe = options.observe;
  return (incoming) => {
    // counts each response message the transport accepted (one over the size limit throws in send)
    const observed = {
      service: incoming.service.service,
      method: incoming.method,
      protocol: incoming.protocol,
    };
    const call: IncomingCall =
      observe === undefined
        ? incoming
        : {
            ...incoming,
            send: async (m) => {
              await incoming.send(m);
              observe.sent(observed);
            },
          };
    return run({
      call,
      streaming: call.method.methodKind === "server_streaming",
      requestId: "",
      logger: () => options.logger,
      deadline: Date.now() + options.maxTimeoutMs,
      controller: new AbortController(),
      principal: undefined,
      project: undefined,
    });
  };
}
