import { and, asc, eq, isNotNull, sql } from "drizzle-orm";
import type { Queryable } from "./repository.js";
import { testResultScores, testResults } from "./schema.js";

/**
 * The reads of CompareEvaluations: an experiment's per-item values, one index range per score and evaluation,
 * grouped by item in index order (so no sort) and returned in item id order, ready to be merged with the other
 * evaluation's. See SCHEMA.md ("Named scores") and test/query-plans.test.ts ("compare query plans").
 */

/**
 * The default scores per dataset item over its trials: the trial count, the mean of `passed` (0/1, so the
 * item's pass rate) and of `score`, along test_results_evaluation_item_trial_idx.
 */
export function itemDefaultScoresQuery(db: Queryable, evaluationId: string) {
  return db
    .select({
      itemId: sql<string>`${testResults.datasetItemId}`,
      trials: sql<number>`count(*)`.mapWith(Number),
      passed: sql<number>`avg(${testResults.passed})`.mapWith(Number),
      score: sql<number>`avg(${testResults.score})`.mapWith(Number),
    })
    .from(testResults)
    .where(and(eq(testResults.evaluationId, evaluationId), isNotNull(testResults.datasetItemId)))
    .groupBy(testResults.datasetItemId)
    .orderBy(asc(testResults.datasetItemId));
}

/** A named score per dataset item: the mean of its values over the item's trials (test_result_scores_item_idx). */
export function itemScoreMeansQuery(db: Queryable, evaluationId: string, name: string) {
  return db
    .select({
      itemId: sql<string>`${testResultScores.datasetItemId}`,
      value: sql<number>`avg(${testResultScores.value})`.mapWith(Number),
    })
    .from(testResultScores)
    .where(
      and(
        eq(testResultScores.evaluationId, evaluationId),
        eq(testResultScores.name, name),
        isNotNull(testResultScores.datasetItemId),
      ),
    )
    .groupBy(testResultScores.datasetItemId)
    .orderBy(asc(testResultScores.datasetItemId));
}
