import binomialCdf from "@stdlib/stats-base-dists-binomial-cdf";
import tQuantile from "@stdlib/stats-base-dists-t-quantile";
import ttest from "@stdlib/stats-ttest";
import wilcoxon from "@stdlib/stats-wilcoxon";
import type { ScoreDirectionValue } from "../db/schema.js";

/**
 * The statistics of CompareEvaluations: paired tests over two arrays of per-item values (the same dataset item
 * at the same index), Holm-Bonferroni across the scores compared, the verdict, and the items that moved. Pure
 * functions over plain arrays; the distributions come from @stdlib (t-test, Wilcoxon signed-rank, the binomial
 * CDF of McNemar's exact test, the t quantile of the intervals), checked against SciPy in
 * test/compare-evaluations.test.ts.
 */

/**
 * `t`: paired Student's t-test of the differences; `wilcoxon`: Wilcoxon signed-rank test of the differences;
 * `mcnemar`: McNemar's exact test of 0/1 values; `t_rates`: the t-test of per-item rates (booleans over several
 * trials), named apart so the response says which one ran.
 */
export type PairedTestKind = "t" | "wilcoxon" | "mcnemar" | "t_rates";

export interface PairedTestResult {
  readonly test: PairedTestKind;
  readonly n: number;
  readonly baselineMean: number;
  readonly candidateMean: number;
  /** Mean of candidate - baseline. */
  readonly meanDifference: number;
  /** 95 % t interval of meanDifference (n - 1 degrees of freedom). */
  readonly ci95: readonly [number, number];
  readonly statistic: number;
  /** Two-sided, unadjusted. */
  readonly pValue: number;
  /** Which way the candidate moved the score: the sign of the mean difference (Wilcoxon: of W+ - W-). */
  readonly effect: -1 | 0 | 1;
}

function sign(x: number): -1 | 0 | 1 {
  return x > 0 ? 1 : x < 0 ? -1 : 0;
}

function mean(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i] as number;
  return sum / values.length;
}

/** candidate[i] - baseline[i]. */
function differences(baseline: ArrayLike<number>, candidate: ArrayLike<number>): number[] {
  const d = new Array<number>(baseline.length);
  for (let i = 0; i < baseline.length; i++) d[i] = (candidate[i] as number) - (baseline[i] as number);
  return d;
}

/** Mean, and the sample standard deviation by the two-pass formula (no cancellation). */
function moments(d: readonly number[]): { mean: number; sd: number } {
  const m = mean(d);
  let squares = 0;
  for (const v of d) squares += (v - m) * (v - m);
  return { mean: m, sd: Math.sqrt(squares / (d.length - 1)) };
}

/** The 95 % t interval of the mean of `d` (n >= 2); a point when every difference is the same. */
function tInterval(m: number, sd: number, n: number): readonly [number, number] {
  const half = tQuantile(0.975, n - 1) * (sd / Math.sqrt(n));
  return [m - half, m + half];
}

/**
 * Runs `test` on the pairs (baseline[i], candidate[i]); needs at least 2 pairs. Degenerate samples are answered
 * without the library, as SciPy answers them: every difference 0 gives statistic 0 and p = 1; every difference
 * the same non-zero number (sd 0) gives an infinite t and p = 0.
 */
export function pairedTest(
  test: PairedTestKind,
  baseline: ArrayLike<number>,
  candidate: ArrayLike<number>,
): PairedTestResult {
  const n = baseline.length;
  if (n !== candidate.length) throw new Error("paired samples differ in length");
  if (n < 2) throw new Error("a paired test needs at least 2 pairs");
  const d = differences(baseline, candidate);
  const { mean: md, sd } = moments(d);
  const base = {
    test,
    n,
    baselineMean: mean(baseline),
    candidateMean: mean(candidate),
    meanDifference: md,
    ci95: sd === 0 ? ([md, md] as const) : tInterval(md, sd, n),
  };
  const allZero = d.every((v) => v === 0);
  if (allZero) return { ...base, statistic: 0, pValue: 1, effect: 0 };
  switch (test) {
    case "t":
    case "t_rates": {
      if (sd === 0) return { ...base, statistic: md > 0 ? Infinity : -Infinity, pValue: 0, effect: sign(md) };
      const r = ttest(Array.from(candidate), Array.from(baseline));
      return { ...base, statistic: r.statistic, pValue: r.pValue, effect: sign(md) };
    }
    case "wilcoxon": {
      const r = wilcoxon(Array.from(candidate), Array.from(baseline));
      const nonZero = d.filter((v) => v !== 0).length;
      const wMinus = (nonZero * (nonZero + 1)) / 2 - r.statistic;
      return { ...base, statistic: r.statistic, pValue: r.pValue, effect: sign(r.statistic - wMinus) };
    }
    case "mcnemar": {
      // b: true in the baseline, false in the candidate; c: the other way round
      let b = 0;
      let c = 0;
      for (let i = 0; i < n; i++) {
        if (baseline[i] === 1 && candidate[i] === 0) b += 1;
        else if (baseline[i] === 0 && candidate[i] === 1) c += 1;
      }
      const pValue = Math.min(1, 2 * binomialCdf(Math.min(b, c), b + c, 0.5));
      return { ...base, statistic: c, pValue, effect: sign(c - b) };
    }
  }
}

