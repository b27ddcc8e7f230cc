import { trace } from "@opentelemetry/api";
import { type DestinationStream, type Level, type Logger, pino } from "pino";

/** Where a drizzle "Failed query" message lists the statement's bound values, up to the stack frames. */
const boundParams = /\nparams: [\s\S]*?(?=\n\s+at |$)/g;
const redactedParams = "\nparams: [redacted]";

type SerializedError = Record<string, unknown> & { cause?: unknown; aggregateErrors?: unknown };

function scrub(node: unknown, depth: number): void {
  if (typeof node !== "object" || node === null || depth > 8) return;
  const e = node as SerializedError;
  // drizzle's DrizzleQueryError carries the bound values as `params` and in its message and stack
  if ("params" in e) e.params = "[redacted]";
  for (const key of ["message", "stack"] as const) {
    const value = e[key];
    if (typeof value === "string") e[key] = value.replace(boundParams, redactedParams);
  }
  scrub(e.cause, depth + 1);
  if (Array.isArray(e.aggregateErrors)) for (const a of e.aggregateErrors) scrub(a, depth + 1);
}

/**
 * pino's error serializer (type, message, stack, own fields, the cause chain) without the bound values of a
 * failed statement: those are user data (prompt text, names) and never belong in a log. The SQL text stays.
 */
export function serializeError(err: unknown): unknown {
  const serialized = pino.stdSerializers.errWithCause(err as Error) as unknown;
  scrub(serialized, 0);
  return serialized;
}

/** `trace_id` / `span_id` / `trace_flags` of the active span (OpenTelemetry's log correlation fields). */
function traceFields(): Record<string, string> {
  const span = trace.getActiveSpan();
  if (span === undefined) return {};
  const sc = span.spanContext();
  if (!trace.isSpanContextValid(sc)) return {};
  return {
    trace_id: sc.traceId,
    span_id: sc.spanId,
    trace_flags: `0${sc.traceFlags.toString(16)}`.slice(-2),
  };
}

export interface ServiceLoggerOptions {
  /** The `service` field of every line. */
  readonly service: string;
  readonly level: Level | "silent";
  /** Default: stdout. */
  readonly destination?: DestinationStream;
}

/**
 * A service process's root logger: JSON lines with `"level":"info"` (not pino's numbers), an ISO-8601
 * `time`, the `service`, and — inside a traced call — the trace and span ids, so every line of a call can be
 * found from its trace. Errors are serialized without the bound values of failed statements.
 */
export function createServiceLogger(options: ServiceLoggerOptions): Logger {
  return pino(
    {
      level: options.level,
      base: { service: options.service },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: serializeError },
      mixin: traceFields,
    },
    options.destination,
  );
}
