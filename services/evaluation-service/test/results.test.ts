import { EvaluationSchema, EvaluationStatus } from "@autoforge/contracts/evaluation/v1";
import { auditDigest } from "@autoforge/db";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { evaluationMessage } from "../src/convert.js";
import {
  findEvaluation,
  latencyAtRankQuery,
  listTestResultsQuery,
  maxLatencyQuery,
  meanPassedScoreQuery,
} from "../src/db/repository.js";
import { nearestRank } from "../src/domain/evaluation-state.js";
import { auditSnapshot } from "../src/handlers/common.js";
import {
  Code,
  clientFactory,
  createPrompt,
  expectCode,
  must,
  result,
  startServices,
  tableCounts,
} from "./helpers.js";

async function runningEvaluation(
  svc: Awaited<ReturnType<typeof startServices>>,
  promptVersion = 0,
  promptId?: string,
) {
  const id = promptId ?? (await createPrompt(svc.alicePrompts)).id;
  const e = must(
    (await svc.alice.createEvaluation({ promptId: id, promptVersion, provider: "p", model: "m" })).evaluation,
  );
  await svc.alice.startEvaluation({ id: e.id });
  return e.id;
}

describe("RecordTestResults", () => {
  it("records a batch atomically and keeps the counts (trigger-maintained) in step", async () => {
    const svc = await startServices();
    const id = await runningEvaluation(svc);
    const res = await svc.alice.recordTestResults({
      evaluationId: id,
      results: [result(0), result(1), result(2)],
    });
    expect(res.recordedCount).toBe(3);
    expect(res.evaluation).toMatchObject({ testCount: 3, passedCount: 2, status: EvaluationStatus.RUNNING });
    const more = await svc.alice.recordTestResults({
      evaluationId: id,
      results: [result(4, { metadata: { k: "v" } })],
    });
    expect(more.evaluation).toMatchObject({ testCount: 4, passedCount: 3 });
    const listed = (await svc.alice.listTestResults({ evaluationId: id })).testResults;
    expect(listed.map((r) => r.name)).toEqual(["test 0", "test 1", "test 2", "test 4"]);
    expect(listed[3]).toMatchObject({ evaluationId: id, passed: true, latencyMs: 40n, metadata: { k: "v" } });
    expect(listed[3]?.createTime).toBeDefined();
  });

  it("a 1,000-result batch with one invalid row stores nothing and names the row", async () => {
    const svc = await startServices();
    const id = await runningEvaluation(svc);
    const results = Array.from({ length: 1000 }, (_, i) => result(i));
    const before = await tableCounts(svc.db);
    for (const [index, bad, field] of [
      [737, { score: 1.5 }, "score"],
      [0, { score: Number.NaN }, "score"],
      [999, { latencyMs: -1n }, "latency_ms"],
      [500, { name: "" }, "name"],
      [42, { actualOutput: "x".repeat(64 * 1024 + 1) }, "actual_output"],
    ] as const) {
      const batch = results.map((r, i) => (i === index ? { ...r, ...bad } : r));
      await expectCode(
        svc.alice.recordTestResults({ evaluationId: id, results: batch }),
        Code.InvalidArgument,
        new RegExp(`^results\\[${index}\\]\\.${field}: `),
      );
    }
    expect(await tableCounts(svc.db)).toEqual(before);
    expect((await svc.alice.getEvaluation({ id })).evaluation?.testCount).toBe(0);

    const ok = await svc.alice.recordTestResults({ evaluationId: id, results });
    expect(ok.recordedCount).toBe(1000);
    expect(ok.evaluation?.testCount).toBe(1000);
    await expectCode(
      svc.alice.recordTestResults({ evaluationId: id, results: [...results, result(1000)] }),
      Code.InvalidArgument,
      /^results: /,
    );
    await expectCode(
      svc.alice.recordTestResults({ evaluationId: id, results: [] }),
      Code.InvalidArgument,
      /^results: /,
    );
  });

  it("the batch is one transaction: a row the database refuses (row 737 of 1,000) rolls back the whole batch", async () => {
    const svc = await startServices();
    const id = await runningEvaluation(svc);
    // A failure only the database sees (the validator passes every row): the transaction must roll back.
    await svc.db.client.execute(
      "CREATE TRIGGER refuse_737 BEFORE INSERT ON test_results WHEN NEW.name = 'test 737' BEGIN SELECT RAISE(ABORT, 'test'); END",
    );
    const before = await tableCounts(svc.db);
    await expectCode(
      svc.alice.recordTestResults({
        evaluationId: id,
        results: Array.from({ length: 1000 }, (_, i) => result(i)),
      }),
      Code.InvalidArgument,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
    expect((await svc.alice.getEvaluation({ id })).evaluation?.testCount).toBe(0);
  });

  it("request_id: a retried batch is not recorded twice; another batch under the same key is ALREADY_EXISTS", async () => {
    const svc = await startServices();
    const id = await runningEvaluation(svc);
    const req = { evaluationId: id, results: [result(0), result(1)], requestId: "batch-1" };
    const first = await svc.alice.recordTestResults(req);
    const again = await svc.alice.recordTestResults(req);
    expect(again).toEqual(first);
    await expectCode(
      svc.alice.recordTestResults({ ...req, results: [result(2)] }),
      Code.AlreadyExists,
      /batch-1/,
    );
    expect((await svc.alice.getEvaluation({ id })).evaluation?.testCount).toBe(2);
  });
});

describe("ListTestResults", () => {
  it("pages in recording order and filters by passed and min_score", async () => {
    const svc = await startServices();
    const id = await runningEvaluation(svc);
    const results = Array.from({ length: 25 }, (_, i) => result(i));
    await svc.alice.recordTestResults({ evaluationId: id, results: results.slice(0, 10) });
    await svc.alice.recordTestResults({ evaluationId: id, results: results.slice(10) });
    const names: string[] = [];
    let token = "";
    do {
      const page = await svc.alice.listTestResults({ evaluationId: id, pageSize: 7, pageToken: token });
      names.push(...page.testResults.map((r) => r.name));
      token = page.nextPageToken;
    } while (token !== "");
    expect(names).toEqual(results.map((r) => r.name));

    const passed = await svc.alice.listTestResults({ evaluationId: id, passed: true, pageSize: 100 });
    expect(passed.testResults.map((r) => r.name)).toEqual(results.filter((r) => r.passed).map((r) => r.name));
    const failed = await svc.alice.listTestResults({
      evaluationId: id,
      passed: false,
      minScore: 0.5,
      pageSize: 100,
    });
    expect(failed.testResults.map((r) => r.name)).toEqual(
      results.filter((r) => !r.passed && r.score >= 0.5).map((r) => r.name),
    );
    const page1 = await svc.alice.listTestResults({ evaluationId: id, pageSize: 2, passed: true });
    await expectCode(
      svc.alice.listTestResults({ evaluationId: id, pageSize: 2, pageToken: page1.nextPageToken }),
      Code.InvalidArgument,
      /^page_token/,
    );
    await expectCode(
      svc.alice.listTestResults({ evaluationId: id, minScore: 2 }),
      Code.InvalidArgument,
      /^min_score/,
    );
  });
});

describe("GetEvaluationSummary", () => {
  it("computes counts, pass rate, means and nearest-rank latency percentiles in SQL", async () => {
    const svc = await startServices();
    const id = await runningEvaluation(svc);
    // 20 results, latencies 100, 200, ..., 2000 recorded out of order.
    const latencies = Array.from({ length: 20 }, (_, i) => (((i * 7) % 20) + 1) * 100);
    const results = latencies.map((ms, i) =>
      result(i, { latencyMs: BigInt(ms), passed: i < 15, score: i < 15 ? 0.8 : 0.2 }),
    );
    await svc.alice.recordTestResults({ evaluationId: id, results });
    const { summary } = await svc.alice.getEvaluationSummary({ id });
    expect(summary).toMatchObject({
      evaluationId: id,
      status: EvaluationStatus.RUNNING,
      testCount: 20,
      passedCount: 15,
      passRate: 0.75,
      latencyP50Ms: 1000n, // rank ceil(0.5 * 20) = 10
      latencyP95Ms: 1900n, // rank ceil(0.95 * 20) = 19
      latencyMaxMs: 2000n,
    });
    expect(summary?.meanScore).toBeCloseTo((15 * 0.8 + 5 * 0.2) / 20, 12);
    expect(summary?.meanPassedScore).toBeCloseTo(0.8, 12);
    expect(summary?.overallScore).toBeUndefined();
    await svc.alice.completeEvaluation({ id });
    expect((await svc.alice.getEvaluationSummary({ id })).summary?.overallScore).toBeCloseTo(
      summary?.meanScore ?? -1,
      12,
    );
  });

  it("an evaluation without results: zero counts, unset means, zero latencies; none passed: mean of passed unset", async () => {
    const svc = await startServices();
    const id = await runningEvaluation(svc);
    const empty = must((await svc.alice.getEvaluationSummary({ id })).summary);
    expect(empty).toMatchObject({
      testCount: 0,
      passedCount: 0,
      passRate: 0,
      latencyP50Ms: 0n,
      latencyP95Ms: 0n,
      latencyMaxMs: 0n,
    });
    expect(empty.meanScore).toBeUndefined();
    expect(empty.meanPassedScore).toBeUndefined();
    await svc.alice.recordTestResults({
      evaluationId: id,
      results: [result(1, { passed: false, score: 0.1, latencyMs: 7n })],
    });
    const one = must((await svc.alice.getEvaluationSummary({ id })).summary);
    expect(one).toMatchObject({
      testCount: 1,
      latencyP50Ms: 7n,
      latencyP95Ms: 7n,
      latencyMaxMs: 7n,
      meanScore: 0.1,
    });
    expect(one.meanPassedScore).toBeUndefined();
  });

  it("RecordTestResults' response and audit row, and the summary, equal the tables read one query at a time", async () => {
    const svc = await startServices();
    const d = svc.db.drizzle();
    let seed = 7; // a fixed pseudo-random sequence: scores with many digits, mixed passed, unordered latencies
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    for (const batches of [[1], [2], [19], [20, 1], [50, 50, 3]]) {
      const id = await runningEvaluation(svc);
      for (const size of batches) {
        const before = must(await findEvaluation(d, "user:alice", id));
        const results = Array.from({ length: size }, (_, i) =>
          result(i, {
            passed: next() < 0.6,
            score: Math.round(next() * 1e9) / 1e9,
            latencyMs: BigInt(Math.floor(next() * 5000)),
          }),
        );
        const res = await svc.alice.recordTestResults({ evaluationId: id, results });
        const after = must(await findEvaluation(d, "user:alice", id));
        expect(res.evaluation).toEqual(create(EvaluationSchema, evaluationMessage(after)));
        const ids = (await listTestResultsQuery(d, { evaluationId: id, limit: 1000 })).map((r) => r.id);
        const audit = await svc.db.client.execute(
          "SELECT action, digest FROM audit_log ORDER BY seq DESC LIMIT 1",
        );
        expect(audit.rows[0]?.action).toBe("evaluation.record_results");
        expect(audit.rows[0]?.digest).toBe(
          auditDigest(auditSnapshot(before), { ...auditSnapshot(after), recorded: ids.slice(-size) }),
        );
      }
      const summary = must((await svc.alice.getEvaluationSummary({ id })).summary);
      const stats = await svc.db.client.execute({
        sql: "SELECT count(*) AS n, total(passed) AS passed, avg(score) AS mean FROM test_results WHERE evaluation_id = ?",
        args: [id],
      });
      const n = Number(stats.rows[0]?.n);
      const [passed] = await meanPassedScoreQuery(d, id);
      const latencyAt = async (p: number) =>
        (await latencyAtRankQuery(d, id, nearestRank(p, n)))[0]?.latencyMs;
      const [max] = await maxLatencyQuery(d, id);
      expect(summary.testCount).toBe(n);
      expect(summary.passedCount).toBe(Number(stats.rows[0]?.passed));
      expect(summary.meanScore).toBe(Number(stats.rows[0]?.mean)); // the same number, not only close
      expect(summary.meanPassedScore).toBe(
        passed?.meanPassedScore == null ? undefined : Number(passed.meanPassedScore),
      );
      expect(summary.latencyP50Ms).toBe(BigInt(must(await latencyAt(50))));
      expect(summary.latencyP95Ms).toBe(BigInt(must(await latencyAt(95))));
      expect(summary.latencyMaxMs).toBe(BigInt(must(max?.maxLatencyMs)));
    }
  });

  it("nearest rank: ceil(p/100 * n), never below 1", () => {
    expect([1, 2, 3, 4, 20, 21, 100].map((n) => nearestRank(50, n))).toEqual([1, 1, 2, 2, 10, 11, 50]);
    expect([1, 2, 19, 20, 21, 100].map((n) => nearestRank(95, n))).toEqual([1, 2, 19, 19, 20, 95]);
  });
});

describe("ComparePromptVersions", () => {
  it("per version: evaluation count, completed count, mean overall score and pass rate of completed ones", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts, 2);
    const complete = async (version: number, scores: number[]) => {
      const id = await runningEvaluation(svc, version, prompt.id);
      await svc.alice.recordTestResults({
        evaluationId: id,
        results: scores.map((score, i) => result(i, { score, passed: score >= 0.5 })),
      });
      await svc.alice.completeEvaluation({ id });
    };
    await complete(1, [0.2, 0.4]); // overall 0.3, 0/2 passed
    await complete(1, [0.5, 0.9]); // overall 0.7, 2/2 passed
    await complete(2, [1, 1, 0]); // overall 2/3, 2/3 passed
    await runningEvaluation(svc, 2, prompt.id); // counted, not completed
    await svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" }); // version 2, pending

    const res = await svc.alice.comparePromptVersions({ promptId: prompt.id });
    expect(res.promptId).toBe(prompt.id);
    expect(
      res.versions.map((v) => [
        v.promptVersion,
        v.provider,
        v.model,
        v.datasetId,
        v.datasetVersion,
        v.evaluationCount,
        v.completedCount,
      ]),
    ).toEqual([
      [1, "p", "m", "", 0, 2, 2],
      [2, "p", "m", "", 0, 3, 1],
    ]);
    expect(res.versions[0]?.meanOverallScore).toBeCloseTo(0.5, 12);
    expect(res.versions[0]?.passRate).toBeCloseTo(0.5, 12);
    expect(res.versions[1]?.meanOverallScore).toBeCloseTo(2 / 3, 12);
    expect(res.versions[1]?.passRate).toBeCloseTo(2 / 3, 12);
    // Another owner sees nothing of it.
    expect((await svc.bob.comparePromptVersions({ promptId: prompt.id })).versions).toEqual([]);
  });

  it("one entry per version, provider, model and dataset version: by version, provider, model, dataset (ad-hoc first), dataset version", async () => {
    const svc = await startServices();
    const datasets = await clientFactory(`http://127.0.0.1:${svc.grpcPort}`).datasets("alice");
    const prompt = await createPrompt(svc.alicePrompts, 2);
    const items = ["a", "b"];
    /** A dataset of alice's with `versions` versions, each holding the items a and b. */
    const dataset = async (name: string, versions: number) => {
      const ds = must((await datasets.createDataset({ name })).dataset);
      for (let v = 1; v <= versions; v++) {
        await datasets.createDatasetVersion({
          datasetId: ds.id,
          items: items.map((itemId) => ({
            itemId,
            input: { case: "textInput", value: `q ${itemId} v${v}` },
          })),
        });
      }
      return ds.id;
    };
    const qa = await dataset("qa", 2);
    const other = await dataset("other", 1);
    expect(qa < other).toBe(true); // ids are UUIDv7: creation order, so qa's groups come first
    interface Group {
      promptVersion: number;
      provider: string;
      model: string;
      datasetId?: string;
      datasetVersion?: number;
    }
    const pending = async (g: Group) =>
      must((await svc.alice.createEvaluation({ promptId: prompt.id, ...g })).evaluation).id;
    const running = async (g: Group) => {
      const id = await pending(g);
      await svc.alice.startEvaluation({ id });
      return id;
    };
    /** COMPLETED with one test per score (passed from 0.5); over a dataset, test i is item i's only trial. */
    const complete = async (g: Group, scores: number[]) => {
      const id = await running(g);
      await svc.alice.recordTestResults({
        evaluationId: id,
        results: scores.map((score, i) => ({
          ...result(i, { score, passed: score >= 0.5 }),
          ...(g.datasetId === undefined ? {} : { datasetItemId: must(items[i]), trial: 1 }),
        })),
      });
      await svc.alice.completeEvaluation({ id });
    };
    const gpt4o = { promptVersion: 1, provider: "openai", model: "gpt-4o" };
    // Created out of the listed order, so the order is the query's, not the rows'.
    await complete({ ...gpt4o, promptVersion: 2 }, [0.4]); // overall 0.4, 0/1 passed
    await complete({ ...gpt4o, datasetId: qa, datasetVersion: 2 }, [0, 0.5]); // overall 0.25, 1/2 passed
    await complete({ ...gpt4o, model: "gpt-4o-mini" }, [1, 1, 0]); // overall 2/3, 2/3 passed
    await complete(gpt4o, [0.2, 0.4]); // overall 0.3, 0/2 passed
    await complete({ ...gpt4o, datasetId: qa, datasetVersion: 1 }, [1, 0.6]); // overall 0.8, 2/2 passed
    await running({ ...gpt4o, datasetId: qa, datasetVersion: 1 }); // counted, not completed
    await pending({ ...gpt4o, datasetId: other, datasetVersion: 1 }); // counted, no completed one
    await complete({ promptVersion: 1, provider: "anthropic", model: "claude" }, [0.9, 0.3]); // 0.6, 1/2
    await complete(gpt4o, [0.5, 0.9]); // overall 0.7, 2/2 passed
    const failed = await running(gpt4o);
    await svc.alice.failEvaluation({ id: failed, reason: "provider down" }); // counted, not completed

    const res = await svc.alice.comparePromptVersions({ promptId: prompt.id });
    expect(
      res.versions.map((v) => [
        v.promptVersion,
        v.provider,
        v.model,
        v.datasetId,
        v.datasetVersion,
        v.evaluationCount,
        v.completedCount,
      ]),
    ).toEqual([
      [1, "anthropic", "claude", "", 0, 1, 1],
      [1, "openai", "gpt-4o", "", 0, 3, 2],
      [1, "openai", "gpt-4o", qa, 1, 2, 1],
      [1, "openai", "gpt-4o", qa, 2, 1, 1],
      [1, "openai", "gpt-4o", other, 1, 1, 0],
      [1, "openai", "gpt-4o-mini", "", 0, 1, 1],
      [2, "openai", "gpt-4o", "", 0, 1, 1],
    ]);
    const close = (x: number) => expect.closeTo(x, 12);
    expect(res.versions.map((v) => [v.meanOverallScore, v.passRate])).toEqual([
      [close(0.6), close(0.5)],
      [close(0.5), close(0.5)],
      [close(0.8), close(1)],
      [close(0.25), close(0.5)],
      [undefined, 0],
      [close(2 / 3), close(2 / 3)],
      [close(0.4), close(0)],
    ]);
  });
});
