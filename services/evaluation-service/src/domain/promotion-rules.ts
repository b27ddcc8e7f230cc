import type { EvaluationRow } from "../db/schema.js";

/**
 * The promotion gate's rules as pure functions: what a policy asks of a candidate experiment and, with
 * `require_not_worse`, of its comparison with the label's current version. Each rule reports what it measured
 * and the threshold, so a refusal (and the stored decision) carries its evidence.
 */

export interface RuleResult {
  readonly rule: string;
  readonly passed: boolean;
  readonly measured: number;
  readonly threshold: number;
  readonly detail: string;
}

export interface PolicyRules {
  readonly datasetId: string;
  readonly minPassRate: number | null;
  readonly minMeanScore: number | null;
  readonly requireNotWorse: boolean;
  readonly alpha: number;
}

/** The candidate's own rules: an experiment exists, and its pass rate and overall score meet the minimums. */
export function candidateRules(
  policy: PolicyRules,
  version: number,
  candidate: EvaluationRow | undefined,
): RuleResult[] {
  if (candidate === undefined) {
    return [
      {
        rule: "candidate_experiment",
        passed: false,
        measured: 0,
        threshold: 0,
        detail: `no COMPLETED experiment of version ${version} over dataset ${policy.datasetId}`,
      },
    ];
  }
  const rules: RuleResult[] = [
    {
      rule: "candidate_experiment",
      passed: true,
      measured: candidate.testCount,
      threshold: 0,
      detail: `experiment ${candidate.id} over dataset ${policy.datasetId} version ${candidate.datasetVersion}: ${candidate.testCount} results`,
    },
  ];
  const passRate = candidate.testCount === 0 ? 0 : candidate.passedCount / candidate.testCount;
  if (policy.minPassRate !== null) {
    rules.push({
      rule: "min_pass_rate",
      passed: passRate >= policy.minPassRate,
      measured: passRate,
      threshold: policy.minPassRate,
      detail: `${candidate.passedCount} of ${candidate.testCount} results passed`,
    });
  }
  if (policy.minMeanScore !== null) {
    const mean = candidate.overallScore ?? 0;
    rules.push({
      rule: "min_mean_score",
      passed: mean >= policy.minMeanScore,
      measured: mean,
      threshold: policy.minMeanScore,
      detail: `overall score (mean of score) over ${candidate.testCount} results`,
    });
  }
  return rules;
}

/** Whether a comparison is needed, and with what: the version the label points to now. */
export function baselineRule(
  label: string,
  fromVersion: number | undefined,
  toVersion: number,
  candidate: EvaluationRow,
  baseline: EvaluationRow | undefined,
): RuleResult {
  if (fromVersion === undefined || fromVersion === toVersion) {
    const why =
      fromVersion === undefined ? `label ${label} is not set` : `label ${label} is at version ${toVersion}`;
    return {
      rule: "baseline_experiment",
      passed: true,
      measured: 0,
      threshold: 0,
      detail: `${why}: nothing to compare with`,
    };
  }
  const where = `over dataset ${candidate.datasetId} version ${candidate.datasetVersion}`;
  return baseline === undefined
    ? {
        rule: "baseline_experiment",
        passed: false,
        measured: 0,
        threshold: 0,
        detail: `no COMPLETED experiment of version ${fromVersion} (where ${label} points) ${where} to compare with`,
      }
    : {
        rule: "baseline_experiment",
        passed: true,
        measured: baseline.testCount,
        threshold: 0,
        detail: `experiment ${baseline.id} of version ${fromVersion} ${where}: ${baseline.testCount} results`,
      };
}

/** One compared score of CompareEvaluations, as the gate reads it. */
export interface ComparedScore {
  readonly name: string;
  readonly worse: boolean;
  readonly adjustedPValue: number;
  readonly meanDifference: number;
  readonly pairs: number;
  readonly test: string;
}

/** `not_worse:<score>` for each compared score: it holds unless the comparison calls the candidate worse. */
export function notWorseRules(scores: readonly ComparedScore[], alpha: number): RuleResult[] {
  return scores.map((s) => ({
    rule: `not_worse:${s.name}`,
    passed: !s.worse,
    measured: s.adjustedPValue,
    threshold: alpha,
    detail: `${s.test} over ${s.pairs} paired items: mean difference ${s.meanDifference} (candidate - baseline), Holm-adjusted p ${s.adjustedPValue}${s.worse ? ": significantly worse" : ""}`,
  }));
}
