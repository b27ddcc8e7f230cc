import { createRequire } from "node:module";
import { ScoreDirection, ScoreKind } from "@autoforge/contracts/evaluation/v1";
import { BadRequestSchema } from "@autoforge/contracts/google/rpc/error_details";
import type { ConnectError } from "@connectrpc/connect";
import { uuidv7 } from "uuidv7";
import { describe, expect, it } from "vitest";
import {
  Code,
  expectCode,
  must,
  openTestDatabase,
  result,
  startEvaluationService,
  stubPromptClient,
  tableCounts,
} from "./helpers.js";

/**
 * Named scores through the public API: declared at creation, one value per declared score on every result,
 * refused with the field named when wrong; the summaries and the per-item statistics equal what jstat computes
 * from the same values here (the service uses its own SQL aggregates and @stdlib's t quantile).
 */

interface JStat {
  mean(a: number[]): number;
  stdev(a: number[], sample: boolean): number;
  variance(a: number[], sample: boolean): number;
  median(a: number[]): number;
  min(a: number[]): number;
  max(a: number[]): number;
  studentt: { inv(p: number, dof: number): number };
}
const { jStat } = createRequire(import.meta.url)("jstat") as { jStat: JStat };

const declared = [
  { name: "relevance", kind: ScoreKind.NUMERIC, min: 0, max: 10 },
  { name: "toxic", kind: ScoreKind.BOOLEAN, direction: ScoreDirection.LOWER_IS_BETTER },
  { name: "tone", kind: ScoreKind.CATEGORICAL, categories: ["rude", "neutral", "friendly"] },
];

const items = Array.from({ length: 12 }, (_, i) => `item-${String(i).padStart(2, "0")}`);

async function start() {
  const { db } = await openTestDatabase();
  const promptId = uuidv7();
  const svc = await startEvaluationService(
    db,
    stubPromptClient(new Map([[promptId, { project: "user:alice" }]])),
  );
  const alice = await svc.clients.evaluations("alice");
  const datasets = await svc.clients.datasets("alice");
  const dataset = must((await datasets.createDataset({ name: "qa" })).dataset);
  await datasets.createDatasetVersion({
    datasetId: dataset.id,
    items: items.map((itemId) => ({ itemId, input: { case: "textInput", value: `q ${itemId}` } })),
  });
  const create = async (
    extra: { datasetId?: string; datasetVersion?: number; trialsPerItem?: number } = {},
  ) => {
    const e = must(
      (await alice.createEvaluation({ promptId, provider: "p", model: "m", scores: declared, ...extra }))
        .evaluation,
    );
    await alice.startEvaluation({ id: e.id });
    return e.id;
  };
  return { db, alice, promptId, datasetId: dataset.id, create };
}

type Value =
  | { case: "number"; value: number }
  | { case: "boolean"; value: boolean }
  | { case: "category"; value: string };
const scores = (relevance: Value, toxic: Value, tone: Value) => [
  { name: "relevance", value: relevance },
  { name: "toxic", value: toxic },
  { name: "tone", value: tone },
];
const num = (value: number): Value => ({ case: "number", value });
const bool = (value: boolean): Value => ({ case: "boolean", value });
const cat = (value: string): Value => ({ case: "category", value });

