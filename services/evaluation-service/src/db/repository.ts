import { idempotencyKeyStore, insertRows, preparedQuery, type Tx } from "@autoforge/db";
import { createRequestIds } from "@autoforge/server";
import {
  and,
  asc,
  desc,
  eq,
  getTableColumns,
  gt,
  inArray,
  type Placeholder,
  type SQL,
  sql,
} from "drizzle-orm";
import type { LibSQLDatabase } from "drizzle-orm/libsql";
import {
  consumerOffsets,
  datasetVersionItems,
  type EvaluationRow,
  type EvaluationStatusValue,
  evaluations,
  type PromptTombstoneState,
  promptTombstones,
  type Schema,
  type TestResultRow,
  testResultScores,
  testResults,
} from "./schema.js";

/**
 * Every statement the handlers and the event consumer run, built here so tests can `.toSQL()` the very same
 * queries and check their plans (EXPLAIN QUERY PLAN). Functions take a unit of work's `tx` (or, for plan tests,
 * a plain Drizzle instance): they never open transactions themselves.
 */
export type Queryable = Tx<Schema> | LibSQLDatabase<Schema>;

/**
 * A value, or a `sql.placeholder` for it: the hot fixed-shape reads are built once with placeholders and kept
 * (`preparedQuery` of @autoforge/db: drizzle does not build their SQL again on every call).
 */
type Bind<T> = T | Placeholder;

// ---- evaluations -----------------------------------------------------------------------------------------

/**
 * `requireEvaluation`, i.e. every evaluation RPC: a primary-key lookup in the call's project (another project's
 * evaluation is not found), prepared once.
 */
const evaluationById = preparedQuery((db: Queryable) =>
  db
    .select()
    .from(evaluations)
    .where(
      and(eq(evaluations.id, sql.placeholder("id")), eq(evaluations.projectId, sql.placeholder("projectId"))),
    ),
);

export function findEvaluation(db: Queryable, projectId: string, id: string) {
  return evaluationById.with(db, { projectId, id }).get();
}

export async function insertEvaluation(db: Queryable, row: EvaluationRow): Promise<void> {
  await db.insert(evaluations).values(row);
}

/**
 * A state transition as ONE conditional UPDATE: it applies only while the row is still in one of `from`, so of
 * two concurrent transitions (in this process or another) exactly one wins. Returns the updated row, or
 * undefined when the row is missing, foreign, or no longer in `from`.
 */
export function transitionEvaluation(
  db: Queryable,
  target: { id: string; projectId: string; from: readonly EvaluationStatusValue[] },
  set: Partial<Pick<EvaluationRow, "status" | "startedAt" | "completedAt" | "error">> & { updatedAt: number },
) {
  return db
    .update(evaluations)
    .set(set)
    .where(
      and(
        eq(evaluations.id, target.id),
        eq(evaluations.projectId, target.projectId),
        inArray(evaluations.status, [...target.from]),
      ),
    )
    .returning()
    .get();
}

/**
 * RUNNING -> COMPLETED with overall_score = the mean of the test scores, computed by SQLite (AVG over the
 * covering (evaluation_id, passed, score) index) in the same statement. Needs at least one result.
 */
export function completeEvaluation(db: Queryable, id: string, projectId: string, at: number) {
  const mean = sql`(SELECT avg(${testResults.score}) FROM ${testResults} WHERE ${testResults.evaluationId} = ${id})`;
  return db
    .update(evaluations)
    .set({
      status: "completed",
      overallScore: sql`min(1.0, max(0.0, ${mean}))`,
      completedAt: at,
      updatedAt: at,
    })
    .where(
      and(
        eq(evaluations.id, id),
        eq(evaluations.projectId, projectId),
        eq(evaluations.status, "running"),
        gt(evaluations.testCount, 0),
      ),
    )
    .returning()
    .get();
}

/**
 * The project's evaluations of one prompt. A prompt's evaluations are all in the prompt's project (they are
 * created there), so the prompt id is the key that selects them and the project only a filter: the project term
 * is written `+project_id = ?` (SQLite's documented way to keep a term from driving index choice), or without
 * statistics the planner may walk the whole project in evaluations_project_created_idx instead of the prompt
 * indexes.
 */
