import {
  type EvaluationSchema,
  EvaluationStatus,
  type TestResultSchema,
} from "@autoforge/contracts/evaluation/v1";
import { jsonToStruct, type ListView, structToJson } from "@autoforge/server";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { EvaluationRow, EvaluationStatusValue, TestResultRow } from "./db/schema.js";

/** Rows <-> protobuf-es messages. No I/O, no rules: those live in domain/ and handlers/. */

export const statusToDb: Partial<Record<EvaluationStatus, EvaluationStatusValue>> = {
  [EvaluationStatus.PENDING]: "pending",
  [EvaluationStatus.RUNNING]: "running",
  [EvaluationStatus.COMPLETED]: "completed",
  [EvaluationStatus.FAILED]: "failed",
};
export const statusFromDb: Record<EvaluationStatusValue, EvaluationStatus> = {
  pending: EvaluationStatus.PENDING,
  running: EvaluationStatus.RUNNING,
  completed: EvaluationStatus.COMPLETED,
  failed: EvaluationStatus.FAILED,
};

function ts(ms: number): Timestamp {
  return timestampFromMs(ms);
}

export { jsonToStruct, structToJson };

export function evaluationMessage(row: EvaluationRow): MessageInitShape<typeof EvaluationSchema> {
  return {
    id: row.id,
    project: row.projectId,
    ownerId: row.ownerId,
    promptId: row.promptId,
    promptVersion: row.promptVersion,
    provider: row.provider,
    model: row.model,
    status: statusFromDb[row.status],
    ...(row.overallScore === null ? {} : { overallScore: row.overallScore }),
    error: row.error,
    metadata: jsonToStruct(row.metadata),
    testCount: row.testCount,
    passedCount: row.passedCount,
    createTime: ts(row.createdAt),
    updateTime: ts(row.updatedAt),
    ...(row.startedAt === null ? {} : { startTime: ts(row.startedAt) }),
    ...(row.completedAt === null ? {} : { completeTime: ts(row.completedAt) }),
    // An ad-hoc evaluation leaves them at their defaults ("" and 0): the same message as before experiments.
    ...(row.datasetId === null
      ? {}
      : {
          datasetId: row.datasetId,
          datasetVersion: row.datasetVersion ?? 0,
          trialsPerItem: row.trialsPerItem ?? 0,
        }),
  };
}

/** A test result. The BASIC view (lists) leaves out its texts: `input`, `expected_output` and `actual_output`. */
export function testResultMessage(
  row: TestResultRow,
  view: ListView = "full",
): MessageInitShape<typeof TestResultSchema> {
  const full = view === "full";
  return {
    id: row.id,
    evaluationId: row.evaluationId,
    name: row.name,
    input: full ? row.input : "",
    expectedOutput: full ? row.expectedOutput : "",
    actualOutput: full ? row.actualOutput : "",
    passed: row.passed === 1,
    score: row.score,
    latencyMs: BigInt(row.latencyMs),
    metadata: jsonToStruct(row.metadata),
    createTime: ts(row.createdAt),
    ...(row.datasetItemId === null ? {} : { datasetItemId: row.datasetItemId, trial: row.trial ?? 0 }),
  };
}