function fields(e: ConnectError): string[] {
  return e.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

/** A deterministic pseudo-random sequence (the values must be reproducible and spread out). */
function lcg(seed: number) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

describe("named scores", () => {
  it("are declared at creation and returned on the evaluation, in declaration order", async () => {
    const t = await start();
    const id = await t.create();
    const e = must((await t.alice.getEvaluation({ id })).evaluation);
    expect(e.scores.map((s) => [s.name, s.kind, s.min, s.max, s.categories, s.direction])).toEqual([
      ["relevance", ScoreKind.NUMERIC, 0, 10, [], ScoreDirection.HIGHER_IS_BETTER],
      ["toxic", ScoreKind.BOOLEAN, undefined, undefined, [], ScoreDirection.LOWER_IS_BETTER],
      [
        "tone",
        ScoreKind.CATEGORICAL,
        undefined,
        undefined,
        ["rude", "neutral", "friendly"],
        ScoreDirection.HIGHER_IS_BETTER,
      ],
    ]);
    const listed = (await t.alice.listEvaluations({})).evaluations.find((x) => x.id === id);
    expect(listed?.scores.map((s) => s.name)).toEqual(["relevance", "toxic", "tone"]);
    // an evaluation without scores: the message of before
    const plain = must(
      (await t.alice.createEvaluation({ promptId: t.promptId, provider: "p", model: "m" })).evaluation,
    );
    expect(plain.scores).toEqual([]);
  });

  it("bad declarations are INVALID_ARGUMENT naming every field, and create nothing", async () => {
    const t = await start();
    const before = await tableCounts(t.db);
    const e = await expectCode(
      t.alice.createEvaluation({
        promptId: t.promptId,
        provider: "p",
        model: "m",
        scores: [
          { name: "ok", kind: ScoreKind.NUMERIC, min: 1, max: 1 },
          { name: "Bad-Name", kind: ScoreKind.BOOLEAN },
          { name: "passed", kind: ScoreKind.BOOLEAN },
          { name: "nokind" },
          { name: "range", kind: ScoreKind.NUMERIC },
          { name: "cats", kind: ScoreKind.CATEGORICAL, categories: ["a", "a"] },
          { name: "one", kind: ScoreKind.CATEGORICAL, categories: ["a"] },
          { name: "flag", kind: ScoreKind.BOOLEAN, min: 0, categories: ["x"] },
          { name: "ok", kind: ScoreKind.BOOLEAN },
        ],
      }),
      Code.InvalidArgument,
    );
    expect(fields(e).sort()).toEqual(
      [
        "scores[0].max",
        "scores[1].name",
        "scores[2].name",
        "scores[3].kind",
        "scores[4].min",
        "scores[4].max",
        "scores[5].categories",
        "scores[6].categories",
        "scores[7].min",
        "scores[7].categories",
        "scores[8].name",
      ].sort(),
    );
    const tooMany = Array.from({ length: 21 }, (_, i) => ({ name: `s${i}`, kind: ScoreKind.BOOLEAN }));
    const e2 = await expectCode(
      t.alice.createEvaluation({ promptId: t.promptId, provider: "p", model: "m", scores: tooMany }),
      Code.InvalidArgument,
    );
    expect(fields(e2)).toEqual(["scores"]);
    expect(await tableCounts(t.db)).toEqual(before);
  });

  it("a result carries one value per declared score; every wrong value is named and nothing is written", async () => {
    const t = await start();
    const id = await t.create();
    const good = result(1, { scores: scores(num(7.5), bool(false), cat("friendly")) });
    const recorded = await t.alice.recordTestResults({ evaluationId: id, results: [good] });
    expect(recorded.recordedCount).toBe(1);
    const before = await tableCounts(t.db);
    const e = await expectCode(
      t.alice.recordTestResults({
        evaluationId: id,
        results: [
          result(2, { scores: scores(num(10.5), bool(true), cat("neutral")) }), // out of range
          result(3, { scores: scores(bool(true), bool(true), cat("neutral")) }), // wrong kind
          result(4, { scores: scores(num(1), bool(true), cat("angry")) }), // unknown category
          result(5, { scores: [{ name: "relevance", value: num(1) }] }), // toxic and tone missing
          result(6, {
            scores: [...scores(num(1), bool(true), cat("rude")), { name: "extra", value: num(1) }],
          }),
          result(7, {
            scores: [...scores(num(1), bool(true), cat("rude")), { name: "tone", value: cat("rude") }],
          }),
        ],
      }),
      Code.InvalidArgument,
    );
    expect(fields(e).sort()).toEqual(
      [
        "results[0].scores[0].number",
        "results[1].scores[0].number",
        "results[2].scores[2].category",
        "results[3].scores",
        "results[4].scores[3].name",
        "results[5].scores[3].name",
      ].sort(),
    );
    // a value without its oneof set is refused before the evaluation is read
    const unset = result(8, {
      scores: [
        { name: "relevance", value: { case: undefined } },
        ...scores(num(1), bool(true), cat("rude")).slice(1),
      ],
    });
    const e3 = await expectCode(
      t.alice.recordTestResults({ evaluationId: id, results: [unset] }),
      Code.InvalidArgument,
    );
    expect(fields(e3)).toEqual(["results[0].scores[0].value"]);
    expect(await tableCounts(t.db)).toEqual(before);
    // an evaluation that declares no scores takes none
    const plain = must(
      (await t.alice.createEvaluation({ promptId: t.promptId, provider: "p", model: "m" })).evaluation,
    );
    await t.alice.startEvaluation({ id: plain.id });
    const e2 = await expectCode(
      t.alice.recordTestResults({ evaluationId: plain.id, results: [good] }),
      Code.InvalidArgument,
    );
    expect(fields(e2)).toEqual([
      "results[0].scores[0].name",
      "results[0].scores[1].name",
      "results[0].scores[2].name",
    ]);
    // the values come back in declaration order, whatever order they were given in
    const reversed = result(9, { scores: scores(num(0), bool(true), cat("rude")).reverse() });
    await t.alice.recordTestResults({ evaluationId: id, results: [reversed] });
    const listed = (await t.alice.listTestResults({ evaluationId: id })).testResults;
    expect(listed.map((r) => r.scores.map((s) => [s.name, s.value.value]))).toEqual([
      [
        ["relevance", 7.5],
        ["toxic", false],
        ["tone", "friendly"],
      ],
      [
        ["relevance", 0],
        ["toxic", true],
        ["tone", "rude"],
      ],
    ]);
  });

  it("the database itself refuses an undeclared score, a value outside its kind, a foreign copy, any UPDATE", async () => {
    const t = await start();
    const id = await t.create();
    await t.alice.recordTestResults({
      evaluationId: id,
      results: [result(1, { scores: scores(num(5), bool(true), cat("rude")) })],
    });
    const [row] = (
      await t.db.client.execute({ sql: "SELECT id FROM test_results WHERE evaluation_id = ?", args: [id] })
    ).rows;
    const resultId = String(row?.id);
    const insert = (name: string, value: number, evaluationId = id) =>
      t.db.client.execute({
        sql: "INSERT INTO test_result_scores (result_id, name, evaluation_id, dataset_item_id, value) VALUES (?, ?, ?, NULL, ?)",
        args: [resultId, name, evaluationId, value],
      });
    await t.db.client.execute({
      sql: "DELETE FROM test_result_scores WHERE result_id = ?",
      args: [resultId],
    });
    await expect(insert("undeclared", 1)).rejects.toThrow(/FOREIGN KEY|constraint/i);
    await expect(insert("relevance", 11)).rejects.toThrow(/not of the declared kind/);
    await expect(insert("toxic", 0.5)).rejects.toThrow(/not of the declared kind/);
    await expect(insert("tone", 3)).rejects.toThrow(/not of the declared kind/);
    await expect(insert("tone", 1.5)).rejects.toThrow(/not of the declared kind/);
    await expect(insert("relevance", 1, uuidv7())).rejects.toThrow(/must be the result's/);
    await insert("relevance", 10);
    await expect(
      t.db.client.execute({
        sql: "UPDATE test_result_scores SET value = 1 WHERE result_id = ?",
        args: [resultId],
      }),
    ).rejects.toThrow(/immutable/);
    await expect(
      t.db.client.execute({
        sql: "UPDATE evaluation_scores SET max_value = 100 WHERE evaluation_id = ?",
        args: [id],
      }),
    ).rejects.toThrow(/immutable/);
    // declarations are made with the evaluation only (it is RUNNING now)
    await expect(
      t.db.client.execute({
        sql: "INSERT INTO evaluation_scores (evaluation_id, name, position, kind) VALUES (?, 'late', 3, 'boolean')",
        args: [id],
      }),
    ).rejects.toThrow(/declared when the evaluation is created/);
  });

  it("summaries per score and per item across trials equal jstat's numbers over the same values; flaky items found", async () => {
    const t = await start();
    const trials = 3;
    const id = await t.create({ datasetId: t.datasetId, datasetVersion: 1, trialsPerItem: trials });
    const rand = lcg(42);
    const rows: {
      item: string;
      relevance: number;
      toxic: boolean;
      tone: string;
      passed: boolean;
      score: number;
      latency: number;
    }[] = [];
    for (const item of items) {
      // items 0-3 are stable on toxic and passed; the others vary by chance
      const stable = Number(item.slice(-2)) < 4;
      for (let trial = 1; trial <= trials; trial++) {
        rows.push({
          item,
          relevance: Math.round(rand() * 1000) / 100,
          toxic: stable ? false : rand() < 0.4,
          tone: ["rude", "neutral", "friendly"][Math.floor(rand() * 3)] as string,
          passed: stable ? true : rand() < 0.5,
          score: Math.round(rand() * 100) / 100,
          latency: Math.floor(rand() * 5000),
        });
      }
    }
    const trialOf = new Map<string, number>();
    const results = rows.map((r, i) => {
      const trial = (trialOf.get(r.item) ?? 0) + 1;
      trialOf.set(r.item, trial);
      return result(i, {
        datasetItemId: r.item,
        trial,
        passed: r.passed,
        score: r.score,
        latencyMs: BigInt(r.latency),
        scores: scores(num(r.relevance), bool(r.toxic), cat(r.tone)),
      });
    });
    await t.alice.recordTestResults({ evaluationId: id, results });
    const summary = must((await t.alice.getEvaluationSummary({ id })).summary);
    const n = rows.length;
    const close = (a: number | undefined, b: number) => expect(a).toBeCloseTo(b, 9);

    const [relevance, toxic, tone] = summary.scores;
    const rel = rows.map((r) => r.relevance);
    expect(relevance).toMatchObject({ name: "relevance", kind: ScoreKind.NUMERIC, count: n });
    close(relevance?.mean, jStat.mean(rel));
    close(relevance?.standardDeviation, jStat.stdev(rel, true));
    // jstat inverts the t distribution numerically (to about 1e-8): the interval is compared to 6 places
    const half = jStat.studentt.inv(0.975, n - 1) * (jStat.stdev(rel, true) / Math.sqrt(n));
    expect(relevance?.ci95Lower).toBeCloseTo(jStat.mean(rel) - half, 6);
    expect(relevance?.ci95Upper).toBeCloseTo(jStat.mean(rel) + half, 6);
    close(relevance?.median, jStat.median(rel));
    close(relevance?.min, jStat.min(rel));
    close(relevance?.max, jStat.max(rel));

    const tox = rows.map((r) => (r.toxic ? 1 : 0));
    expect(toxic).toMatchObject({
      name: "toxic",
      kind: ScoreKind.BOOLEAN,
      count: n,
      direction: ScoreDirection.LOWER_IS_BETTER,
    });
    close(toxic?.rate, jStat.mean(tox));
    close(toxic?.standardDeviation, jStat.stdev(tox, true));
    const flakyOf = (values: (r: (typeof rows)[number]) => unknown) =>
      items.filter((item) => new Set(rows.filter((r) => r.item === item).map(values)).size > 1);
    const flakyToxic = flakyOf((r) => r.toxic);
    const flakyPassed = flakyOf((r) => r.passed);
    expect(flakyToxic.length).toBeGreaterThan(0);
    expect(toxic?.flakyItemCount).toBe(flakyToxic.length);
    expect(summary.flakyItemCount).toBe(flakyPassed.length);

    expect(tone?.distribution.map((d) => [d.category, d.count])).toEqual(
      ["rude", "neutral", "friendly"].map((c) => [c, rows.filter((r) => r.tone === c).length]),
    );
    close(tone?.distribution[0]?.fraction, rows.filter((r) => r.tone === "rude").length / n);

    // latency percentiles, nearest rank
    const latencies = rows.map((r) => r.latency).sort((a, b) => a - b);
    const rank = (p: number) => latencies[Math.ceil((p / 100) * n) - 1];
    expect([summary.latencyP50Ms, summary.latencyP95Ms, summary.latencyP99Ms, summary.latencyMaxMs]).toEqual(
      [rank(50), rank(95), rank(99), latencies[n - 1]].map((v) => BigInt(v ?? -1)),
    );

    // per item across trials, two pages of 5 and the rest
    const listed = [];
    let pageToken = "";
    do {
      const page = await t.alice.listItemStats({ evaluationId: id, pageSize: 5, pageToken });
      listed.push(...page.items);
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(listed.map((i) => i.datasetItemId)).toEqual(items);
    for (const it of listed) {
      const of = rows.filter((r) => r.item === it.datasetItemId);
      expect(it.trialCount).toBe(trials);
      const expected: [string, number[]][] = [
        ["passed", of.map((r) => (r.passed ? 1 : 0))],
        ["score", of.map((r) => r.score)],
        ["relevance", of.map((r) => r.relevance)],
        ["toxic", of.map((r) => (r.toxic ? 1 : 0))],
        ["tone", of.map((r) => ["rude", "neutral", "friendly"].indexOf(r.tone))],
      ];
      expect(it.scores.map((s) => s.name)).toEqual(expected.map(([name]) => name));
      expected.forEach(([, values], k) => {
        close(it.scores[k]?.mean, jStat.mean(values));
        close(it.scores[k]?.variance, jStat.variance(values, true));
      });
      expect(it.flaky).toBe(flakyToxic.includes(it.datasetItemId) || flakyPassed.includes(it.datasetItemId));
    }
    const flaky = await t.alice.listItemStats({ evaluationId: id, flakyOnly: true, pageSize: 100 });
    expect(flaky.items.map((i) => i.datasetItemId)).toEqual(
      items.filter((i) => flakyToxic.includes(i) || flakyPassed.includes(i)),
    );
    // a page token is bound to its filter
    const first = await t.alice.listItemStats({ evaluationId: id, pageSize: 1 });
    await expectCode(
      t.alice.listItemStats({ evaluationId: id, flakyOnly: true, pageToken: first.nextPageToken }),
      Code.InvalidArgument,
    );
  });

  it("an ad-hoc evaluation has no items; a score with too few values leaves sd and interval unset", async () => {
    const t = await start();
    const id = await t.create();
    await t.alice.recordTestResults({
      evaluationId: id,
      results: [result(1, { scores: scores(num(4), bool(true), cat("rude")) })],
    });
    expect((await t.alice.listItemStats({ evaluationId: id })).items).toEqual([]);
    const summary = must((await t.alice.getEvaluationSummary({ id })).summary);
    expect(summary.scores[0]).toMatchObject({ count: 1, mean: 4, median: 4, min: 4, max: 4 });
    expect(summary.scores[0]?.standardDeviation).toBeUndefined();
    expect(summary.scores[0]?.ci95Lower).toBeUndefined();
    expect(summary.scores[1]).toMatchObject({ count: 1, rate: 1, flakyItemCount: 0 });
    await expectCode(t.alice.listItemStats({ evaluationId: uuidv7() }), Code.NotFound);
  });
});
