import { insertRows } from "@autoforge/db";
import { and, asc, eq, gt, inArray, isNotNull, type SQL, sql } from "drizzle-orm";
import type { Queryable } from "./repository.js";
import {
  type EvaluationScoreRow,
  evaluationScores,
  type TestResultScoreRow,
  testResultScores,
  testResults,
} from "./schema.js";

/**
 * The statements of named scores (0006_scores): declarations, values, and the per-score and per-item aggregates
 * of GetEvaluationSummary and ListItemStats. Each aggregate reads one range of an index of test_result_scores
 * (or, for the default `passed` / `score`, of test_results): see SCHEMA.md and test/query-plans.test.ts.
 */

export async function insertScoreDeclarations(db: Queryable, rows: EvaluationScoreRow[]): Promise<void> {
  if (rows.length > 0) await db.insert(evaluationScores).values(rows);
}

/** The declarations of some evaluations, in declaration order (evaluation_scores_position_idx). */
export function scoreDeclarationsQuery(db: Queryable, evaluationIds: readonly string[]) {
  return db
    .select()
    .from(evaluationScores)
    .where(inArray(evaluationScores.evaluationId, [...evaluationIds]))
    .orderBy(asc(evaluationScores.evaluationId), asc(evaluationScores.position));
}

/** One multi-row INSERT per batch of rows (insertRows). */
export function insertScoreValues(db: Queryable, rows: TestResultScoreRow[]): Promise<void> {
  return insertRows(db, testResultScores, rows);
}

/** The values of some results (primary key (result_id, name)). */
export function scoreValuesQuery(db: Queryable, resultIds: readonly string[]) {
  return db
    .select({
      resultId: testResultScores.resultId,
      name: testResultScores.name,
      value: testResultScores.value,
    })
    .from(testResultScores)
    .where(inArray(testResultScores.resultId, [...resultIds]));
}

function ofScore(evaluationId: string, name: string): SQL | undefined {
  return and(eq(testResultScores.evaluationId, evaluationId), eq(testResultScores.name, name));
}

/**
 * Count, mean, min, max and the sum of squared deviations from the mean (two passes over the score's range of
 * test_result_scores_value_idx: the mean first, then the deviations, which keeps the variance exact where
 * sum(v²) - n·mean² would cancel).
 */
export function scoreMomentsQuery(db: Queryable, evaluationId: string, name: string) {
  const mean = db
    .select({ mean: sql`avg(${testResultScores.value})` })
    .from(testResultScores)
    .where(ofScore(evaluationId, name));
  return db
    .select({
      count: sql<number>`count(*)`.mapWith(Number),
      mean: sql<number | null>`(${mean})`,
      min: sql<number | null>`min(${testResultScores.value})`,
      max: sql<number | null>`max(${testResultScores.value})`,
      squaredDeviations:
        sql<number>`total((${testResultScores.value} - (${mean})) * (${testResultScores.value} - (${mean})))`.mapWith(
          Number,
        ),
    })
    .from(testResultScores)
    .where(ofScore(evaluationId, name));
}

/** The values at 0-based positions `offset` and `offset + 1` in value order: a median's one or two middles. */
export function scoreValuesAtQuery(db: Queryable, evaluationId: string, name: string, offset: number) {
  return db
    .select({ value: testResultScores.value })
    .from(testResultScores)
    .where(ofScore(evaluationId, name))
    .orderBy(asc(testResultScores.evaluationId), asc(testResultScores.name), asc(testResultScores.value))
    .limit(2)
    .offset(offset);
}

/** How many results gave each value (a categorical score's category indexes), grouped in index order. */
export function scoreDistributionQuery(db: Queryable, evaluationId: string, name: string) {
  return db
    .select({ value: testResultScores.value, count: sql<number>`count(*)`.mapWith(Number) })
    .from(testResultScores)
    .where(ofScore(evaluationId, name))
    .groupBy(testResultScores.value)
    .orderBy(asc(testResultScores.value));
}

/** Items whose value differs between trials: a range of test_result_scores_item_idx grouped by item. */
export function flakyScoreItemCountQuery(db: Queryable, evaluationId: string, name: string) {
  const flaky = db
    .select({ itemId: testResultScores.datasetItemId })
    .from(testResultScores)
    .where(and(ofScore(evaluationId, name), isNotNull(testResultScores.datasetItemId)))
    .groupBy(testResultScores.datasetItemId)
    .having(sql`min(${testResultScores.value}) <> max(${testResultScores.value})`);
  return db.select({ count: sql<number>`count(*)`.mapWith(Number) }).from(flaky.as("flaky"));
}