function ofPrompt(projectId: string, promptId: string): SQL | undefined {
  return and(eq(evaluations.promptId, promptId), sql`+${evaluations.projectId} = ${projectId}`);
}

export interface ListEvaluationsFilter {
  projectId: string;
  promptId?: string | undefined;
  status?: EvaluationStatusValue | undefined;
  /** Keyset: the (created_at, id) of the last row of the previous page. */
  after?: { createdAt: number; id: string } | undefined;
  limit: number;
}

/**
 * ListEvaluations, newest first. Walks evaluations_project_created_idx / evaluations_project_status_created_idx
 * backwards; with a prompt filter, evaluations_prompt_created_idx (or, for RUNNING, the partial
 * evaluations_running_idx). Every candidate index ends with (created_at, id), so no plan needs a sort.
 */
export function listEvaluationsQuery(db: Queryable, f: ListEvaluationsFilter) {
  return db
    .select()
    .from(evaluations)
    .where(
      and(
        f.promptId === undefined ? eq(evaluations.projectId, f.projectId) : ofPrompt(f.projectId, f.promptId),
        f.status === undefined ? undefined : eq(evaluations.status, f.status),
        f.after === undefined
          ? undefined
          : sql`(${evaluations.createdAt}, ${evaluations.id}) < (${f.after.createdAt}, ${f.after.id})`,
      ),
    )
    .orderBy(desc(evaluations.createdAt), desc(evaluations.id))
    .limit(f.limit);
}

/**
 * ComparePromptVersions: one row per evaluated (version, provider, model, dataset, dataset version), grouped and
 * ordered in evaluations_prompt_compare_idx order, so neither needs a temp B-tree. Ad-hoc evaluations (NULL
 * dataset columns) come first within their provider and model: SQLite sorts NULL before any value.
 */
export function compareVersionsQuery(db: Queryable, projectId: string, promptId: string) {
  const group = [
    evaluations.promptVersion,
    evaluations.provider,
    evaluations.model,
    evaluations.datasetId,
    evaluations.datasetVersion,
  ];
  return db
    .select({
      promptVersion: evaluations.promptVersion,
      provider: evaluations.provider,
      model: evaluations.model,
      datasetId: evaluations.datasetId,
      datasetVersion: evaluations.datasetVersion,
      evaluationCount: sql<number>`count(*)`.mapWith(Number),
      completedCount: sql<number>`total(${evaluations.status} = 'completed')`.mapWith(Number),
      // overall_score is set only on completed evaluations (CHECK), so avg() sees exactly those.
      meanOverallScore: sql<number | null>`avg(${evaluations.overallScore})`,
      completedTests:
        sql<number>`total(CASE WHEN ${evaluations.status} = 'completed' THEN ${evaluations.testCount} END)`.mapWith(
          Number,
        ),
      completedPassed:
        sql<number>`total(CASE WHEN ${evaluations.status} = 'completed' THEN ${evaluations.passedCount} END)`.mapWith(
          Number,
        ),
    })
    .from(evaluations)
    .where(ofPrompt(projectId, promptId))
    .groupBy(...group)
    .orderBy(...group.map((c) => asc(c)));
}

/** What a PURGED event removes, for its audit row: evaluations and (by cascade) their results. */
export function evaluationsOfPromptCountQuery(db: Queryable, projectId: string, promptId: string) {
  return db
    .select({
      evaluations: sql<number>`count(*)`.mapWith(Number),
      testResults: sql<number>`total(${evaluations.testCount})`.mapWith(Number),
    })
    .from(evaluations)
    .where(ofPrompt(projectId, promptId));
}

/**
 * The PURGED cascade: every evaluation of the prompt in the event's project (any creator); test_results follow
 * by ON DELETE CASCADE.
 */
export function deleteEvaluationsOfPrompt(db: Queryable, projectId: string, promptId: string) {
  return db.delete(evaluations).where(ofPrompt(projectId, promptId));
}

