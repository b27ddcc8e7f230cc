import {
  type CompareEvaluationsResponse,
  ComparisonVerdict,
  MultipleComparisonCorrection,
  NumericTest,
  PairedTest,
  type ScoreComparison,
  ScoreDirection,
  ScoreKind,
} from "@autoforge/contracts/evaluation/v1";
import { BadRequestSchema, ErrorInfoSchema } from "@autoforge/contracts/google/rpc/error_details";
import type { ConnectError } from "@connectrpc/connect";
import { uuidv7 } from "uuidv7";
import { describe, expect, it } from "vitest";
import { compareScores, pairedTest } from "../src/domain/paired-stats.js";
import {
  Code,
  expectCode,
  must,
  openTestDatabase,
  type ResultInput,
  result,
  startEvaluationService,
  stubPromptClient,
} from "./helpers.js";

/**
 * CompareEvaluations through the public API. The expected statistics are SciPy's (scipy.stats.ttest_rel,
 * wilcoxon, binomtest on the discordant pairs, t.ppf for the intervals), computed by
 * test/reference/paired_stats.py from the same data sets (rebuilt here with the same integer generator) and
 * written below as literals; every p-value, statistic and interval must agree to 1e-6.
 */

// Printed by `python3 services/evaluation-service/test/reference/paired_stats.py` (SciPy 1.14.1).
const reference = {
  scipy: "1.14.1",
  single: {
    passed: {
      n: 40,
      baselineMean: 0.575,
      candidateMean: 0.625,
      meanDifference: 0.05,
      ci95: [-0.1784513684771702, 0.27845136847717017],
      statistic: 11.0,
      pValue: 0.8238029479980469,
      discordant: [9, 11],
      adjustedPValue: 1.0,
    },
    score: {
      n: 40,
      baselineMean: 0.5125,
      candidateMean: 0.5662499999999999,
      meanDifference: 0.053750000000000006,
      ci95: [0.023395052990819665, 0.08410494700918035],
      statistic: 3.5816118183008343,
      pValue: 0.0009348003223080683,
      adjustedPValue: 0.0037392012892322733,
    },
    relevance: {
      n: 40,
      baselineMean: 5.3462499999999995,
      candidateMean: 5.743250000000001,
      meanDifference: 0.3969999999999999,
      ci95: [0.15263789168230651, 0.6413621083176932],
      statistic: 3.2861408046562137,
      pValue: 0.002153649384662433,
      adjustedPValue: 0.0064609481539873,
    },
    toxic: {
      n: 40,
      baselineMean: 0.2,
      candidateMean: 0.3,
      meanDifference: 0.1,
      ci95: [-0.12672283392065972, 0.3267228339206597],
      statistic: 12.0,
      pValue: 0.5034446716308594,
      discordant: [8, 12],
      adjustedPValue: 1.0,
    },
  },
  singleWilcoxon: {
    passed: {
      n: 40,
      baselineMean: 0.575,
      candidateMean: 0.625,
      meanDifference: 0.05,
      ci95: [-0.1784513684771702, 0.27845136847717017],
      statistic: 11.0,
      pValue: 0.8238029479980469,
      discordant: [9, 11],
      adjustedPValue: 1.0,
    },
    score: {
      n: 40,
      baselineMean: 0.5125,
      candidateMean: 0.5662499999999999,
      meanDifference: 0.053750000000000006,
      ci95: [0.023395052990819665, 0.08410494700918035],
      statistic: 586.5,
      pValue: 0.0017716399005182468,
      adjustedPValue: 0.007086559602072987,
    },
    relevance: {
      n: 40,
      baselineMean: 5.3462499999999995,
      candidateMean: 5.743250000000001,
      meanDifference: 0.3969999999999999,
      ci95: [0.15263789168230651, 0.6413621083176932],
      statistic: 595.5,
      pValue: 0.004225146117079334,
      adjustedPValue: 0.012675438351238001,
    },
    toxic: {
      n: 40,
      baselineMean: 0.2,
      candidateMean: 0.3,
      meanDifference: 0.1,
      ci95: [-0.12672283392065972, 0.3267228339206597],
      statistic: 12.0,
      pValue: 0.5034446716308594,
      discordant: [8, 12],
      adjustedPValue: 1.0,
    },
  },
  multi: {
    passed: {
      n: 15,
      baselineMean: 0.5111111111111112,
      candidateMean: 0.6888888888888888,
      meanDifference: 0.17777777777777778,
      ci95: [0.040583319735283285, 0.3149722358202723],
      statistic: 2.779233335118605,
      pValue: 0.014771636573007936,
    },
    relevance: {
      n: 15,
      baselineMean: 5.012888888888889,
      candidateMean: 5.473777777777778,
      meanDifference: 0.46088888888888907,
      ci95: [0.26605027160237466, 0.6557275061754035],
      statistic: 5.073472432028656,
      pValue: 0.00016979735570285277,
    },
  },
  wilcoxonExact: {
    n: 12,
    baselineMean: 6.5,
    candidateMean: 7.070833333333333,
    meanDifference: 0.5708333333333333,
    ci95: [-0.006024695624198495, 1.147691362290865],
    statistic: 63.0,
    pValue: 0.06396484375,
  },
};