/** Items whose `passed` differs between trials: test_results_evaluation_item_trial_idx grouped by item. */
export function flakyPassedItemCountQuery(db: Queryable, evaluationId: string) {
  const flaky = db
    .select({ itemId: testResults.datasetItemId })
    .from(testResults)
    .where(and(eq(testResults.evaluationId, evaluationId), isNotNull(testResults.datasetItemId)))
    .groupBy(testResults.datasetItemId)
    .having(sql`min(${testResults.passed}) <> max(${testResults.passed})`);
  return db.select({ count: sql<number>`count(*)`.mapWith(Number) }).from(flaky.as("flaky"));
}

export interface ItemPageFilter {
  readonly evaluationId: string;
  /** Keyset: the last item id of the previous page. */
  readonly afterItemId?: string | undefined;
  /** Only items whose `passed`, or one of these boolean scores, differs between trials. */
  readonly flakyOnly?: { readonly booleanScores: readonly string[] } | undefined;
  readonly limit: number;
}

/**
 * A page of an experiment's items with the default scores across their trials: count, mean and sum of squares
 * of `passed` and `score`, grouped in item order along test_results_evaluation_item_trial_idx.
 */
export function itemPageQuery(db: Queryable, f: ItemPageFilter) {
  const flakyScore = (names: readonly string[]) =>
    db
      .select({ one: sql`1` })
      .from(testResultScores)
      .where(
        and(
          eq(testResultScores.evaluationId, f.evaluationId),
          inArray(testResultScores.name, [...names]),
          sql`${testResultScores.datasetItemId} = ${testResults.datasetItemId}`,
        ),
      )
      .groupBy(testResultScores.name)
      .having(sql`min(${testResultScores.value}) <> max(${testResultScores.value})`);
  const flaky =
    f.flakyOnly === undefined
      ? undefined
      : f.flakyOnly.booleanScores.length === 0
        ? sql`min(${testResults.passed}) <> max(${testResults.passed})`
        : sql`min(${testResults.passed}) <> max(${testResults.passed}) OR EXISTS (${flakyScore(f.flakyOnly.booleanScores)})`;
  return db
    .select({
      itemId: sql<string>`${testResults.datasetItemId}`,
      trials: sql<number>`count(*)`.mapWith(Number),
      passedSum: sql<number>`total(${testResults.passed})`.mapWith(Number),
      passedFlaky: sql<number>`min(${testResults.passed}) <> max(${testResults.passed})`.mapWith(Number),
      scoreSum: sql<number>`total(${testResults.score})`.mapWith(Number),
      scoreSquares: sql<number>`total(${testResults.score} * ${testResults.score})`.mapWith(Number),
    })
    .from(testResults)
    .where(
      and(
        eq(testResults.evaluationId, f.evaluationId),
        isNotNull(testResults.datasetItemId),
        f.afterItemId === undefined ? undefined : gt(testResults.datasetItemId, f.afterItemId),
      ),
    )
    .groupBy(testResults.datasetItemId)
    .having(flaky)
    .orderBy(asc(testResults.datasetItemId))
    .limit(f.limit);
}

/** The declared scores of some items across their trials (test_result_scores_item_idx). */
export function itemScoresQuery(
  db: Queryable,
  evaluationId: string,
  names: readonly string[],
  itemIds: readonly string[],
) {
  return db
    .select({
      itemId: sql<string>`${testResultScores.datasetItemId}`,
      name: testResultScores.name,
      count: sql<number>`count(*)`.mapWith(Number),
      sum: sql<number>`total(${testResultScores.value})`.mapWith(Number),
      squares: sql<number>`total(${testResultScores.value} * ${testResultScores.value})`.mapWith(Number),
      flaky: sql<number>`min(${testResultScores.value}) <> max(${testResultScores.value})`.mapWith(Number),
    })
    .from(testResultScores)
    .where(
      and(
        eq(testResultScores.evaluationId, evaluationId),
        inArray(testResultScores.name, [...names]),
        isNotNull(testResultScores.datasetItemId),
        inArray(testResultScores.datasetItemId, [...itemIds]),
      ),
    )
    .groupBy(testResultScores.name, testResultScores.datasetItemId);
}
