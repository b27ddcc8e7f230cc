import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  clients,
  must,
  pollUntil,
  serviceClaims,
  serviceDatabaseEnv,
  signer,
  startService,
  tempDir,
} from "./harness.js";

/** A stand-in OTLP/HTTP collector: keeps every export request's body. */
async function startCollector() {
  const exports: { path: string; body: Buffer }[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      exports.push({ path: req.url ?? "", body: Buffer.concat(chunks) });
      // an empty ExportTraceServiceResponse
      res.writeHead(200, { "content-type": "application/x-protobuf" });
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, exports };
}

describe("OpenTelemetry from the standard variables, as the services run", () => {
  it("both processes export the spans of one CreateEvaluation under the caller's trace id, flushed at SIGTERM", async () => {
    const dir = tempDir();
    const collector = await startCollector();
    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      OTEL_EXPORTER_OTLP_COMPRESSION: "none",
      // nothing is exported before shutdown unless the batch fills: what arrives was flushed at SIGTERM
      OTEL_BSP_SCHEDULE_DELAY: "600000",
    };
    const prompt = await startService("prompt-service", {
      ...otel,
      ...(await serviceDatabaseEnv(dir, "prompt-service")),
    });
    const evaluation = await startService("evaluation-service", {
      ...otel,
      LOG_LEVEL: "debug",
      ...(await serviceDatabaseEnv(dir, "evaluation-service")),
      PROMPT_SERVICE_URL: prompt.url,
      SERVICE_TOKEN: await signer.signToken(serviceClaims),
    });
    const alice = await clients(prompt.url).prompts("alice");
    const created = must((await alice.createPrompt({ title: "traced", content: "hello" })).prompt);
    const evals = await clients(evaluation.url).evaluations("alice");
    const traceId = "0af7651916cd43dd8448eb211c80319c";
    const evaluated = must(
      (
        await evals.createEvaluation(
          { promptId: created.id, provider: "p", model: "m" },
          { headers: { traceparent: `00-${traceId}-b7ad6b7169203331-01`, "x-request-id": "e2e-traced" } },
        )
      ).evaluation,
    );
    expect(evaluated.promptId).toBe(created.id);

    // the call's access line (LOG_LEVEL=debug) carries the trace id; it is written once the response
    // has gone, so it may reach the pipe after the client has its answer
    const accessLine = () =>
      evaluation.logs
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .find((l) => l.requestId === "e2e-traced" && l.msg === "call ok");
    await pollUntil(() => accessLine() !== undefined, 10_000, "the call's access line");
    expect(accessLine()).toMatchObject({ level: "debug", trace_id: traceId, service: "evaluation-service" });

    expect(collector.exports).toEqual([]);
    await evaluation.kill("SIGTERM");
    await prompt.kill("SIGTERM");
    expect(await evaluation.exited).toBe(0);
    expect(await prompt.exited).toBe(0);

    // OTLP protobuf: ids are raw bytes, names and attribute values plain UTF-8
    const traceBytes = Buffer.from(traceId, "hex");
    const exported = (service: string) =>
      collector.exports.filter((e) => e.body.includes(Buffer.from(service)) && e.body.includes(traceBytes));
    for (const e of collector.exports) expect(e.path).toBe("/v1/traces");
    const fromEvaluation = Buffer.concat(exported("evaluation-service").map((e) => e.body));
    const fromPrompt = Buffer.concat(exported("prompt-service").map((e) => e.body));
    // evaluation-service: its server span, its unit of work and the client span of the outbound call
    for (const name of [
      "autoforge.evaluation.v1.EvaluationService/CreateEvaluation",
      "autoforge.prompt.v1.PromptService/GetPrompt",
      "unit of work write",
    ]) {
      expect(fromEvaluation.includes(Buffer.from(name)), name).toBe(true);
    }
    // prompt-service: the server span of that call, in the same trace (the traceparent went with the call)
    for (const name of ["autoforge.prompt.v1.PromptService/GetPrompt", "unit of work read"]) {
      expect(fromPrompt.includes(Buffer.from(name)), name).toBe(true);
    }
  });
});
