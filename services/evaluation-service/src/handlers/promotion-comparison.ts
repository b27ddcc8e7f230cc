import { ComparisonVerdict, NumericTest, PairedTest } from "@autoforge/contracts/evaluation/v1";
import type { Queryable } from "../db/repository.js";
import type { EvaluationRow } from "../db/schema.js";
import type { ComparedScore } from "../domain/promotion-rules.js";
import { comparisonResponse, readComparison } from "./compare-evaluations.js";

const testNames: Record<PairedTest, string> = {
  [PairedTest.UNSPECIFIED]: "test",
  [PairedTest.T_TEST]: "paired t-test",
  [PairedTest.WILCOXON_SIGNED_RANK]: "Wilcoxon signed-rank test",
  [PairedTest.MCNEMAR_EXACT]: "McNemar's exact test",
  [PairedTest.T_TEST_ON_ITEM_RATES]: "paired t-test of the per-item rates",
};

/**
 * CompareEvaluations (baseline = where the label points, candidate = the version to promote) as the gate reads
 * it, in the gate's read snapshot: every compared score with whether the candidate is significantly worse
 * (Holm-Bonferroni across the scores, at the policy's alpha; the score's direction taken into account).
 */
export async function compareForGate(
  tx: Queryable,
  project: string,
  baseline: EvaluationRow,
  candidate: EvaluationRow,
  alpha: number,
): Promise<ComparedScore[]> {
  const read = await readComparison(tx, project, { baselineId: baseline.id, candidateId: candidate.id });
  const response = comparisonResponse(read, { alpha, numericTest: NumericTest.T_TEST });
  return (response.scores ?? []).map((s) => ({
    name: s.name ?? "",
    worse: s.verdict === ComparisonVerdict.WORSE,
    adjustedPValue: s.adjustedPValue ?? 1,
    meanDifference: s.meanDifference ?? 0,
    pairs: s.pairCount ?? 0,
    test: testNames[s.test ?? PairedTest.UNSPECIFIED],
  }));
}