// ---- test results ----------------------------------------------------------------------------------------

/** One multi-row INSERT per 250 rows (13 bound values each), its text built once per batch size: insertRows. */
export function insertTestResults(db: Queryable, rows: (typeof testResults.$inferInsert)[]): Promise<void> {
  return insertRows(db, testResults, rows);
}

export interface ListTestResultsFilter {
  evaluationId: string;
  passed?: boolean | undefined;
  minScore?: number | undefined;
  /** Keyset: the id of the last row of the previous page (ids are UUIDv7: recording order). */
  afterId?: string | undefined;
  limit: number;
}

/**
 * ListTestResults in recording order: test_results_evaluation_id_idx (evaluation_id, id) walked forwards.
 * The filters are evaluated on the rows it visits. The unary `+` keeps SQLite from answering `passed = ?` /
 * `score >= ?` with the (evaluation_id, passed, score) index instead, which would need a temp B-tree to
 * restore id order (SQLite's documented way to disqualify a term from index use).
 */
export function listTestResultsQuery(db: Queryable, f: ListTestResultsFilter) {
  const conditions: (SQL | undefined)[] = [
    eq(testResults.evaluationId, f.evaluationId),
    f.passed === undefined ? undefined : sql`+${testResults.passed} = ${f.passed ? 1 : 0}`,
    f.minScore === undefined ? undefined : sql`+${testResults.score} >= ${f.minScore}`,
    f.afterId === undefined ? undefined : gt(testResults.id, f.afterId),
  ];
  return db
    .select()
    .from(testResults)
    .where(and(...conditions))
    .orderBy(asc(testResults.evaluationId), asc(testResults.id))
    .limit(f.limit);
}

export interface ExportTestResultsFilter extends ListTestResultsFilter {
  /** Only this dataset item's results (an experiment's). */
  datasetItemId?: string | undefined;
}

/** A row of `exportTestResultsQuery`: the result, and its value of each declared score asked for (`score0`, ...). */
export type ExportedResultRow = TestResultRow & Record<`score${number}`, number | null>;

/**
 * One batch of ExportTestResults, in recording order, keyset on id, with each result's values of `scoreNames`
 * (the declared scores, in declaration order) as columns `score0`, `score1`, ...: one scalar subquery per score,
 * each a point lookup in test_result_scores' primary key (result_id, name). One row per result instead of one
 * more row per value read separately: an export reads a million results, and that halves the rows stepped and
 * mapped (REAL columns, so no value goes through text).
 *
 * Without an item the batch walks test_result_evaluation_id_idx forwards as ListTestResults does (the filters on
 * the rows it visits, `+` keeping them from driving index choice). With an item it is a range of the partial
 * UNIQUE index test_results_evaluation_item_trial_idx (evaluation_id, dataset_item_id, trial), which that index
 * bounds to the item's trials (at most trials_per_item, 100): those few rows are sorted by id. The other choice,
 * `dataset_item_id` as a filter on test_results_evaluation_id_idx, needs no sort but reads every result of the
 * evaluation (and its row, for the column) to find them: a million for one item of a large experiment, on every
 * batch of the export.
 */
export function exportTestResultsQuery(
  db: Queryable,
  f: ExportTestResultsFilter,
  scoreNames: readonly string[] = [],
) {
  const columns = {
    ...getTableColumns(testResults),
    ...Object.fromEntries(
      scoreNames.map((name, i) => [
        `score${i}`,
        sql<
          number | null
        >`(SELECT ${testResultScores.value} FROM ${testResultScores} WHERE ${testResultScores.resultId} = ${testResults.id} AND ${testResultScores.name} = ${name})`,
      ]),
    ),
  };
  const byItem = f.datasetItemId !== undefined;
  const query = db
    .select(columns)
    .from(testResults)
    .where(
      and(
        eq(testResults.evaluationId, f.evaluationId),
        byItem ? eq(testResults.datasetItemId, f.datasetItemId as string) : undefined,
        f.passed === undefined ? undefined : sql`+${testResults.passed} = ${f.passed ? 1 : 0}`,
        f.minScore === undefined ? undefined : sql`+${testResults.score} >= ${f.minScore}`,
        f.afterId === undefined
          ? undefined
          : byItem
            ? sql`+${testResults.id} > ${f.afterId}`
            : gt(testResults.id, f.afterId),
      ),
    )
    // by item, `+id`: ordering by the bare column would let test_results_evaluation_id_idx answer the ORDER BY,
    // which the planner prefers without statistics (walking the whole evaluation to skip a sort of a few rows)
    .orderBy(...(byItem ? [sql`+${testResults.id}`] : [asc(testResults.evaluationId), asc(testResults.id)]))
    .limit(f.limit);
  return query;
}

