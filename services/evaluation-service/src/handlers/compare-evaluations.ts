import {
  type CompareEvaluationsRequest,
  type CompareEvaluationsResponseSchema,
  ComparisonVerdict,
  type EvaluationService,
  MultipleComparisonCorrection,
  NumericTest,
  PairedTest,
} from "@autoforge/contracts/evaluation/v1";
import type { ServiceHandlers } from "@autoforge/server";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { scoreDirectionFromDb, scoreKindFromDb, statusFromDb } from "../convert.js";
import { itemDefaultScoresQuery, itemScoreMeansQuery } from "../db/compare-repository.js";
import { latencyAtRankQuery, type Queryable } from "../db/repository.js";
import type { EvaluationRow, ScoreDirectionValue, ScoreKindValue } from "../db/schema.js";
import { datasetVersionMismatch, notAnExperiment } from "../domain/errors.js";
import { nearestRank } from "../domain/evaluation-state.js";
import {
  compareScores,
  type ItemValue,
  type PairedTestKind,
  type Pairs,
  pairByItem,
  type ScoreToCompare,
  type Verdict,
} from "../domain/paired-stats.js";
import type { ScoreDeclaration } from "../domain/scores.js";
import type { Ctx, EvaluationTx, HandlerDeps } from "./common.js";
import { requireEvaluation } from "./common.js";
import { declarationsOf } from "./scores.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;

/** The default significance level. */
export const defaultAlpha = 0.05;
/** How many regressed and how many improved items a score comparison lists. */
export const listedItemsMax = 20;
const percentiles = [50, 95, 99] as const;

const testToProto: Record<PairedTestKind, PairedTest> = {
  t: PairedTest.T_TEST,
  wilcoxon: PairedTest.WILCOXON_SIGNED_RANK,
  mcnemar: PairedTest.MCNEMAR_EXACT,
  t_rates: PairedTest.T_TEST_ON_ITEM_RATES,
};
const verdictToProto: Record<Verdict, ComparisonVerdict> = {
  better: ComparisonVerdict.BETTER,
  worse: ComparisonVerdict.WORSE,
  no_significant_difference: ComparisonVerdict.NO_SIGNIFICANT_DIFFERENCE,
};

interface Candidate {
  readonly name: string;
  readonly kind: Exclude<ScoreKindValue, "categorical">;
  readonly direction: ScoreDirectionValue;
}

/**
 * Which scores both evaluations can be compared on: `passed` and `score`, then every named score of the
 * baseline (in its declaration order) that the candidate declares with the same kind and direction. The others
 * are skipped with a reason, each name once.
 */
export function matchScores(
  baseline: readonly ScoreDeclaration[],
  candidate: readonly ScoreDeclaration[],
): { compared: Candidate[]; skipped: { name: string; reason: string }[] } {
  const compared: Candidate[] = [
    { name: "passed", kind: "boolean", direction: "higher" },
    { name: "score", kind: "numeric", direction: "higher" },
  ];
  const skipped: { name: string; reason: string }[] = [];
  const theirs = new Map(candidate.map((d) => [d.name, d]));
  for (const b of baseline) {
    const c = theirs.get(b.name);
    if (c === undefined) skipped.push({ name: b.name, reason: "declared by the baseline only" });
    else if (c.kind !== b.kind)
      skipped.push({
        name: b.name,
        reason: `the kinds differ (baseline ${b.kind.toUpperCase()}, candidate ${c.kind.toUpperCase()})`,
      });
    else if (b.kind === "categorical")
      skipped.push({ name: b.name, reason: "categorical scores have no paired test" });
    else if (c.direction !== b.direction)
      skipped.push({
        name: b.name,
        reason: `the directions differ (baseline ${b.direction}, candidate ${c.direction} is better)`,
      });
    else compared.push({ name: b.name, kind: b.kind, direction: b.direction });
  }
  const ours = new Set(baseline.map((d) => d.name));
  for (const c of candidate) {
    if (!ours.has(c.name)) skipped.push({ name: c.name, reason: "declared by the candidate only" });
  }
  return { compared, skipped };
}