interface Expected {
  n: number;
  baselineMean: number;
  candidateMean: number;
  meanDifference: number;
  ci95: number[];
  statistic: number;
  pValue: number;
  adjustedPValue?: number;
}

/** MINSTD, s = s * 48271 mod 2^31 - 1: exact in doubles, so the Python script rebuilds the same numbers. */
function minstd(seed: number) {
  let s = seed;
  return () => {
    s = (s * 48271) % 2147483647;
    return s;
  };
}
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** The one-trial data set of paired_stats.py (`single_trial`). */
function singleTrial(n = 40, seed = 7) {
  const next = minstd(seed);
  return Array.from({ length: n }, () => {
    // hundredths, divided once: doubles every engine stores and returns unchanged
    const rb = next() % 1001;
    const rc = clamp(rb + (next() % 301) - 100, 0, 1000);
    const sb = next() % 101;
    const sc = clamp(sb + (next() % 41) - 15, 0, 100);
    const pb = next() % 10 < 6;
    const pc = next() % 10 < 7;
    const tb = next() % 10 < 3;
    const tc = next() % 10 < 2;
    return { rb: rb / 100, rc: rc / 100, sb: sb / 100, sc: sc / 100, pb, pc, tb, tc };
  });
}

/** The three-trial data set of paired_stats.py (`multi_trial`): [item][trial] of baseline and candidate. */
function multiTrial(n = 15, trials = 3, seed = 11) {
  const next = minstd(seed);
  return Array.from({ length: n }, () => {
    const b: { passed: boolean; relevance: number }[] = [];
    const c: { passed: boolean; relevance: number }[] = [];
    for (let t = 0; t < trials; t++) {
      const pb = next() % 10 < 5;
      const pc = next() % 10 < 7;
      const rb = next() % 1001;
      const rc = clamp(rb + (next() % 201) - 60, 0, 1000);
      b.push({ passed: pb, relevance: rb / 100 });
      c.push({ passed: pc, relevance: rc / 100 });
    }
    return { b, c };
  });
}

