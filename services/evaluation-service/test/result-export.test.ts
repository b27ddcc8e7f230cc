import {
  EvaluationService,
  type TestResult,
  TestResultSchema,
  TestResultView,
} from "@autoforge/contracts/evaluation/v1";
import { BadRequestSchema } from "@autoforge/contracts/google/rpc/error_details";
import { toBinary } from "@bufbuild/protobuf";
import { createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { Code, type EvalClient, expectCode, must, pollUntil, signer } from "./helpers.js";
import { chunks, listAll, scoredResult, startScored, stream } from "./scored-results.js";

/** ExportTestResults through the public API: the same results as ListTestResults' pages, in batches. */

type ExportRequest = Parameters<EvalClient["exportTestResults"]>[0];

/** Every message of an export. */
async function exportAll(client: EvalClient, request: ExportRequest): Promise<TestResult[][]> {
  const batches: TestResult[][] = [];
  for await (const res of client.exportTestResults(request)) batches.push(res.testResults);
  return batches;
}

async function connectClient(port: number): Promise<EvalClient> {
  const token = await signer.signToken({ sub: "alice", roles: ["user"] });
  return createClient(
    EvaluationService,
    createConnectTransport({
      baseUrl: `http://127.0.0.1:${port}`,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ],
    }),
  );
}

/** An evaluation with 2,500 scored results (recorded by StreamTestResults: 3 chunks of up to 1,000). */
async function start2500() {
  const scored = await startScored();
  const id = await scored.evaluation();
  const list = [
    ...chunks(id, "seed", 2, 1000),
    { chunkIndex: 2, results: Array.from({ length: 500 }, (_, k) => scoredResult(2000 + k)) },
  ];
  const res = await scored.alice.streamTestResults(stream(list));
  expect(res.recordedCount).toBe(2500);
  return { ...scored, id };
}