/**
 * Holm-Bonferroni: with the m p-values in ascending order p(1) <= ... <= p(m), the i-th adjusted one is the
 * maximum over j <= i of min(1, (m - j + 1) p(j)). Returned in the order given.
 */
export function holmAdjust(pValues: readonly number[]): number[] {
  const m = pValues.length;
  const order = pValues.map((p, i) => ({ p, i })).sort((x, y) => x.p - y.p || x.i - y.i);
  const adjusted = new Array<number>(m);
  let running = 0;
  order.forEach(({ p, i }, rank) => {
    running = Math.max(running, Math.min(1, (m - rank) * p));
    adjusted[i] = running;
  });
  return adjusted;
}

export type Verdict = "better" | "worse" | "no_significant_difference";

/** Significant when the adjusted p-value is below alpha; better or worse by the effect and the direction. */
export function verdictOf(
  adjustedP: number,
  alpha: number,
  effect: -1 | 0 | 1,
  direction: ScoreDirectionValue,
): Verdict {
  if (!(adjustedP < alpha) || effect === 0) return "no_significant_difference";
  const improved = direction === "lower" ? effect < 0 : effect > 0;
  return improved ? "better" : "worse";
}

export interface ItemChange {
  readonly itemId: string;
  readonly baseline: number;
  readonly candidate: number;
}

export interface ItemChanges {
  readonly regressed: ItemChange[];
  readonly regressedCount: number;
  readonly improved: ItemChange[];
  readonly improvedCount: number;
}

/**
 * The items whose value moved the worse way (regressed) or the better way (improved) by `direction`, each list
 * the largest change first, then by item id, cut to `cap`; the counts are of all of them.
 */
export function itemChanges(
  itemIds: readonly string[],
  baseline: ArrayLike<number>,
  candidate: ArrayLike<number>,
  direction: ScoreDirectionValue,
  cap: number,
): ItemChanges {
  const regressed: ItemChange[] = [];
  const improved: ItemChange[] = [];
  for (let i = 0; i < itemIds.length; i++) {
    const b = baseline[i] as number;
    const c = candidate[i] as number;
    if (b === c) continue;
    const change = { itemId: itemIds[i] as string, baseline: b, candidate: c };
    const better = direction === "lower" ? c < b : c > b;
    (better ? improved : regressed).push(change);
  }
  const order = (x: ItemChange, y: ItemChange) =>
    Math.abs(y.candidate - y.baseline) - Math.abs(x.candidate - x.baseline) ||
    (x.itemId < y.itemId ? -1 : x.itemId > y.itemId ? 1 : 0);
  return {
    regressed: regressed.sort(order).slice(0, cap),
    regressedCount: regressed.length,
    improved: improved.sort(order).slice(0, cap),
    improvedCount: improved.length,
  };
}

/** One item's value in one evaluation: its mean over its trials. */
export interface ItemValue {
  readonly itemId: string;
  readonly value: number;
}

export interface Pairs {
  readonly itemIds: string[];
  readonly baseline: number[];
  readonly candidate: number[];
}

/** The items present in both lists (each in item id order, as the queries return them): a merge. */
export function pairByItem(baseline: readonly ItemValue[], candidate: readonly ItemValue[]): Pairs {
  const pairs: Pairs = { itemIds: [], baseline: [], candidate: [] };
  let i = 0;
  let j = 0;
  while (i < baseline.length && j < candidate.length) {
    const b = baseline[i] as ItemValue;
    const c = candidate[j] as ItemValue;
    if (b.itemId === c.itemId) {
      pairs.itemIds.push(b.itemId);
      pairs.baseline.push(b.value);
      pairs.candidate.push(c.value);
      i += 1;
      j += 1;
    } else if (b.itemId < c.itemId) i += 1;
    else j += 1;
  }
  return pairs;
}

/** One score to compare: its pairs and the test to run on them. */
export interface ScoreToCompare {
  readonly name: string;
  readonly direction: ScoreDirectionValue;
  readonly test: PairedTestKind;
  readonly pairs: Pairs;
}

export interface ScoreComparisonResult extends PairedTestResult, ItemChanges {
  readonly name: string;
  readonly direction: ScoreDirectionValue;
  readonly adjustedPValue: number;
  readonly verdict: Verdict;
}

/**
 * The whole comparison: each score's test, the p-values adjusted together (Holm-Bonferroni), the verdicts at
 * `alpha`, and the items that moved (at most `cap` listed per side). Every score needs at least 2 pairs.
 */
export function compareScores(
  scores: readonly ScoreToCompare[],
  alpha: number,
  cap = 20,
): ScoreComparisonResult[] {
  const tests = scores.map((s) => pairedTest(s.test, s.pairs.baseline, s.pairs.candidate));
  const adjusted = holmAdjust(tests.map((t) => t.pValue));
  return scores.map((s, k) => {
    const t = tests[k] as PairedTestResult;
    const adjustedPValue = adjusted[k] as number;
    return {
      ...t,
      name: s.name,
      direction: s.direction,
      adjustedPValue,
      verdict: verdictOf(adjustedPValue, alpha, t.effect, s.direction),
      ...itemChanges(s.pairs.itemIds, s.pairs.baseline, s.pairs.candidate, s.direction, cap),
    };
  });
}