/** Both evaluations' per-item values of each score, and their latency percentiles: one read snapshot. */
async function readPairs(tx: Queryable, baseline: EvaluationRow, candidate: EvaluationRow, names: string[]) {
  // Read as arrays (`.values()`: columns item, trials, passed, score) and built once, instead of drizzle's generic
  // row objects: 10,000 grouped rows per read, and these reads are most of the call.
  const defaults = async (id: string) => {
    const rows = (await itemDefaultScoresQuery(tx, id).values()) as [string, number, number, number][];
    return {
      passed: rows.map((r) => ({ itemId: r[0], value: Number(r[2]) })),
      score: rows.map((r) => ({ itemId: r[0], value: Number(r[3]) })),
    };
  };
  const b = await defaults(baseline.id);
  const c = await defaults(candidate.id);
  const pairs = new Map<string, Pairs>([
    ["passed", pairByItem(b.passed, c.passed)],
    ["score", pairByItem(b.score, c.score)],
  ]);
  for (const name of names) {
    if (pairs.has(name)) continue;
    const values = async (id: string): Promise<ItemValue[]> =>
      ((await itemScoreMeansQuery(tx, id, name).values()) as [string, number][]).map((r) => ({
        itemId: r[0],
        value: Number(r[1]),
      }));
    pairs.set(name, pairByItem(await values(baseline.id), await values(candidate.id)));
  }
  const latencies = async (row: EvaluationRow) => {
    const out: number[] = [];
    for (const p of percentiles) {
      const [r] = await latencyAtRankQuery(tx, row.id, nearestRank(p, row.testCount));
      out.push(r?.latencyMs ?? 0);
    }
    return out;
  };
  return { pairs, latency: { baseline: await latencies(baseline), candidate: await latencies(candidate) } };
}

/**
 * CompareEvaluations' reads, in the caller's read snapshot: both evaluations (NOT_FOUND, NOT_AN_EXPERIMENT,
 * DATASET_VERSION_MISMATCH), their declarations, the per-item values of every score compared and the latency
 * percentiles.
 */
export async function readComparison(
  tx: Queryable,
  project: string,
  ids: { readonly baselineId: string; readonly candidateId: string },
) {
  const baseline = await requireEvaluation(tx, project, ids.baselineId);
  const candidate = await requireEvaluation(tx, project, ids.candidateId);
  for (const [row, role] of [
    [baseline, "baseline"],
    [candidate, "candidate"],
  ] as const) {
    if (row.datasetId === null) throw notAnExperiment(row.id, role);
  }
  if (baseline.datasetId !== candidate.datasetId || baseline.datasetVersion !== candidate.datasetVersion) {
    const of = (row: EvaluationRow) => ({
      id: row.id,
      datasetId: row.datasetId ?? "",
      datasetVersion: row.datasetVersion ?? 0,
    });
    throw datasetVersionMismatch(of(baseline), of(candidate));
  }
  const matched = matchScores(await declarationsOf(tx, baseline.id), await declarationsOf(tx, candidate.id));
  const data = await readPairs(
    tx,
    baseline,
    candidate,
    matched.compared.map((s) => s.name),
  );
  return { baseline, candidate, matched, ...data };
}

/**
 * The statistics over what readComparison read, in memory: each score's test (numeric: `numericTest`; boolean:
 * McNemar's exact test when both ran one trial per item, else the t-test of the per-item rates), Holm-Bonferroni,
 * the verdicts at `alpha` and the response.
 */
