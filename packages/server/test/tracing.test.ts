import { AdminService } from "@autoforge/contracts/admin/v1";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  access,
  createServer,
  createServiceLogger,
  type DatabaseBinding,
  defineService,
  type RegisteredService,
  type Server,
  startTracing,
  type Tracing,
  tracesExporters,
} from "../src/index.js";
import {
  bearer,
  connectTransport,
  connectUnary,
  grpcClient,
  grpcUnary,
  type Protocol,
  pollUntil,
  secret,
  testAdminService,
  testPromptService,
} from "./helpers.js";

const exporter = new InMemorySpanExporter();
let tracing: Tracing | undefined;
let server: Server;
let ports: { grpcPort: number; connectPort: number };
const lines: Record<string, unknown>[] = [];

beforeAll(async () => {
  tracing = startTracing({
    serviceName: "kit-test",
    env: {},
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const logger = createServiceLogger({
    service: "kit-test",
    level: "debug",
    destination: { write: (line: string) => lines.push(JSON.parse(line) as Record<string, unknown>) },
  });
  server = createServer({
    services: [testAdminService({ calls: {} }), testPromptService()],
    auth: { secret },
    logger,
  });
  ports = await server.listen({ host: "127.0.0.1", grpcPort: 0, connectPort: 0 });
});
afterAll(async () => {
  await server.shutdown({ graceMs: 500 });
  await tracing?.shutdown();
});
beforeEach(() => exporter.reset());

const method = "autoforge.admin.v1.AdminService/VerifyAuditChain";

/** A W3C traceparent with a fresh trace id per call: `00-<trace>-<parent span>-01`. */
function traceparent(n: number) {
  const traceId = `${n.toString(16).padStart(8, "0")}${"a".repeat(24)}`;
  const parent = `${n.toString(16).padStart(4, "0")}${"b".repeat(12)}`;
  return { traceId, parent, header: `00-${traceId}-${parent}-01` };
}

async function serverSpan(traceId: string, name = method): Promise<ReadableSpan> {
  await pollUntil(() =>
    exporter.getFinishedSpans().some((s) => s.spanContext().traceId === traceId && s.name === name),
  );
  const spans = exporter
    .getFinishedSpans()
    .filter((s) => s.spanContext().traceId === traceId && s.name === name);
  expect(spans).toHaveLength(1);
  return spans[0] as ReadableSpan;
}

describe("tracing in the server kit", () => {
  it("continues the caller's traceparent on the gRPC port and every Connect-port protocol", async () => {
    const headers = await bearer("alice", ["admin"]);
    const ways: [string, string, (h: Record<string, string>) => Promise<unknown>][] = [
      [
        "grpc port",
        "grpc",
        (h) =>
          grpcUnary(grpcClient(AdminService, ports.grpcPort), AdminService.method.verifyAuditChain, {}, h),
      ],
      ...(["connect", "grpc-web", "grpc-h2c"] as Protocol[]).map(
        (p): [string, string, (h: Record<string, string>) => Promise<unknown>] => [
          p,
          p === "grpc-h2c" ? "grpc" : p,
          (h) =>
            connectUnary(
              connectTransport(p, ports.connectPort),
              AdminService,
              AdminService.method.verifyAuditChain,
              {},
              h,
            ),
        ],
      ),
    ];
    for (const [i, [way, protocol, call]] of ways.entries()) {
      const tp = traceparent(i + 1);
      const requestId = `traced-${i}`;
      expect(await call({ ...headers, traceparent: tp.header, "x-request-id": requestId })).toMatchObject({
        ok: true,
      });
      const span = await serverSpan(tp.traceId);
      expect(span.kind, way).toBe(SpanKind.SERVER);
      expect(span.parentSpanContext?.spanId, way).toBe(tp.parent);
      expect(span.attributes, way).toMatchObject({
        "rpc.service": "autoforge.admin.v1.AdminService",
        "rpc.method": "VerifyAuditChain",
        "rpc.protocol": protocol,
        "rpc.grpc.status_code": 0,
      });
      // the call's access line carries the trace and span ids
      expect(
        lines.find((l) => l.requestId === requestId),
        way,
      ).toMatchObject({
        msg: "call ok",
        level: "debug",
        trace_id: tp.traceId,
        span_id: span.spanContext().spanId,
      });
    }
  });

  it("every log line of a failing call carries its trace id; INTERNAL is an error span", async () => {
    const tp = traceparent(99);
    const outcome = await connectUnary(
      connectTransport("connect", ports.connectPort),
      AdminService,
      AdminService.method.listAuditEvents,
      { resourceType: "boom" },
      { ...(await bearer("alice", ["admin"])), traceparent: tp.header, "x-request-id": "traced-boom" },
    );
    expect(outcome).toMatchObject({ ok: false, message: "internal error" });
    const span = await serverSpan(tp.traceId, "autoforge.admin.v1.AdminService/ListAuditEvents");
    expect(span.status.code).toBe(2); // ERROR
    expect(span.attributes["rpc.grpc.status_code"]).toBe(13);
    const ofCall = lines.filter((l) => l.requestId === "traced-boom");
    expect(ofCall.map((l) => l.msg)).toEqual(["unexpected error", "call failed"]);
    for (const l of ofCall) expect(l).toMatchObject({ level: "error", trace_id: tp.traceId });
  });

  it("a call without traceparent gets a new trace; lines outside calls carry none", async () => {
    const before = lines.length;
    const outcome = await connectUnary(
      connectTransport("connect", ports.connectPort),
      AdminService,
      AdminService.method.verifyAuditChain,
      {},
      { ...(await bearer("alice", ["admin"])), "x-request-id": "untraced" },
    );
    expect(outcome).toMatchObject({ ok: true });
    const line = lines.slice(before).find((l) => l.requestId === "untraced");
    expect(line?.trace_id).toMatch(/^[0-9a-f]{32}$/);
    const span = await serverSpan(String(line?.trace_id));
    expect(span.parentSpanContext).toBeUndefined();
    expect(lines.find((l) => l.msg === "listening")?.trace_id).toBeUndefined();
  });
});

describe("the unit-of-work span", () => {
  it("counts the attempts a unit of work took, retries included", async () => {
    // a database that retries a failed write once, as @autoforge/db retries a transient error
    const database: DatabaseBinding<unknown> = {
      db: {
        read: (fn) => fn({}),
        async write(fn) {
          try {
            return await fn({});
          } catch {
            return fn({});
          }
        },
      },
      appendAudit: async () => undefined,
    };
    let attempts = 0;
    const admin = defineService({
      service: AdminService,
      handlers: {
        async runMaintenance(_req, ctx) {
          await ctx.unitOfWork(async () => {
            attempts++;
            if (attempts === 1) throw new Error("database is busy");
          });
          return { results: [] };
        },
        async listAuditEvents(_req, ctx) {
          await ctx.unitOfWork(async () => undefined);
          return { events: [] };
        },
        async verifyAuditChain() {
          return { ok: true };
        },
        async getDatabaseStats() {
          return {};
        },
      },
      access: { default: access.operator("admin") },
    }) as RegisteredService;
    const retrying = createServer({
      services: [admin],
      auth: { secret },
      logger: createServiceLogger({ service: "kit-test", level: "silent" }),
      database,
    });
    const p = await retrying.listen({ host: "127.0.0.1", grpcPort: 0, connectPort: 0 });
    try {
      const headers = await bearer("alice", ["admin"]);
      for (const [i, m] of [
        AdminService.method.runMaintenance,
        AdminService.method.listAuditEvents,
      ].entries()) {
        const tp = traceparent(200 + i);
        const outcome = await connectUnary(
          connectTransport("connect", p.connectPort),
          AdminService,
          m,
          {},
          {
            ...headers,
            traceparent: tp.header,
          },
        );
        expect(outcome).toMatchObject({ ok: true });
        const rpc = await serverSpan(tp.traceId, `autoforge.admin.v1.AdminService/${m.name}`);
        const kind = m === AdminService.method.runMaintenance ? "write" : "read";
        const unit = await serverSpan(tp.traceId, `unit of work ${kind}`);
        expect(unit.parentSpanContext?.spanId).toBe(rpc.spanContext().spanId);
        expect(unit.attributes).toEqual({
          "db.unit_of_work.kind": kind,
          "db.unit_of_work.attempts": kind === "write" ? 2 : 1,
        });
      }
    } finally {
      await retrying.shutdown({ graceMs: 500 });
    }
  });
});

describe("tracing is off unless the standard variables ask for it", () => {
  it("reads OTEL_TRACES_EXPORTER, then the OTLP endpoints, and OTEL_SDK_DISABLED", () => {
    expect(tracesExporters({})).toEqual([]);
    expect(tracesExporters({ OTEL_TRACES_EXPORTER: "none" })).toEqual([]);
    expect(tracesExporters({ OTEL_TRACES_EXPORTER: "otlp,console" })).toEqual(["otlp", "console"]);
    expect(tracesExporters({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toEqual(["otlp"]);
    expect(
      tracesExporters({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" }),
    ).toEqual(["otlp"]);
    expect(
      tracesExporters({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318", OTEL_TRACES_EXPORTER: "none" }),
    ).toEqual([]);
    expect(
      tracesExporters({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://c:4318", OTEL_SDK_DISABLED: "true" }),
    ).toEqual([]);
  });

  it("startTracing registers nothing without them, and refuses an unknown exporter", () => {
    expect(startTracing({ serviceName: "x", env: {} })).toBeUndefined();
    expect(() => startTracing({ serviceName: "x", env: { OTEL_TRACES_EXPORTER: "jaeger" } })).toThrow(
      /^OTEL_TRACES_EXPORTER: /,
    );
  });
});
