import { startTracing, type Tracing } from "@autoforge/server";
import { SpanKind } from "@opentelemetry/api";
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createPrompt, must, type Protocol, startServicesOnBothPorts } from "./helpers.js";

// One SDK for this test file (its own worker): both services run in this process, so every span of a call
// — evaluation-service's and prompt-service's — lands in the same in-memory exporter.
const exporter = new InMemorySpanExporter();
let tracing: Tracing | undefined;
beforeAll(() => {
  tracing = startTracing({
    serviceName: "tracing-test",
    env: {},
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
});
afterAll(async () => {
  await tracing?.shutdown();
});
beforeEach(() => exporter.reset());

const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
const callerSpanId = "00f067aa0ba902b7";

function parentOf(span: ReadableSpan): string | undefined {
  return span.parentSpanContext?.spanId;
}

function one(spans: ReadableSpan[], name: string, kind: SpanKind): ReadableSpan {
  const found = spans.filter((s) => s.name === name && s.kind === kind);
  expect(found, `${SpanKind[kind]} span ${name} in ${spans.map((s) => s.name).join(", ")}`).toHaveLength(1);
  return found[0] as ReadableSpan;
}

describe("OpenTelemetry tracing across both services", () => {
  it.each<Protocol>(["grpc", "connect"])(
    "one CreateEvaluation on the %s port is one trace: the caller's span -> evaluation-service -> client -> prompt-service",
    async (protocol) => {
      const svc = await startServicesOnBothPorts();
      const alicePrompts = await svc.promptsAs({ sub: "alice", roles: ["user"] });
      const prompt = await createPrompt(alicePrompts);
      const { evaluations } = await svc.clientsFor(protocol, { sub: "alice", roles: ["user"] });
      exporter.reset();

      const created = must(
        (
          await evaluations.createEvaluation(
            { promptId: prompt.id, provider: "openai", model: "gpt-4o" },
            { headers: { traceparent: `00-${traceId}-${callerSpanId}-01` } },
          )
        ).evaluation,
      );
      expect(created.promptId).toBe(prompt.id);

      // server spans end after the response is handed to the transport: wait until the outer one is in
      const deadline = Date.now() + 5_000;
      const outerName = "autoforge.evaluation.v1.EvaluationService/CreateEvaluation";
      while (!exporter.getFinishedSpans().some((s) => s.name === outerName)) {
        if (Date.now() > deadline) throw new Error("the evaluation-service span never ended");
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      const spans = exporter.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
      const evaluation = one(spans, outerName, SpanKind.SERVER);
      const client = one(spans, "autoforge.prompt.v1.PromptService/GetPrompt", SpanKind.CLIENT);
      const prompts = one(spans, "autoforge.prompt.v1.PromptService/GetPrompt", SpanKind.SERVER);
      const writes = spans.filter((s) => s.name === "unit of work write");

      // the W3C traceparent the caller sent is the root: evaluation-service's span continues its trace
      expect(parentOf(evaluation)).toBe(callerSpanId);
      expect(evaluation.attributes).toMatchObject({
        "rpc.system": protocol === "connect" ? "connect_rpc" : "grpc",
        "rpc.service": "autoforge.evaluation.v1.EvaluationService",
        "rpc.method": "CreateEvaluation",
        "rpc.protocol": protocol,
        "rpc.grpc.status_code": 0,
      });
      // the outbound call is a child of the RPC, and prompt-service's span a child of the outbound call
      // (propagated in the gRPC request's traceparent)
      expect(parentOf(client)).toBe(evaluation.spanContext().spanId);
      expect(client.attributes).toMatchObject({ "rpc.grpc.status_code": 0 });
      expect(parentOf(prompts)).toBe(client.spanContext().spanId);
      expect(prompts.attributes).toMatchObject({ "rpc.protocol": "grpc", "rpc.grpc.status_code": 0 });
      // prompt-service's read and evaluation-service's write are units of work with kind and attempts
      const read = one(spans, "unit of work read", SpanKind.INTERNAL);
      expect(parentOf(read)).toBe(prompts.spanContext().spanId);
      expect(read.attributes).toMatchObject({
        "db.unit_of_work.kind": "read",
        "db.unit_of_work.attempts": 1,
      });
      expect(writes).toHaveLength(1);
      expect(parentOf(writes[0] as ReadableSpan)).toBe(evaluation.spanContext().spanId);
      expect(writes[0]?.attributes).toMatchObject({
        "db.unit_of_work.kind": "write",
        "db.unit_of_work.attempts": 1,
      });
      // nothing of this call escaped into another trace
      expect(
        exporter
          .getFinishedSpans()
          .filter((s) => s.spanContext().traceId !== traceId && s.name.includes("Evaluation")),
      ).toEqual([]);
    },
  );

  it("a call without traceparent starts its own trace, and a failed outbound call is an error span", async () => {
    const svc = await startServicesOnBothPorts();
    const { evaluations } = await svc.clientsFor("grpc", { sub: "alice", roles: ["user"] });
    exporter.reset();
    await expect(
      evaluations.createEvaluation({
        promptId: "0190f5a0-0000-7000-8000-000000000000",
        provider: "p",
        model: "m",
      }),
    ).rejects.toMatchObject({ code: 5 }); // NOT_FOUND from prompt-service
    const outerName = "autoforge.evaluation.v1.EvaluationService/CreateEvaluation";
    const deadline = Date.now() + 5_000;
    while (!exporter.getFinishedSpans().some((s) => s.name === outerName)) {
      if (Date.now() > deadline) throw new Error("the evaluation-service span never ended");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const spans = exporter.getFinishedSpans();
    const evaluation = one(spans, outerName, SpanKind.SERVER);
    expect(parentOf(evaluation)).toBeUndefined();
    expect(evaluation.attributes["rpc.grpc.status_code"]).toBe(5);
    const client = one(spans, "autoforge.prompt.v1.PromptService/GetPrompt", SpanKind.CLIENT);
    expect(client.spanContext().traceId).toBe(evaluation.spanContext().traceId);
    expect(client.status.code).toBe(2); // SpanStatusCode.ERROR: the call failed
    // NOT_FOUND is the caller's error, not the server's: the server spans stay unset
    expect(evaluation.status.code).toBe(0);
  });
});
