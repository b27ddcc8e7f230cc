import {
  type Context,
  context,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type TextMapSetter,
  trace,
} from "@opentelemetry/api";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  BatchSpanProcessor,
  ConsoleSpanExporter,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace-base";
import { NodeTracerProvider } from "@opentelemetry/sdk-trace-node";
import { ConfigError, type Env } from "./config.js";

/**
 * The kit's tracer. Only `@opentelemetry/api` is used on the call path: without a registered SDK
 * (`startTracing` below, or a test's provider) every span is a no-op.
 */
export const tracer = trace.getTracer("@autoforge/server");

/** Reads W3C `traceparent` / `tracestate` from a fetch `Headers` (both ports hand the chain one). */
export const headersGetter: TextMapGetter<Headers> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key) ?? undefined,
};

/** Writes `traceparent` / `tracestate` into outgoing request headers. */
export const headersSetter: TextMapSetter<Headers> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

/** The caller's trace context from the request headers (ROOT_CONTEXT when it sent none). */
export function extractTraceContext(headers: Headers): Context {
  return propagation.extract(ROOT_CONTEXT, headers, headersGetter);
}

/** Adds the active span's `traceparent` to `headers` (nothing without an SDK or an active span). */
export function injectTraceContext(headers: Headers, ctx: Context = context.active()): void {
  propagation.inject(ctx, headers, headersSetter);
}

/**
 * The status codes OpenTelemetry's RPC conventions count as a server-side error (the others are the
 * caller's: NOT_FOUND, INVALID_ARGUMENT, ...).
 */
const serverErrorCodes = new Set([2, 4, 12, 13, 14, 15]);

/** Ends an RPC span with its gRPC status code (0 = OK); error status for server-side failures. */
export function endRpcSpan(span: Span, code: number, message: string | undefined, kind: SpanKind): void {
  span.setAttribute("rpc.grpc.status_code", code);
  if (code !== 0 && (kind === SpanKind.CLIENT || serverErrorCodes.has(code))) {
    span.setStatus({ code: SpanStatusCode.ERROR, ...(message === undefined ? {} : { message }) });
  }
  span.end();
}

/** `rpc.system` for a protocol name of the ports ("grpc", "grpc-web", "connect"). */
export function rpcSystem(protocol: string): string {
  return protocol === "connect" ? "connect_rpc" : "grpc";
}

export interface TracingOptions {
  /** `service.name` of the resource (`OTEL_SERVICE_NAME` wins when set). */
  readonly serviceName: string;
  /** The process environment: only the standard `OTEL_*` variables are read. */
  readonly env: Env;
  /** For tests: span processors to use instead of the ones built from the environment. */
  readonly spanProcessors?: readonly SpanProcessor[];
}

export interface Tracing {
  /** Exports the spans still buffered, then stops the SDK. */
  shutdown(): Promise<void>;
}

function exporterFor(name: string): SpanExporter | undefined {
  switch (name) {
    case "otlp":
      // endpoint, headers, timeout and compression from the OTEL_EXPORTER_OTLP_[TRACES_]* variables
      return new OTLPTraceExporter();
    case "console":
      return new ConsoleSpanExporter();
    case "none":
      return undefined;
    default:
      throw new ConfigError(
        "OTEL_TRACES_EXPORTER",
        `names an unsupported exporter ${JSON.stringify(name)} (otlp, console, none)`,
      );
  }
}

/**
 * The exporters the standard variables ask for: `OTEL_TRACES_EXPORTER` (comma-separated: otlp, console,
 * none), else `otlp` when an OTLP endpoint is set, else none: tracing stays off unless configured.
 */
export function tracesExporters(env: Env): string[] {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return [];
  const named = env.OTEL_TRACES_EXPORTER?.split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "");
  if (named !== undefined && named.length > 0) return named.filter((s) => s !== "none");
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ?? env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return endpoint !== undefined && endpoint.trim() !== "" ? ["otlp"] : [];
}

/**
 * Starts the OpenTelemetry SDK when the environment asks for traces (see `tracesExporters`), with a
 * BatchSpanProcessor per exporter (`OTEL_BSP_*`), the sampler of `OTEL_TRACES_SAMPLER`, the W3C trace-context
 * propagator and async-local-storage context. Returns undefined (and registers nothing) when tracing is off.
 * Call it in main, before the server is created; `shutdown` at exit flushes what is buffered.
 */
export function startTracing(options: TracingOptions): Tracing | undefined {
  const processors =
    options.spanProcessors ??
    tracesExporters(options.env)
      .map(exporterFor)
      .filter((e): e is SpanExporter => e !== undefined)
      .map((e) => new BatchSpanProcessor(e));
  if (processors.length === 0) return undefined;
  const serviceName = options.env.OTEL_SERVICE_NAME?.trim() || options.serviceName;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ "service.name": serviceName }),
    spanProcessors: [...processors],
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  return {
    async shutdown() {
      await provider.shutdown();
      trace.disable();
      propagation.disable();
      context.disable();
    },
  };
}