/**
 * test_results' columns as `exportTestResultsQuery` selects them (getTableColumns' order), for the array rows of
 * `exportTestResultsBatch`; checked against the table once, so a new column fails loudly here, not silently there.
 */
const exportedColumns = [
  "id",
  "evaluationId",
  "name",
  "input",
  "expectedOutput",
  "actualOutput",
  "passed",
  "score",
  "latencyMs",
  "metadata",
  "createdAt",
  "datasetItemId",
  "trial",
] as const satisfies readonly (keyof TestResultRow)[];
if (Object.keys(getTableColumns(testResults)).join() !== exportedColumns.join()) {
  throw new Error("exportTestResultsBatch: test_results' columns changed; update exportedColumns");
}

/** An integer column's value: the local engine gives numbers, a remote one may give a bigint. */
const int = (v: unknown) => (typeof v === "bigint" ? Number(v) : (v as number));
const intOrNull = (v: unknown) => (v === null || v === undefined ? null : int(v));

/**
 * `exportTestResultsQuery`'s rows, read as arrays (`.values()`) and built as one object literal each, instead of
 * drizzle's generic mapping (a copy of each row and a type check per field: a fifth of an export's CPU). The
 * columns need no decoding (text, integer and real, none in a JSON or boolean mode); the same values as `.all()`
 * (test/result-export.test.ts compares the export with ListTestResults).
 */
export async function exportTestResultsBatch(
  db: Queryable,
  f: ExportTestResultsFilter,
  scoreNames: readonly string[] = [],
): Promise<ExportedResultRow[]> {
  const rows = (await exportTestResultsQuery(db, f, scoreNames).values()) as unknown[][];
  const n = exportedColumns.length;
  return rows.map((v) => {
    const row: TestResultRow = {
      id: v[0] as string,
      evaluationId: v[1] as string,
      name: v[2] as string,
      input: v[3] as string,
      expectedOutput: v[4] as string,
      actualOutput: v[5] as string,
      passed: int(v[6]),
      score: v[7] as number,
      latencyMs: int(v[8]),
      metadata: v[9] as string,
      createdAt: int(v[10]),
      datasetItemId: (v[11] ?? null) as string | null,
      trial: intOrNull(v[12]),
    };
    const out = row as ExportedResultRow;
    for (let k = 0; k < scoreNames.length; k++) {
      const value = v[n + k];
      out[`score${k}`] = value === null || value === undefined ? null : Number(value);
    }
    return out;
  });
}

/** The review's query pattern 3: mean score of an evaluation's passed tests (a range of the covering index). */
export function meanPassedScoreQuery(db: Queryable, evaluationId: string) {
  return db
    .select({ meanPassedScore: sql<number | null>`avg(${testResults.score})` })
    .from(testResults)
    .where(and(eq(testResults.evaluationId, evaluationId), eq(testResults.passed, 1)));
}

/**
 * Latency at a 1-based rank (nearest-rank percentiles) by walking test_results_evaluation_latency_idx in
 * order: `ORDER BY latency_ms LIMIT 1 OFFSET rank - 1`.
 */
export function latencyAtRankQuery(db: Queryable, evaluationId: string, rank: number) {
  return latencyAtOffset(db, evaluationId, rankOffset(rank));
}