export function comparisonResponse(
  read: Awaited<ReturnType<typeof readComparison>>,
  options: { readonly alpha: number; readonly numericTest: NumericTest },
): MessageInitShape<typeof CompareEvaluationsResponseSchema> {
  const { baseline, candidate, matched, pairs, latency } = read;
  const { alpha } = options;
  const singleTrials = baseline.trialsPerItem === 1 && candidate.trialsPerItem === 1;
  const numericTest: PairedTestKind = options.numericTest === NumericTest.WILCOXON ? "wilcoxon" : "t";
  const skipped = [...matched.skipped];
  const toCompare: (ScoreToCompare & { kind: Candidate["kind"] })[] = [];
  for (const s of matched.compared) {
    const p = pairs.get(s.name) as Pairs;
    if (p.itemIds.length < 2) {
      skipped.push({ name: s.name, reason: "fewer than 2 dataset items have a value in both evaluations" });
      continue;
    }
    const test: PairedTestKind = s.kind === "numeric" ? numericTest : singleTrials ? "mcnemar" : "t_rates";
    toCompare.push({ name: s.name, kind: s.kind, direction: s.direction, test, pairs: p });
  }
  const results = compareScores(toCompare, alpha, listedItemsMax);
  const itemDiff = (i: { itemId: string; baseline: number; candidate: number }) => ({
    datasetItemId: i.itemId,
    baselineValue: i.baseline,
    candidateValue: i.candidate,
  });
  return {
    baselineId: baseline.id,
    candidateId: candidate.id,
    datasetId: baseline.datasetId ?? "",
    datasetVersion: baseline.datasetVersion ?? 0,
    alpha,
    correction: MultipleComparisonCorrection.HOLM_BONFERRONI,
    scores: results.map((r, k) => ({
      name: r.name,
      kind: scoreKindFromDb[(toCompare[k] as { kind: Candidate["kind"] }).kind],
      direction: scoreDirectionFromDb[r.direction],
      test: testToProto[r.test],
      pairCount: r.n,
      baselineMean: r.baselineMean,
      candidateMean: r.candidateMean,
      meanDifference: r.meanDifference,
      ci95Lower: r.ci95[0],
      ci95Upper: r.ci95[1],
      statistic: r.statistic,
      pValue: r.pValue,
      adjustedPValue: r.adjustedPValue,
      verdict: verdictToProto[r.verdict],
      regressedItems: r.regressed.map(itemDiff),
      regressedItemCount: r.regressedCount,
      improvedItems: r.improved.map(itemDiff),
      improvedItemCount: r.improvedCount,
    })),
    skippedScores: skipped,
    latency: percentiles.map((percentile, i) => {
      const b = latency.baseline[i] ?? 0;
      const c = latency.candidate[i] ?? 0;
      return { percentile, baselineMs: BigInt(b), candidateMs: BigInt(c), deltaMs: BigInt(c - b) };
    }),
    baselineStatus: statusFromDb[baseline.status],
    candidateStatus: statusFromDb[candidate.status],
    baselineTrialsPerItem: baseline.trialsPerItem ?? 0,
    candidateTrialsPerItem: candidate.trialsPerItem ?? 0,
  };
}

/**
 * CompareEvaluations: the baseline and the candidate (both experiments of the project over the same dataset
 * version) are read in one snapshot, their per-item values paired by dataset item (an item's value is its mean
 * over its trials), then each score is tested in memory (domain/paired-stats.ts) and the p-values adjusted with
 * Holm-Bonferroni. Numeric scores and `score`: the paired t-test, or Wilcoxon's signed-rank test on request;
 * boolean scores and `passed`: McNemar's exact test when both ran one trial per item, else the t-test of the
 * per-item rates; categorical scores are skipped.
 */
export function createCompareEvaluationsHandlers(_deps: HandlerDeps) {
  const compareEvaluations: H["compareEvaluations"] = async (req: CompareEvaluationsRequest, ctx: Ctx) => {
    const read = await ctx.unitOfWork((tx) => readComparison(tx, ctx.project.id, req));
    return comparisonResponse(read, { alpha: req.alpha ?? defaultAlpha, numericTest: req.numericTest });
  };
  return { compareEvaluations };
}
