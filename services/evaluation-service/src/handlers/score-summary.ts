import type { ScoreSummarySchema } from "@autoforge/contracts/evaluation/v1";
import type { MessageInitShape } from "@bufbuild/protobuf";
import tQuantile from "@stdlib/stats-base-dists-t-quantile";
import { scoreDirectionFromDb, scoreKindFromDb } from "../convert.js";
import type { Queryable } from "../db/repository.js";
import {
  flakyScoreItemCountQuery,
  scoreDistributionQuery,
  scoreMomentsQuery,
  scoreValuesAtQuery,
} from "../db/score-repository.js";
import type { ScoreDeclaration } from "../domain/scores.js";

/**
 * GetEvaluationSummary's `scores`: per declared score, aggregates computed by SQL over the score's range of
 * test_result_scores_value_idx (a few index range reads, never the rows in memory), finished here:
 * - mean, sample standard deviation (n - 1) and the 95 % confidence interval of the mean, Student's t with
 *   n - 1 degrees of freedom: mean ± t(0.975, n - 1) · sd / √n (numeric and boolean; a boolean as 1/0);
 * - median (the middle value, or the mean of the two middle ones), min and max (numeric);
 * - rate (boolean: the mean of the 1/0 values), distribution (categorical: every category, in order);
 * - flaky items (boolean, experiments): items whose value differs between their trials.
 */
export async function scoreSummaries(
  tx: Queryable,
  evaluation: { id: string; isExperiment: boolean },
  declarations: readonly ScoreDeclaration[],
): Promise<MessageInitShape<typeof ScoreSummarySchema>[]> {
  const summaries: MessageInitShape<typeof ScoreSummarySchema>[] = [];
  for (const d of declarations) summaries.push(await scoreSummary(tx, evaluation, d));
  return summaries;
}

async function scoreSummary(
  tx: Queryable,
  evaluation: { id: string; isExperiment: boolean },
  d: ScoreDeclaration,
): Promise<MessageInitShape<typeof ScoreSummarySchema>> {
  const [m] = await scoreMomentsQuery(tx, evaluation.id, d.name);
  const n = m?.count ?? 0;
  const base = {
    name: d.name,
    kind: scoreKindFromDb[d.kind],
    direction: scoreDirectionFromDb[d.direction],
    count: n,
  };
  if (d.kind === "categorical") {
    const counts = new Map(
      (await scoreDistributionQuery(tx, evaluation.id, d.name)).map((r) => [r.value, r.count]),
    );
    return {
      ...base,
      distribution: d.categories.map((category, i) => {
        const count = counts.get(i) ?? 0;
        return { category, count, fraction: n === 0 ? 0 : count / n };
      }),
    };
  }
  if (n === 0 || m?.mean == null) return base;
  const mean = Number(m.mean);
  const spread = n < 2 ? {} : meanInterval(mean, m.squaredDeviations, n);
  if (d.kind === "boolean") {
    const flaky = evaluation.isExperiment
      ? ((await flakyScoreItemCountQuery(tx, evaluation.id, d.name))[0]?.count ?? 0)
      : 0;
    return { ...base, mean, rate: mean, ...spread, flakyItemCount: flaky };
  }
  const middles = (await scoreValuesAtQuery(tx, evaluation.id, d.name, Math.floor((n - 1) / 2))).map(
    (r) => r.value,
  );
  const median = n % 2 === 1 ? middles[0] : ((middles[0] ?? 0) + (middles[1] ?? 0)) / 2;
  return {
    ...base,
    mean,
    ...spread,
    ...(median === undefined ? {} : { median }),
    ...(m.min == null ? {} : { min: Number(m.min) }),
    ...(m.max == null ? {} : { max: Number(m.max) }),
  };
}

/** Sample standard deviation and the t interval of the mean, from n >= 2 values. */
function meanInterval(mean: number, squaredDeviations: number, n: number) {
  const sd = Math.sqrt(squaredDeviations / (n - 1));
  const half = tQuantile(0.975, n - 1) * (sd / Math.sqrt(n));
  return { standardDeviation: sd, ci95Lower: mean - half, ci95Upper: mean + half };
}