function latencyAtOffset(db: Queryable, evaluationId: Bind<string>, offset: Bind<number>) {
  return db
    .select({ latencyMs: testResults.latencyMs })
    .from(testResults)
    .where(eq(testResults.evaluationId, evaluationId))
    .orderBy(asc(testResults.evaluationId), asc(testResults.latencyMs))
    .limit(1)
    .offset(offset);
}

function rankOffset(rank: number): number {
  return Math.max(0, rank - 1);
}

/** The maximum latency, from the end of test_results_evaluation_latency_idx. */
export function maxLatencyQuery(db: Queryable, evaluationId: Bind<string>) {
  return db
    .select({ maxLatencyMs: sql<number | null>`max(${testResults.latencyMs})` })
    .from(testResults)
    .where(eq(testResults.evaluationId, evaluationId));
}

/**
 * GetEvaluationSummary's numbers in one statement. Counts, mean and mean of the passed tests in one pass over
 * the covering (evaluation_id, passed, score) index: `avg` skips the NULLs of the failed rows, and the passed
 * rows come in the same (passed, score) order as in the review's `passed = 1` range, so the mean is the same
 * number. The latencies at three ranks and the maximum are scalar subselects walking
 * (evaluation_id, latency_ms); a rank past the end (no results) gives NULL. Prepared once (the offsets are
 * placeholders too, so the text always has `OFFSET ?`, also for an offset of 0).
 */
export function summaryQuery(
  db: Queryable,
  evaluationId: string,
  ranks: { p50: number; p95: number; p99: number },
) {
  return summary.with(db, {
    evaluationId,
    p50Offset: rankOffset(ranks.p50),
    p95Offset: rankOffset(ranks.p95),
    p99Offset: rankOffset(ranks.p99),
  });
}

const summary = preparedQuery((db: Queryable) => {
  const evaluationId = sql.placeholder("evaluationId");
  return db
    .select({
      testCount: sql<number>`count(*)`.mapWith(Number),
      passedCount: sql<number>`total(${testResults.passed})`.mapWith(Number),
      meanScore: sql<number | null>`avg(${testResults.score})`,
      meanPassedScore: sql<
        number | null
      >`avg(CASE WHEN ${testResults.passed} = 1 THEN ${testResults.score} END)`,
      latencyP50Ms: sql<number | null>`${latencyAtOffset(db, evaluationId, sql.placeholder("p50Offset"))}`,
      latencyP95Ms: sql<number | null>`${latencyAtOffset(db, evaluationId, sql.placeholder("p95Offset"))}`,
      latencyP99Ms: sql<number | null>`${latencyAtOffset(db, evaluationId, sql.placeholder("p99Offset"))}`,
      maxLatencyMs: sql<number | null>`${maxLatencyQuery(db, evaluationId)}`,
    })
    .from(testResults)
    .where(eq(testResults.evaluationId, evaluationId));
});

// ---- experiments -----------------------------------------------------------------------------------------

/**
 * Which of `pairs` (item id, trial) the experiment already has a result for: one lookup per pair in the partial
 * UNIQUE index test_results_evaluation_item_trial_idx (the pairs bound as one JSON text, json_each).
 */
export function recordedTrialsQuery(
  db: Queryable,
  evaluationId: string,
  pairs: readonly { itemId: string; trial: number }[],
) {
  const json = JSON.stringify(pairs.map((p) => [p.itemId, p.trial]));
  return db
    .select({ itemId: sql<string>`${testResults.datasetItemId}`, trial: sql<number>`${testResults.trial}` })
    .from(testResults)
    .where(
      and(
        eq(testResults.evaluationId, evaluationId),
        sql`${testResults.datasetItemId} IS NOT NULL`,
        sql`(${testResults.datasetItemId}, ${testResults.trial}) IN (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(${json}))`,
      ),
    );
}

/**
 * How many (item, trial) results the experiment has: a count of its range of the partial UNIQUE index (each
 * stored pair is distinct and valid for the version, by the index and the insert triggers, so the missing
 * pairs are item_count * trials_per_item minus this). No row is read into memory.
 */