/** A seeded uniform in (0, 1) and a standard normal from it (Box-Muller). */
function normals(seed: number) {
  const next = minstd(seed);
  const uniform = () => (next() + 0.5) / 2147483647;
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

const itemId = (i: number) => `item-${String(i).padStart(3, "0")}`;

function expectStats(got: ScoreComparison | undefined, want: Expected) {
  const s = must(got, "score comparison");
  expect(s.pairCount, s.name).toBe(want.n);
  expect(s.baselineMean, `${s.name} baseline mean`).toBeCloseTo(want.baselineMean, 6);
  expect(s.candidateMean, `${s.name} candidate mean`).toBeCloseTo(want.candidateMean, 6);
  expect(s.meanDifference, `${s.name} mean difference`).toBeCloseTo(want.meanDifference, 6);
  expect(s.ci95Lower, `${s.name} CI lower`).toBeCloseTo(must(want.ci95[0]), 6);
  expect(s.ci95Upper, `${s.name} CI upper`).toBeCloseTo(must(want.ci95[1]), 6);
  expect(s.statistic, `${s.name} statistic`).toBeCloseTo(want.statistic, 6);
  expect(s.pValue, `${s.name} p-value`).toBeCloseTo(want.pValue, 6);
  if (want.adjustedPValue !== undefined) {
    expect(s.adjustedPValue, `${s.name} adjusted p-value`).toBeCloseTo(want.adjustedPValue, 6);
  }
}

const byName = (r: CompareEvaluationsResponse, name: string) => r.scores.find((s) => s.name === name);

type Scores = NonNullable<ResultInput["scores"]>;
const num = (name: string, value: number): Scores[number] => ({ name, value: { case: "number", value } });
const bool = (name: string, value: boolean): Scores[number] => ({ name, value: { case: "boolean", value } });
const cat = (name: string, value: string): Scores[number] => ({ name, value: { case: "category", value } });

interface Declared {
  name: string;
  kind: ScoreKind;
  min?: number;
  max?: number;
  categories?: string[];
  direction?: ScoreDirection;
}

/** One item's (trial's) result of an experiment. */
interface Row {
  item: string;
  trial?: number;
  passed: boolean;
  score: number;
  latencyMs: number;
  scores?: Scores;
}

async function start(itemCount: number) {
  const { db } = await openTestDatabase();
  const promptId = uuidv7();
  const bobPrompt = uuidv7();
  const svc = await startEvaluationService(
    db,
    stubPromptClient(
      new Map([
        [promptId, { project: "user:alice" }],
        [bobPrompt, { project: "user:bob" }],
      ]),
    ),
  );
  const alice = await svc.clients.evaluations("alice");
  const bob = await svc.clients.evaluations("bob");
  const datasets = await svc.clients.datasets("alice");
  const dataset = must((await datasets.createDataset({ name: "qa" })).dataset);
  const items = Array.from({ length: itemCount }, (_, i) => itemId(i));
  for (let version = 1; version <= 2; version++) {
    await datasets.createDatasetVersion({
      datasetId: dataset.id,
      items: items.map((id) => ({ itemId: id, input: { case: "textInput", value: `q ${id} v${version}` } })),
    });
  }
  /** A completed experiment of alice's prompt over the dataset's `version` with these results. */
  const experiment = async (
    rows: readonly Row[],
    options: { scores?: Declared[]; trials?: number; version?: number } = {},
  ) => {
    const e = must(
      (
        await alice.createEvaluation({
          promptId,
          provider: "p",
          model: "m",
          datasetId: dataset.id,
          datasetVersion: options.version ?? 1,
          trialsPerItem: options.trials ?? 1,
          scores: options.scores ?? [],
        })
      ).evaluation,
    );
    await alice.startEvaluation({ id: e.id });
    for (let i = 0; i < rows.length; i += 1000) {
      await alice.recordTestResults({
        evaluationId: e.id,
        results: rows.slice(i, i + 1000).map((r, k) =>
          result(i + k, {
            datasetItemId: r.item,
            trial: r.trial ?? 1,
            passed: r.passed,
            score: r.score,
            latencyMs: BigInt(r.latencyMs),
            scores: r.scores ?? [],
          }),
        ),
      });
    }
    await alice.completeEvaluation({ id: e.id, allowPartial: true });
    return e.id;
  };
  return { alice, bob, promptId, bobPrompt, experiment };
}

function reasonOf(e: ConnectError): string | undefined {
  return e.findDetails(ErrorInfoSchema)[0]?.reason;
}

/** The items that moved the worse / better way, the largest change first, then by id (what the RPC lists). */
function moved(ids: readonly string[], b: readonly number[], c: readonly number[], lowerIsBetter: boolean) {
  const all = ids.map((id, i) => ({
    datasetItemId: id,
    baselineValue: must(b[i]),
    candidateValue: must(c[i]),
  }));
  const change = (x: (typeof all)[number]) => Math.abs(x.candidateValue - x.baselineValue);
  const order = (x: (typeof all)[number], y: (typeof all)[number]) =>
    change(y) - change(x) || x.datasetItemId.localeCompare(y.datasetItemId);
  const better = (x: (typeof all)[number]) =>
    lowerIsBetter ? x.candidateValue < x.baselineValue : x.candidateValue > x.baselineValue;
  const changed = all.filter((x) => x.candidateValue !== x.baselineValue);
  const regressed = changed.filter((x) => !better(x)).sort(order);
  const improved = changed.filter(better).sort(order);
  return { regressed, improved };
}

const plain = (items: readonly { datasetItemId: string; baselineValue: number; candidateValue: number }[]) =>
  items.map((i) => ({
    datasetItemId: i.datasetItemId,
    baselineValue: i.baselineValue,
    candidateValue: i.candidateValue,
  }));

const baselineScores: Declared[] = [
  { name: "relevance", kind: ScoreKind.NUMERIC, min: 0, max: 10 },
  { name: "toxic", kind: ScoreKind.BOOLEAN, direction: ScoreDirection.LOWER_IS_BETTER },
  { name: "tone", kind: ScoreKind.CATEGORICAL, categories: ["rude", "neutral", "friendly"] },
  { name: "depth", kind: ScoreKind.NUMERIC, min: 0, max: 1 },
];
const candidateScores: Declared[] = [
  { name: "relevance", kind: ScoreKind.NUMERIC, min: 0, max: 10 },
  { name: "toxic", kind: ScoreKind.BOOLEAN, direction: ScoreDirection.LOWER_IS_BETTER },
  { name: "tone", kind: ScoreKind.CATEGORICAL, categories: ["rude", "neutral", "friendly"] },
  { name: "depth", kind: ScoreKind.BOOLEAN },
  { name: "fluency", kind: ScoreKind.NUMERIC, min: 0, max: 1 },
];

/** The one-trial pair of paired_stats.py as two experiments (the candidate's results in reverse order). */
async function singleTrialPair() {
  const t = await start(40);
  const data = singleTrial();
  const baseline = await t.experiment(
    data.map((d, i) => ({
      item: itemId(i),
      passed: d.pb,
      score: d.sb,
      latencyMs: 10 * i,
      scores: [num("relevance", d.rb), bool("toxic", d.tb), cat("tone", "rude"), num("depth", 0.5)],
    })),
    { scores: baselineScores },
  );
  const candidate = await t.experiment(
    data
      .map((d, i) => ({
        item: itemId(i),
        passed: d.pc,
        score: d.sc,
        latencyMs: 12 * i + 5,
        scores: [
          num("relevance", d.rc),
          bool("toxic", d.tc),
          cat("tone", "neutral"),
          bool("depth", true),
          num("fluency", 0.3),
        ],
      }))
      .reverse(),
    { scores: candidateScores },
  );
  return { ...t, data, baseline, candidate };
}

describe("CompareEvaluations", () => {
  it("tests each score as SciPy does (t-test, McNemar's exact test), adjusts with Holm and says BETTER where it is", async () => {
    const t = await singleTrialPair();
    const r = await t.alice.compareEvaluations({ baselineId: t.baseline, candidateId: t.candidate });
    expect(r.correction).toBe(MultipleComparisonCorrection.HOLM_BONFERRONI);
    expect(r.alpha).toBe(0.05);
    expect(r.scores.map((s) => [s.name, s.kind, s.direction, s.test])).toEqual([
      ["passed", ScoreKind.BOOLEAN, ScoreDirection.HIGHER_IS_BETTER, PairedTest.MCNEMAR_EXACT],
      ["score", ScoreKind.NUMERIC, ScoreDirection.HIGHER_IS_BETTER, PairedTest.T_TEST],
      ["relevance", ScoreKind.NUMERIC, ScoreDirection.HIGHER_IS_BETTER, PairedTest.T_TEST],
      ["toxic", ScoreKind.BOOLEAN, ScoreDirection.LOWER_IS_BETTER, PairedTest.MCNEMAR_EXACT],
    ]);
    for (const name of ["passed", "score", "relevance", "toxic"] as const) {
      expectStats(byName(r, name), reference.single[name]);
    }
    expect(r.scores.map((s) => [s.name, s.verdict])).toEqual([
      ["passed", ComparisonVerdict.NO_SIGNIFICANT_DIFFERENCE],
      ["score", ComparisonVerdict.BETTER],
      ["relevance", ComparisonVerdict.BETTER],
      ["toxic", ComparisonVerdict.NO_SIGNIFICANT_DIFFERENCE],
    ]);
    expect(r.skippedScores.map((s) => [s.name, s.reason])).toEqual([
      ["tone", "categorical scores have no paired test"],
      ["depth", "the kinds differ (baseline NUMERIC, candidate BOOLEAN)"],
      ["fluency", "declared by the candidate only"],
    ]);
    // latency percentiles, nearest rank: ceil(p / 100 * n)-th smallest
    const at = (p: number, latencies: number[]) =>
      must(latencies[Math.ceil((p / 100) * latencies.length) - 1]);
    const b = t.data.map((_, i) => 10 * i);
    const c = t.data.map((_, i) => 12 * i + 5);
    expect(r.latency.map((l) => [l.percentile, l.baselineMs, l.candidateMs, l.deltaMs])).toEqual(
      [50, 95, 99].map((p) => [p, BigInt(at(p, b)), BigInt(at(p, c)), BigInt(at(p, c) - at(p, b))]),
    );
    expect(r.datasetVersion).toBe(1);
    expect([r.baselineTrialsPerItem, r.candidateTrialsPerItem]).toEqual([1, 1]);
  });

  it("offers Wilcoxon's signed-rank test for numeric scores, as SciPy computes it", async () => {
    const t = await singleTrialPair();
    const r = await t.alice.compareEvaluations({
      baselineId: t.baseline,
      candidateId: t.candidate,
      numericTest: NumericTest.WILCOXON,
    });
    expect(r.scores.map((s) => [s.name, s.test])).toEqual([
      ["passed", PairedTest.MCNEMAR_EXACT],
      ["score", PairedTest.WILCOXON_SIGNED_RANK],
      ["relevance", PairedTest.WILCOXON_SIGNED_RANK],
      ["toxic", PairedTest.MCNEMAR_EXACT],
    ]);
    for (const name of ["passed", "score", "relevance", "toxic"] as const) {
      expectStats(byName(r, name), reference.singleWilcoxon[name]);
    }
    // the exact distribution (12 distinct non-zero differences), on the domain function
    const w = reference.wilcoxonExact;
    const exact = pairedTest(
      "wilcoxon",
      [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
      [1.5, 1.7, 3.9, 5.1, 4.2, 7.3, 7.6, 9.4, 8.05, 11.8, 12.35, 11.95],
    );
    expect(exact.statistic).toBeCloseTo(w.statistic, 6);
    expect(exact.pValue).toBeCloseTo(w.pValue, 6);
    expect(exact.ci95[0]).toBeCloseTo(must(w.ci95[0]), 6);
    expect(exact.ci95[1]).toBeCloseTo(must(w.ci95[1]), 6);
  });

  it("with several trials pairs each item's mean over its trials, and tests a boolean's per-item rates with the t-test", async () => {
    const t = await start(15);
    const data = multiTrial();
    const scores: Declared[] = [{ name: "relevance", kind: ScoreKind.NUMERIC, min: 0, max: 10 }];
    const rows = (side: "b" | "c") =>
      data.flatMap((d, i) =>
        d[side].map((x, trial) => ({
          item: itemId(i),
          trial: trial + 1,
          passed: x.passed,
          score: 0.5,
          latencyMs: 1,
          scores: [num("relevance", x.relevance)],
        })),
      );
    const baseline = await t.experiment(rows("b"), { scores, trials: 3 });
    const candidate = await t.experiment(rows("c"), { scores, trials: 3 });
    const r = await t.alice.compareEvaluations({ baselineId: baseline, candidateId: candidate });
    expect(r.scores.map((s) => [s.name, s.test])).toEqual([
      ["passed", PairedTest.T_TEST_ON_ITEM_RATES],
      ["score", PairedTest.T_TEST],
      ["relevance", PairedTest.T_TEST],
    ]);
    expect(must(byName(r, "score")).pValue).toBe(1);
    expect(must(byName(r, "score")).verdict).toBe(ComparisonVerdict.NO_SIGNIFICANT_DIFFERENCE);
    // `score` is 0.5 everywhere: every difference is 0 (p = 1), so it is compared but never significant
    expect(r.skippedScores).toEqual([]);
    expectStats(byName(r, "passed"), reference.multi.passed);
    expectStats(byName(r, "relevance"), reference.multi.relevance);
    expect([r.baselineTrialsPerItem, r.candidateTrialsPerItem]).toEqual([3, 3]);
  });

  it("lists the regressed and improved items, the largest change first, at most 20 each, with the counts", async () => {
    const t = await singleTrialPair();
    const r = await t.alice.compareEvaluations({ baselineId: t.baseline, candidateId: t.candidate });
    const ids = t.data.map((_, i) => itemId(i));
    const cases = [
      ["relevance", t.data.map((d) => d.rb), t.data.map((d) => d.rc), false],
      ["score", t.data.map((d) => d.sb), t.data.map((d) => d.sc), false],
      ["passed", t.data.map((d) => Number(d.pb)), t.data.map((d) => Number(d.pc)), false],
      ["toxic", t.data.map((d) => Number(d.tb)), t.data.map((d) => Number(d.tc)), true],
    ] as const;
    for (const [name, b, c, lowerIsBetter] of cases) {
      const s = must(byName(r, name));
      const want = moved(ids, b, c, lowerIsBetter);
      expect(s.regressedItemCount, `${name} regressed`).toBe(want.regressed.length);
      expect(s.improvedItemCount, `${name} improved`).toBe(want.improved.length);
      expect(plain(s.regressedItems), `${name} regressed items`).toEqual(want.regressed.slice(0, 20));
      expect(plain(s.improvedItems), `${name} improved items`).toEqual(want.improved.slice(0, 20));
    }
    // toxic is lower-is-better: an item that became toxic regressed
    const toxic = must(byName(r, "toxic"));
    expect(toxic.regressedItems.every((i) => i.baselineValue === 0 && i.candidateValue === 1)).toBe(true);
    expect(toxic.regressedItemCount).toBe(reference.single.toxic.statistic);
    // more than 20 moved on relevance: the list is cut, the count is not
    expect(must(byName(r, "relevance")).improvedItemCount).toBeGreaterThan(20);
    expect(must(byName(r, "relevance")).improvedItems).toHaveLength(20);
  });

  it("calls a known effect BETTER (WORSE where lower is better) and identical distributions NO_SIGNIFICANT_DIFFERENCE", async () => {
    const t = await start(200);
    const scores: Declared[] = [
      { name: "quality", kind: ScoreKind.NUMERIC, min: 0, max: 1 },
      { name: "cost", kind: ScoreKind.NUMERIC, min: 0, max: 1, direction: ScoreDirection.LOWER_IS_BETTER },
    ];
    const z = normals(42);
    const base = Array.from({ length: 200 }, () => ({ quality: 0.5 + 0.1 * z(), cost: 0.4 + 0.1 * z() }));
    const rows = (shift: number, noise: () => number) =>
      base.map((x, i) => ({
        item: itemId(i),
        passed: i % 2 === 0,
        score: 0.5,
        latencyMs: i,
        scores: [
          num("quality", clamp(x.quality + shift + 0.02 * noise(), 0, 1)),
          num("cost", clamp(x.cost + shift + 0.02 * noise(), 0, 1)),
        ],
      }));
    const zb = normals(1);
    const zc = normals(2);
    const baseline = await t.experiment(rows(0, zb), { scores });
    const better = await t.experiment(rows(0.1, zc), { scores });
    const r = await t.alice.compareEvaluations({ baselineId: baseline, candidateId: better });
    expect(must(byName(r, "quality")).verdict).toBe(ComparisonVerdict.BETTER);
    expect(must(byName(r, "quality")).meanDifference).toBeCloseTo(0.1, 2);
    expect(must(byName(r, "cost")).verdict).toBe(ComparisonVerdict.WORSE);
    // `passed` and `score` are the same in both: no difference at all
    expect(must(byName(r, "passed")).verdict).toBe(ComparisonVerdict.NO_SIGNIFICANT_DIFFERENCE);
    expect(must(byName(r, "score")).pValue).toBe(1);

    // a candidate drawn from the same distribution as the baseline, through the API once
    const zs = normals(3);
    const same = await t.experiment(
      Array.from({ length: 200 }, (_, i) => ({
        item: itemId(i),
        passed: zs() > 0,
        score: 0.5,
        latencyMs: i,
        scores: [num("quality", clamp(0.5 + 0.1 * zs(), 0, 1)), num("cost", clamp(0.4 + 0.1 * zs(), 0, 1))],
      })),
      { scores },
    );
    const zs2 = normals(4);
    const same2 = await t.experiment(
      Array.from({ length: 200 }, (_, i) => ({
        item: itemId(i),
        passed: zs2() > 0,
        score: 0.5,
        latencyMs: i,
        scores: [num("quality", clamp(0.5 + 0.1 * zs2(), 0, 1)), num("cost", clamp(0.4 + 0.1 * zs2(), 0, 1))],
      })),
      { scores },
    );
    const n = await t.alice.compareEvaluations({ baselineId: same, candidateId: same2 });
    expect(n.scores.map((s) => [s.name, s.verdict])).toEqual([
      ["passed", ComparisonVerdict.NO_SIGNIFICANT_DIFFERENCE],
      ["score", ComparisonVerdict.NO_SIGNIFICANT_DIFFERENCE],
      ["quality", ComparisonVerdict.NO_SIGNIFICANT_DIFFERENCE],
      ["cost", ComparisonVerdict.NO_SIGNIFICANT_DIFFERENCE],
    ]);
  });

  it("finds no significant difference between identical distributions in at least 94 of 100 seeded runs", () => {
    let clean = 0;
    const falsePositives: string[] = [];
    for (let seed = 1; seed <= 100; seed++) {
      const z = normals(seed * 7919);
      const ids = Array.from({ length: 200 }, (_, i) => itemId(i));
      const draw = (f: () => number) => ids.map(f);
      const numeric = { baseline: draw(() => 0.5 + 0.1 * z()), candidate: draw(() => 0.5 + 0.1 * z()) };
      const boolean = { baseline: draw(() => Number(z() > 0.25)), candidate: draw(() => Number(z() > 0.25)) };
      const results = compareScores(
        [
          { name: "quality", direction: "higher", test: "t", pairs: { itemIds: ids, ...numeric } },
          { name: "quality_w", direction: "higher", test: "wilcoxon", pairs: { itemIds: ids, ...numeric } },
          { name: "passed", direction: "higher", test: "mcnemar", pairs: { itemIds: ids, ...boolean } },
        ],
        0.05,
      );
      const significant = results.filter((s) => s.verdict !== "no_significant_difference");
      if (significant.length === 0) clean += 1;
      else falsePositives.push(`seed ${seed}: ${significant.map((s) => s.name).join(", ")}`);
    }
    expect(clean, falsePositives.join("\n")).toBeGreaterThanOrEqual(94);
  });

  it("refuses two dataset versions and ad-hoc evaluations (FAILED_PRECONDITION), foreign ones (NOT_FOUND) and a bad alpha", async () => {
    const t = await start(3);
    const rows = [0, 1, 2].map((i) => ({ item: itemId(i), passed: true, score: 0.5, latencyMs: 1 }));
    const v1 = await t.experiment(rows);
    const v2 = await t.experiment(rows, { version: 2 });
    const mismatch = await expectCode(
      t.alice.compareEvaluations({ baselineId: v1, candidateId: v2 }),
      Code.FailedPrecondition,
    );
    expect(reasonOf(mismatch)).toBe("DATASET_VERSION_MISMATCH");
    expect(mismatch.rawMessage).toMatch(/version 1.*version 2/);

    const adHoc = must(
      (await t.alice.createEvaluation({ promptId: t.promptId, provider: "p", model: "m" })).evaluation,
    ).id;
    for (const [baselineId, candidateId] of [
      [adHoc, v1],
      [v1, adHoc],
    ]) {
      const e = await expectCode(
        t.alice.compareEvaluations({ baselineId, candidateId }),
        Code.FailedPrecondition,
      );
      expect(reasonOf(e)).toBe("NOT_AN_EXPERIMENT");
    }

    // bob's evaluation is in another project: the same NOT_FOUND as an unknown id
    const bobs = must(
      (await t.bob.createEvaluation({ promptId: t.bobPrompt, provider: "p", model: "m" })).evaluation,
    ).id;
    for (const candidateId of [bobs, uuidv7()]) {
      const e = await expectCode(t.alice.compareEvaluations({ baselineId: v1, candidateId }), Code.NotFound);
      expect(reasonOf(e)).toBe("EVALUATION_NOT_FOUND");
    }
    await expectCode(t.bob.compareEvaluations({ baselineId: v1, candidateId: v2 }), Code.NotFound);

    for (const alpha of [0, 0.5, -0.1, 1, Number.NaN]) {
      const e = await expectCode(
        t.alice.compareEvaluations({ baselineId: v1, candidateId: v2, alpha }),
        Code.InvalidArgument,
      );
      expect(e.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual(["alpha"]);
    }
    const same = await expectCode(
      t.alice.compareEvaluations({ baselineId: v1, candidateId: v1 }),
      Code.InvalidArgument,
    );
    expect(same.findDetails(BadRequestSchema)[0]?.fieldViolations.map((v) => v.field)).toEqual([
      "candidate_id",
    ]);
    // a valid alpha is used as given
    const v1b = await t.experiment(rows);
    const ok = await t.alice.compareEvaluations({ baselineId: v1, candidateId: v1b, alpha: 0.01 });
    expect(ok.alpha).toBe(0.01);
  });
});
