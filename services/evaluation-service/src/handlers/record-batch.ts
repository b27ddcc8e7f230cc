import type { TestResult } from "@autoforge/contracts/evaluation/v1";
import type { UnitOfWorkTools } from "@autoforge/server";
import { uuidv7 } from "uuidv7";
import { structToJson } from "../convert.js";
import { insertTestResults } from "../db/repository.js";
import type { EvaluationRow, TestResultRow, TestResultScoreRow } from "../db/schema.js";
import { insertScoreValues } from "../db/score-repository.js";
import { evaluationState, InvalidArgumentError } from "../domain/errors.js";
import { checkResultScores, type ScoreDeclaration, type ScoreInput, scoreRows } from "../domain/scores.js";
import { auditSnapshot, type EvaluationTx, idTime } from "./common.js";
import { checkResultTrials } from "./experiments.js";
import { declarationsOf } from "./scores.js";

/**
 * Recording one batch of test results: what RecordTestResults does with its request and StreamTestResults with
 * each chunk. The validator has already refused a batch with an invalid row (naming `results[i].field`).
 */

/** What a batch's request_id digest covers: the results as given (scores and experiment fields only when set). */
export function batchDigestInput(results: readonly TestResult[]): unknown[] {
  return results.map((r) => ({
    name: r.name,
    input: r.input,
    expectedOutput: r.expectedOutput,
    actualOutput: r.actualOutput,
    passed: r.passed,
    score: r.score,
    latencyMs: r.latencyMs.toString(),
    metadata: r.metadata ?? null,
    // only when set: an ad-hoc batch without named scores digests as it did before experiments and scores (a
    // retry across the upgrade still matches its first answer)
    ...(r.datasetItemId === "" && r.trial === 0 ? {} : { datasetItemId: r.datasetItemId, trial: r.trial }),
    ...(r.scores.length === 0 ? {} : { scores: r.scores.map((s) => ({ name: s.name, value: s.value })) }),
  }));
}

/** A batch converted to rows' values before the unit of work (which holds the writer, and runs again on a retry). */
export interface BatchValues {
  readonly results: readonly TestResult[];
  readonly rows: readonly Omit<TestResultRow, "id" | "evaluationId" | "createdAt">[];
  readonly passed: number;
}

export function batchValues(results: readonly TestResult[]): BatchValues {
  const rows = results.map((r) => ({
    name: r.name,
    input: r.input,
    expectedOutput: r.expectedOutput,
    actualOutput: r.actualOutput,
    passed: r.passed ? 1 : 0,
    score: r.score,
    latencyMs: Number(r.latencyMs),
    metadata: structToJson(r.metadata),
    datasetItemId: r.datasetItemId === "" ? null : r.datasetItemId,
    trial: r.trial === 0 ? null : r.trial,
  }));
  return { results, rows, passed: rows.filter((v) => v.passed === 1).length };
}

export interface RecordedBatch {
  readonly rows: readonly TestResultRow[];
  /** The evaluation after the batch, as a re-read would return it. */
  readonly after: EvaluationRow;
  readonly declarations: readonly ScoreDeclaration[];
}

/**
 * Inside the caller's unit of work: the evaluation must be RUNNING; on an experiment each result's (item, trial)
 * is checked (handlers/experiments.ts); each result's values of the declared scores are checked
 * (domain/scores.ts), every violation of the batch at once; then the rows and their values are inserted and the
 * batch audited. CHECKs, the triggers of 0001/0005/0006 and the foreign keys back every rule up.
 * evaluations.test_count / passed_count are maintained by a trigger in the same transaction.
 */
export async function recordBatch(
  tx: EvaluationTx,
  audit: UnitOfWorkTools["audit"],
  before: EvaluationRow,
  batch: BatchValues,
  /** The evaluation's declared scores when the caller has them (a stream's later chunks); read otherwise. */
  known?: readonly ScoreDeclaration[],
): Promise<RecordedBatch> {
  if (before.status !== "running") {
    throw evaluationState(
      before.id,
      before.status,
      `evaluation ${before.id} is ${before.status.toUpperCase()}: test results are recorded only while RUNNING`,
      { reason: "EVALUATION_NOT_RUNNING" },
    );
  }
  await checkResultTrials(tx, before, batch.results);
  const declarations = known ?? (await declarationsOf(tx, before.id));
  const scores = batch.results.map((r) => ({
    scores: r.scores.map((s) => ({ name: s.name, value: s.value as ScoreInput })),
  }));
  const [first, ...rest] = checkResultScores(declarations, scores);
  if (first !== undefined) throw new InvalidArgumentError([first, ...rest]);
  const rows: TestResultRow[] = batch.rows.map((v) => {
    const id = uuidv7(); // monotonic within the process: id order is recording order
    return { id, evaluationId: before.id, ...v, createdAt: idTime(id) };
  });
  await insertTestResults(tx, rows);
  if (declarations.length > 0) {
    const values: TestResultScoreRow[] = rows.flatMap((row, i) =>
      scoreRows(declarations, row, scores[i]?.scores ?? []),
    );
    await insertScoreValues(tx, values);
  }
  // The row as a re-read would return it: the test_results_count trigger added one to test_count per row and
  // `passed` to passed_count, and changed nothing else.
  const after: EvaluationRow = {
    ...before,
    testCount: before.testCount + rows.length,
    passedCount: before.passedCount + batch.passed,
  };
  await audit({
    action: "evaluation.record_results",
    resourceType: "evaluation",
    resourceId: before.id,
    before: auditSnapshot(before),
    after: { ...auditSnapshot(after), recorded: rows.map((r) => r.id) },
  });
  return { rows, after, declarations };
}