export function recordedTrialCountQuery(db: Queryable, evaluationId: string) {
  return db
    .select({ recorded: sql<number>`count(*)`.mapWith(Number) })
    .from(testResults)
    .where(and(eq(testResults.evaluationId, evaluationId), sql`${testResults.datasetItemId} IS NOT NULL`));
}

/**
 * The first `limit` items of the version, in item_id order, with fewer than `trials` results: the version's
 * primary-key range of dataset_version_items walked in order, each item's results counted in the partial
 * UNIQUE index; stops at `limit`.
 */
export function incompleteItemsQuery(
  db: Queryable,
  f: { evaluationId: string; datasetId: string; version: number; trials: number; limit: number },
) {
  const recorded = sql`(SELECT count(*) FROM ${testResults} WHERE ${testResults.evaluationId} = ${f.evaluationId} AND ${testResults.datasetItemId} = ${datasetVersionItems.itemId})`;
  return db
    .select({ itemId: datasetVersionItems.itemId })
    .from(datasetVersionItems)
    .where(
      and(
        eq(datasetVersionItems.datasetId, f.datasetId),
        eq(datasetVersionItems.version, f.version),
        sql`${recorded} < ${f.trials}`,
      ),
    )
    .orderBy(
      asc(datasetVersionItems.datasetId),
      asc(datasetVersionItems.version),
      asc(datasetVersionItems.itemId),
    )
    .limit(f.limit);
}

/** The trials recorded for a few items of the experiment (the partial UNIQUE index, per item). */
export function trialsOfItemsQuery(db: Queryable, evaluationId: string, itemIds: readonly string[]) {
  return db
    .select({ itemId: sql<string>`${testResults.datasetItemId}`, trial: sql<number>`${testResults.trial}` })
    .from(testResults)
    .where(
      and(
        eq(testResults.evaluationId, evaluationId),
        sql`${testResults.datasetItemId} IN (SELECT value FROM json_each(${JSON.stringify(itemIds)}))`,
      ),
    );
}

// ---- prompt tombstones (from the event feed) -------------------------------------------------------------

export function findTombstone(db: Queryable, promptId: string) {
  return db.select().from(promptTombstones).where(eq(promptTombstones.promptId, promptId)).get();
}

export async function setTombstone(
  db: Queryable,
  row: {
    promptId: string;
    ownerId: string;
    state: PromptTombstoneState;
    sequence: number;
    occurredAt: number;
  },
): Promise<void> {
  await db
    .insert(promptTombstones)
    .values(row)
    .onConflictDoUpdate({
      target: promptTombstones.promptId,
      set: { ownerId: row.ownerId, state: row.state, sequence: row.sequence, occurredAt: row.occurredAt },
    });
}

export function clearTombstone(db: Queryable, promptId: string) {
  return db.delete(promptTombstones).where(eq(promptTombstones.promptId, promptId));
}

// ---- consumer offsets ------------------------------------------------------------------------------------

export function findConsumerOffset(db: Queryable, name: string) {
  return db.select().from(consumerOffsets).where(eq(consumerOffsets.name, name)).get();
}

export function listConsumerOffsets(db: Queryable) {
  return db.select().from(consumerOffsets).orderBy(asc(consumerOffsets.name));
}

export async function saveConsumerOffset(
  db: Queryable,
  row: { name: string; lastAppliedSequence: number; lastSeenSequence: number; updatedAt: number },
): Promise<void> {
  await db
    .insert(consumerOffsets)
    .values(row)
    .onConflictDoUpdate({
      target: consumerOffsets.name,
      set: {
        lastAppliedSequence: row.lastAppliedSequence,
        lastSeenSequence: row.lastSeenSequence,
        updatedAt: row.updatedAt,
      },
    });
}

// ---- idempotency -----------------------------------------------------------------------------------------

/**
 * AIP-155 request ids over this service's `idempotency_keys` table, keyed (owner_id, method, key). Handlers
 * build the scope with `requestIdScope` (handlers/common.ts): the caller's subject and, in a team project, the
 * project in the method column.
 */
export const requestIds = createRequestIds<Queryable>(idempotencyKeyStore);
