import {
  type RecordTestResultsResponse,
  RecordTestResultsResponseSchema,
  type TestResult,
} from "@autoforge/contracts/evaluation/v1";
import { requestDigest, type UnitOfWorkTools } from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { uuidv7 } from "uuidv7";
import { evaluationMessage, structToJson } from "../convert.js";
import { insertTestResults } from "../db/repository.js";
import type { EvaluationRow, testResults } from "../db/schema.js";
import { evaluationState } from "../domain/errors.js";
import { auditSnapshot, type EvaluationTx, idTime, requireEvaluation } from "./common.js";
import { checkResultTrials } from "./experiments.js";

/**
 * How one validated batch of test results is recorded, by RecordTestResults (one batch per call) and
 * StreamTestResults (one per chunk): the same digest, the same rows, the same audit row, the same response.
 */

/** The `request_id` payload of a batch: what a retry must repeat to get the first answer. */
export function batchDigest(evaluationId: string, results: readonly TestResult[]): string {
  return requestDigest({
    evaluationId,
    results: results.map((r) => ({
      name: r.name,
      input: r.input,
      expectedOutput: r.expectedOutput,
      actualOutput: r.actualOutput,
      passed: r.passed,
      score: r.score,
      latencyMs: r.latencyMs.toString(),
      metadata: r.metadata ?? null,
      // only when set: an ad-hoc batch digests as it did before experiments (a retry across the
      // upgrade still matches its first answer)
      ...(r.datasetItemId === "" && r.trial === 0 ? {} : { datasetItemId: r.datasetItemId, trial: r.trial }),
    })),
  });
}

/**
 * A batch's rows' values, converted before the unit of work (which holds the writer and runs again on a retry);
 * ids are made inside, so each attempt's rows get the instant they are recorded.
 */
export interface PreparedBatch {
  readonly results: readonly TestResult[];
  readonly values: readonly Omit<typeof testResults.$inferInsert, "id" | "evaluationId" | "createdAt">[];
  readonly passed: number;
}

export function prepareBatch(results: readonly TestResult[]): PreparedBatch {
  const values = results.map((r) => ({
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
  return { results, values, passed: values.filter((v) => v.passed === 1).length };
}

export interface RecordedBatch {
  /** The evaluation after the batch (counts updated). */
  readonly after: EvaluationRow;
  readonly response: RecordTestResultsResponse;
  /** When the batch was recorded (its first row's instant). */
  readonly at: number | undefined;
}

/**
 * One atomic batch, inside the caller's write unit of work: every row or none. The validator has already refused
 * a batch with an invalid row (naming `results[i].field`); CHECK constraints and the
 * `test_results_only_while_running` trigger back it up. The evaluation must be RUNNING (EVALUATION_NOT_RUNNING);
 * on an experiment, each result's (item, trial) is checked against the version and the stored results first
 * (handlers/experiments.ts). The caller replays its request_id before this, so a retried batch gets its first
 * answer, not TRIAL_ALREADY_RECORDED. evaluations.test_count / passed_count are maintained by a trigger in the
 * same transaction.
 */
export async function recordBatch(
  tx: EvaluationTx,
  { audit }: UnitOfWorkTools,
  target: { projectId: string; evaluationId: string },
  batch: PreparedBatch,
): Promise<RecordedBatch> {
  const before = await requireEvaluation(tx, target.projectId, target.evaluationId);
  if (before.status !== "running") {
    throw evaluationState(
      before.id,
      before.status,
      `evaluation ${before.id} is ${before.status.toUpperCase()}: test results are recorded only while RUNNING`,
      { reason: "EVALUATION_NOT_RUNNING" },
    );
  }
  await checkResultTrials(tx, before, batch.results);
  const rows: (typeof testResults.$inferInsert)[] = batch.values.map((v) => {
    const id = uuidv7(); // monotonic within the process: id order is recording order
    return { id, evaluationId: before.id, ...v, createdAt: idTime(id) };
  });
  await insertTestResults(tx, rows);
  // The row as a re-read would return it: the test_results_count trigger added one to test_count per row
  // and `passed` to passed_count, and changed nothing else.
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
  const response = create(RecordTestResultsResponseSchema, {
    recordedCount: rows.length,
    evaluation: evaluationMessage(after),
  });
  return { after, response, at: rows[0]?.createdAt };
}
