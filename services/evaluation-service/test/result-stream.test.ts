import { EvaluationService, EvaluationStatus } from "@autoforge/contracts/evaluation/v1";
import { BadRequestSchema, ErrorInfoSchema } from "@autoforge/contracts/google/rpc/error_details";
import { type ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { Code, type EvalClient, expectCode, must, pollUntil, signer } from "./helpers.js";
import { type Chunk, chunks, listAll, scoredResult, startScored, stream } from "./scored-results.js";

/** StreamTestResults through the public API: each chunk committed as it arrives, idempotent per chunk. */

function violations(e: ConnectError): string[] {
  return e.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

/** A client of the Connect port (the Connect protocol over HTTP/2) as `sub`. */
async function connectClient(port: number, sub = "alice"): Promise<EvalClient> {
  const token = await signer.signToken({ sub, roles: ["user"] });
  return createClient(
    EvaluationService,
    createConnectTransport({
      baseUrl: `http://127.0.0.1:${port}`,
      httpVersion: "2",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ],
    }),
  );
}

async function testCount(client: EvalClient, id: string): Promise<number> {
  return must((await client.getEvaluation({ id })).evaluation).testCount;
}

describe("StreamTestResults", () => {
  it("commits each chunk as it arrives and answers the counts, with the named scores recorded", async () => {
    const { alice, evaluation } = await startScored();
    const id = await evaluation();
    const all = chunks(id, "upload-1", 10);
    async function* watching(): AsyncGenerator<Chunk> {
      for (const [i, c] of all.entries()) {
        // chunks 0..2 are committed while the stream is still open (it cannot end before chunk 3 is sent):
        // visible to another call
        if (i === 3) await pollUntil(async () => (await testCount(alice, id)) === 300, 10_000, "chunks 0..2");
        yield c;
      }
    }
    const res = await alice.streamTestResults(watching());
    expect(res).toMatchObject({ recordedCount: 1000, committedChunks: 10, skippedChunks: 0 });
    expect(res.evaluation).toMatchObject({ id, testCount: 1000, status: EvaluationStatus.RUNNING });
    expect(res.evaluation?.scores.map((s) => s.name)).toEqual(["quality", "safe", "grade"]);
    const rows = await listAll(alice, id);
    expect(rows.map((r) => r.name)).toEqual(Array.from({ length: 1000 }, (_, i) => `test ${i}`));
    expect(rows[4]?.scores).toEqual([
      expect.objectContaining({ name: "quality", value: { case: "number", value: 4 } }),
      expect.objectContaining({ name: "safe", value: { case: "boolean", value: true } }),
      expect.objectContaining({ name: "grade", value: { case: "category", value: "ok" } }),
    ]);
    // a chunk recorded by the stream equals the same batch recorded by RecordTestResults
    const other = await evaluation();
    await alice.recordTestResults({ evaluationId: other, results: [scoredResult(4)] });
    const [unary] = await listAll(alice, other);
    const { id: _a, evaluationId: _b, createTime: _c, ...streamed } = must(rows[4]);
    const { id: _d, evaluationId: _e, createTime: _f, ...recorded } = must(unary);
    expect(streamed).toEqual(recorded);
  });

  for (const port of ["grpc", "connect"] as const) {
    it(`a stream dropped after chunk k keeps chunks 0..k; resending every chunk records the rest once (${port} port)`, async () => {
      const { svc, alice, evaluation } = await startScored();
      const client = port === "grpc" ? alice : await connectClient(svc.connectPort);
      const id = await evaluation();
      const all = chunks(id, "upload-drop", 10);
      const controller = new AbortController();
      async function* dropping(): AsyncGenerator<Chunk> {
        for (const [i, c] of all.entries()) {
          if (i === 5) {
            // chunks 0..4 committed: the client dies here, its stream never closed
            await pollUntil(
              async () => (await testCount(alice, id)) === 500,
              10_000,
              "chunks 0..4 committed",
            );
            controller.abort();
            await new Promise(() => {});
          }
          yield c;
        }
      }
      await expectCode(client.streamTestResults(dropping(), { signal: controller.signal }), Code.Canceled);
      await pollUntil(() => svc.app.server.inFlight === 0, 10_000, "the dropped stream ended");
      expect((await listAll(alice, id)).length).toBe(500);

      // resumed: the same chunks with the same request_id, from the start
      const resumed = await client.streamTestResults(stream(all));
      expect(resumed).toMatchObject({ recordedCount: 500, committedChunks: 5, skippedChunks: 5 });
      expect(resumed.evaluation?.testCount).toBe(1000);
      const rows = await listAll(alice, id);
      expect(rows.length).toBe(1000);
      expect(new Set(rows.map((r) => r.name)).size).toBe(1000);

      // a stream that starts at a later index (all already committed): skipped, nothing recorded
      const tail = await client.streamTestResults(stream(chunks(id, "upload-drop", 3, 100, 7)));
      expect(tail).toMatchObject({ recordedCount: 0, committedChunks: 0, skippedChunks: 3 });
      expect(tail.evaluation?.testCount).toBe(1000);
      expect((await listAll(alice, id)).length).toBe(1000);
    });
  }

  it("a changed chunk under a used (request_id, chunk_index) is INVALID_ARGUMENT naming chunk_index, writing nothing", async () => {
    const { alice, evaluation } = await startScored();
    const id = await evaluation();
    await alice.streamTestResults(stream(chunks(id, "upload-c", 3)));
    const changed = chunks(id, "upload-c", 3);
    const c1 = must(changed[1]);
    c1.results = [...(c1.results ?? []).slice(0, 99), scoredResult(9999)];
    const e = await expectCode(
      alice.streamTestResults(stream(changed)),
      Code.InvalidArgument,
      /chunk 1 of request_id upload-c was committed with other results.*message 2 of the stream/,
    );
    expect(violations(e)).toEqual(["chunk_index"]);
    expect(e.findDetails(ErrorInfoSchema)[0]).toMatchObject({
      reason: "CHUNK_CHANGED",
      metadata: { requestId: "upload-c", chunkIndex: "1" },
    });
    expect(await testCount(alice, id)).toBe(300);
    // another request_id is another upload: recorded
    const again = await alice.streamTestResults(stream(chunks(id, "upload-d", 1)));
    expect(again).toMatchObject({ recordedCount: 100, committedChunks: 1 });
  });

  it("bad input is INVALID_ARGUMENT naming the field and the message; earlier chunks stay, nothing of the bad one", async () => {
    const { svc, alice, evaluation } = await startScored();
    const connect = await connectClient(svc.connectPort);
    const id = await evaluation();
    let committed = 0;
    /** Chunks 0..2 fine, then chunk 3 replaced by `bad`: refused with `field`, chunks 0..2 (new ones) kept. */
    const refusedAtChunk3 = async (
      name: string,
      bad: (c: Chunk) => Chunk,
      field: RegExp,
      client: EvalClient = alice,
    ) => {
      const list = chunks(id, `bad-${name}`, 5, 100, 0).map((c) => ({
        ...c,
        results: c.results.map((r) => ({ ...r, name: `${name} ${r.name}` })),
      }));
      list[3] = bad(must(list[3]));
      const e = await expectCode(
        client.streamTestResults(stream(list)),
        Code.InvalidArgument,
        /message 4 of the stream/,
      );
      expect(violations(e), name).toEqual([expect.stringMatching(field)]);
      committed += 300;
      expect(await testCount(alice, id), name).toBe(committed);
      const names = (await listAll(alice, id)).map((r) => r.name).filter((n) => n.startsWith(`${name} `));
      expect(names.length, name).toBe(300);
    };
    const withResult = (c: Chunk, i: number, r: Partial<ReturnType<typeof scoredResult>>) => ({
      ...c,
      results: c.results.map((x, k) => (k === i ? { ...x, ...r } : x)),
    });
    await refusedAtChunk3("score", (c) => withResult(c, 7, { score: 1.5 }), /^results\[7\]\.score$/);
    await refusedAtChunk3(
      "named",
      (c) =>
        withResult(c, 12, {
          scores: [
            { name: "quality", value: { case: "number", value: 11 } },
            { name: "safe", value: { case: "boolean", value: true } },
            { name: "grade", value: { case: "category", value: "ok" } },
          ],
        }),
      /^results\[12\]\.scores\[0\]\.number$/,
    );
    await refusedAtChunk3("missing", (c) => withResult(c, 0, { scores: [] }), /^results\[0\]\.scores$/);
    await refusedAtChunk3("empty", (c) => ({ ...c, results: [] }), /^results$/, connect);
    await refusedAtChunk3(
      "over",
      (c) => ({ ...c, results: Array.from({ length: 1001 }, (_, i) => scoredResult(i)) }),
      /^results$/,
    );
    await refusedAtChunk3("gap", (c) => ({ ...c, chunkIndex: 4 }), /^chunk_index$/, connect);
    await refusedAtChunk3("other", (c) => ({ ...c, requestId: "another" }), /^request_id$/);
    await refusedAtChunk3(
      "ad-hoc trial",
      (c) => withResult(c, 3, { datasetItemId: "a", trial: 1 }),
      /^results\[3\]\.dataset_item_id$/,
    );

    // the first message must name the evaluation and the request_id
    const first = chunks(id, "", 2);
    const noRequestId = await expectCode(alice.streamTestResults(stream(first)), Code.InvalidArgument);
    expect(violations(noRequestId)).toEqual(["request_id"]);
    const noEvaluation = await expectCode(
      alice.streamTestResults(stream(chunks("", "x", 2))),
      Code.InvalidArgument,
    );
    expect(violations(noEvaluation)).toEqual(["evaluation_id"]);
    expect(await testCount(alice, id)).toBe(committed);
  });

  it("an experiment's trial beyond trials_per_item is refused in its chunk; the chunks before stay", async () => {
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
          trialsPerItem: 2,
        })
      ).evaluation,
    );
    await alice.startEvaluation({ id: e.id });
    // one chunk per trial: 20 items each
    const trialChunk = (trial: number): Chunk => ({
      chunkIndex: trial - 1,
      results: items.map((datasetItemId, i) => ({ ...scoredResult(i), scores: [], datasetItemId, trial })),
    });
    const list = [1, 2, 3].map(trialChunk);
    list[0] = { ...must(list[0]), evaluationId: e.id, requestId: "trials" };
    const refused = await expectCode(
      alice.streamTestResults(stream(list)),
      Code.InvalidArgument,
      /must be 1 to 2 \(chunk_index 2, message 3 of the stream\)/,
    );
    expect(new Set(violations(refused))).toEqual(new Set(items.map((_, i) => `results[${i}].trial`)));
    expect(await testCount(alice, e.id)).toBe(40);
  });

  it("only while RUNNING (FAILED_PRECONDITION), and an unknown or another owner's evaluation is NOT_FOUND", async () => {
    const { svc, alice, evaluation } = await startScored();
    const pending = await evaluation(false);
    const e = await expectCode(
      alice.streamTestResults(stream(chunks(pending, "p", 2))),
      Code.FailedPrecondition,
      /is PENDING: test results are recorded only while RUNNING/,
    );
    expect(e.findDetails(ErrorInfoSchema)[0]?.reason).toBe("EVALUATION_NOT_RUNNING");
    // completed between two streams: the next chunk is refused, the committed ones stay
    const id = await evaluation();
    await alice.streamTestResults(stream(chunks(id, "q", 2)));
    await alice.completeEvaluation({ id });
    await expectCode(
      alice.streamTestResults(stream(chunks(id, "q", 3))),
      Code.FailedPrecondition,
      /is COMPLETED/,
    );
    expect(await testCount(alice, id)).toBe(200);
    const bob = await svc.clients.evaluations("bob");
    await expectCode(bob.streamTestResults(stream(chunks(id, "b", 1))), Code.NotFound);
  });
});