describe("ExportTestResults", () => {
  it("exports 2,500 results in batches, in recording order, equal to ListTestResults' pages, with filters", async () => {
    const { alice, svc, id } = await start2500();
    const listed = await listAll(alice, id);
    expect(listed.length).toBe(2500);

    const full = await exportAll(alice, { evaluationId: id, batchSize: 1000 });
    expect(full.map((b) => b.length)).toEqual([1000, 1000, 500]);
    expect(full.flat()).toEqual(listed);
    expect(full.flat()[7]?.scores.map((s) => s.name)).toEqual(["quality", "safe", "grade"]);
    // the default batch is 500
    expect((await exportAll(alice, { evaluationId: id })).map((b) => b.length)).toEqual([
      500, 500, 500, 500, 500,
    ]);

    for (const filters of [
      { passed: true },
      { passed: false },
      { minScore: 0.5 },
      { passed: true, minScore: 0.7 },
    ]) {
      const expected = await listAll(alice, id, filters);
      const exported = (await exportAll(alice, { evaluationId: id, batchSize: 333, ...filters })).flat();
      expect(
        exported.map((r) => r.id),
        JSON.stringify(filters),
      ).toEqual(expected.map((r) => r.id));
      expect(exported.length).toBeGreaterThan(0);
    }

    // BASIC leaves out the texts, as ListTestResults' BASIC view does
    const basic = (
      await exportAll(alice, { evaluationId: id, batchSize: 1000, view: TestResultView.BASIC })
    ).flat();
    const listedBasic = [];
    let pageToken = "";
    do {
      const page = await alice.listTestResults({
        evaluationId: id,
        pageSize: 100,
        pageToken,
        view: TestResultView.BASIC,
      });
      listedBasic.push(...page.testResults);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(basic).toEqual(listedBasic);
    expect(basic[0]).toMatchObject({ input: "", actualOutput: "" });

    // the Connect port sends the same
    const connect = await connectClient(svc.connectPort);
    expect((await exportAll(connect, { evaluationId: id, batchSize: 700 })).flat()).toEqual(listed);
  });

  it("a client that stops midway ends the export cleanly; after_id resumes right after the last result received", async () => {
    const { alice, svc, id } = await start2500();
    const listed = await listAll(alice, id);
    const received: TestResult[] = [];
    const controller = new AbortController();
    // a client that stops must cancel the call (connect-node keeps the stream open when a loop only breaks)
    await expectCode(
      (async () => {
        for await (const res of alice.exportTestResults(
          { evaluationId: id, batchSize: 400 },
          { signal: controller.signal },
        )) {
          received.push(...res.testResults);
          if (received.length >= 800) controller.abort();
        }
      })(),
      Code.Canceled,
    );
    expect(received.length).toBe(800);
    await pollUntil(() => svc.app.server.inFlight === 0, 10_000, "the cancelled export ended");
    const rest = (
      await exportAll(alice, { evaluationId: id, batchSize: 400, afterId: must(received.at(-1)).id })
    ).flat();
    expect([...received, ...rest]).toEqual(listed);
    // after the last result: nothing
    expect(await exportAll(alice, { evaluationId: id, afterId: must(listed.at(-1)).id })).toEqual([]);
  });

  it("a dataset item's results, in recording order; a message stays under 3 MiB encoded", async () => {
    const { svc, alice, promptId } = await startScored();
    const datasets = await svc.clients.datasets("alice");
    const dataset = must((await datasets.createDataset({ name: "qa" })).dataset);
    const items = Array.from({ length: 20 }, (_, i) => `item-${i}`);
    await datasets.createDatasetVersion({
      datasetId: dataset.id,
      items: items.map((itemId) => ({ itemId, input: { case: "textInput", value: itemId } })),
    });
    const e = must(
      (
        await alice.createEvaluation({
          promptId,
          provider: "p",
          model: "m",
          datasetId: dataset.id,
          datasetVersion: 1,
          trialsPerItem: 5,
        })
      ).evaluation,
    );
    await alice.startEvaluation({ id: e.id });
    // trials recorded out of order (5, 4, ..., 1), ~60 KB of text each: 100 results, about 6 MB
    const big = "x".repeat(60_000);
    for (const trial of [5, 3, 1, 4, 2]) {
      await alice.recordTestResults({
        evaluationId: e.id,
        results: items.map((datasetItemId, i) => ({
          ...scoredResult(i),
          scores: [],
          actualOutput: big,
          datasetItemId,
          trial,
        })),
      });
    }
    const listed = await listAll(alice, e.id);
    const item = (await exportAll(alice, { evaluationId: e.id, datasetItemId: "item-7" })).flat();
    expect(item.map((r) => r.trial)).toEqual([5, 3, 1, 4, 2]);
    expect(item.map((r) => r.id)).toEqual(
      listed.filter((r) => r.datasetItemId === "item-7").map((r) => r.id),
    );
    const resumed = (
      await exportAll(alice, { evaluationId: e.id, datasetItemId: "item-7", afterId: must(item[1]).id })
    ).flat();
    expect(resumed.map((r) => r.trial)).toEqual([1, 4, 2]);
    expect(await exportAll(alice, { evaluationId: e.id, datasetItemId: "item-99" })).toEqual([]);

    const batches = await exportAll(alice, { evaluationId: e.id, batchSize: 1000 });
    expect(batches.flat().map((r) => r.id)).toEqual(listed.map((r) => r.id));
    expect(batches.length).toBeGreaterThan(1);
    for (const b of batches) {
      const bytes = b.reduce((n, r) => n + toBinary(TestResultSchema, r).byteLength + 5, 0);
      expect(bytes).toBeLessThanOrEqual(3 * 1024 * 1024);
    }
  });

  it("an unknown or another owner's evaluation is NOT_FOUND; a batch_size over 1,000 is INVALID_ARGUMENT", async () => {
    const { svc, alice, evaluation } = await startScored();
    const id = await evaluation();
    await expectCode(
      exportAll(alice, { evaluationId: "01900000-0000-7000-8000-000000000000" }),
      Code.NotFound,
    );
    const bob = await svc.clients.evaluations("bob");
    await expectCode(exportAll(bob, { evaluationId: id }), Code.NotFound, /not found/);
    const e = await expectCode(exportAll(alice, { evaluationId: id, batchSize: 1001 }), Code.InvalidArgument);
    expect(e.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["batch_size"]);
    await expectCode(
      exportAll(alice, { evaluationId: id, view: 7 as TestResultView }),
      Code.InvalidArgument,
      /view/,
    );
    // an evaluation without results: a stream without messages
    expect(await exportAll(alice, { evaluationId: id })).toEqual([]);
  });
});
