import {
  type EvaluationSchema,
  EvaluationStatus,
  type ScoreDefinitionSchema,
  ScoreDirection,
  ScoreKind,
  type ScoreValueSchema,
  type TestResultSchema,
} from "@autoforge/contracts/evaluation/v1";
import { jsonToStruct, type ListView, structToJson } from "@autoforge/server";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs } from "@bufbuild/protobuf/wkt";
import type {
  EvaluationRow,
  EvaluationStatusValue,
  ScoreDirectionValue,
  ScoreKindValue,
  TestResultRow,
} from "./db/schema.js";
import { type ScoreDeclaration, scoreInputOf } from "./domain/scores.js";

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

export const scoreKindToDb: Partial<Record<ScoreKind, ScoreKindValue>> = {
  [ScoreKind.NUMERIC]: "numeric",
  [ScoreKind.BOOLEAN]: "boolean",
  [ScoreKind.CATEGORICAL]: "categorical",
};
export const scoreKindFromDb: Record<ScoreKindValue, ScoreKind> = {
  numeric: ScoreKind.NUMERIC,
  boolean: ScoreKind.BOOLEAN,
  categorical: ScoreKind.CATEGORICAL,
};
export const scoreDirectionFromDb: Record<ScoreDirectionValue, ScoreDirection> = {
  higher: ScoreDirection.HIGHER_IS_BETTER,
  lower: ScoreDirection.LOWER_IS_BETTER,
};

/** A declared score of a (validated) CreateEvaluation request, at its position. */
export function scoreDeclarationOf(
  d: {
    name: string;
    kind: ScoreKind;
    min?: number | undefined;
    max?: number | undefined;
    categories: string[];
    direction: ScoreDirection;
  },
  position: number,
): ScoreDeclaration {
  const kind = scoreKindToDb[d.kind] ?? "numeric";
  return {
    name: d.name,
    position,
    kind,
    min: kind === "numeric" ? (d.min ?? null) : null,
    max: kind === "numeric" ? (d.max ?? null) : null,
    categories: kind === "categorical" ? d.categories : [],
    direction: d.direction === ScoreDirection.LOWER_IS_BETTER ? "lower" : "higher",
  };
}

export function scoreDefinitionMessage(d: ScoreDeclaration): MessageInitShape<typeof ScoreDefinitionSchema> {
  return {
    name: d.name,
    kind: scoreKindFromDb[d.kind],
    ...(d.min === null ? {} : { min: d.min }),
    ...(d.max === null ? {} : { max: d.max }),
    categories: [...d.categories],
    direction: scoreDirectionFromDb[d.direction],
  };
}

/** A result's stored values, in declaration order. */
export function scoreValueMessages(
  declarations: readonly ScoreDeclaration[],
  values: ReadonlyMap<string, number> | undefined,
): MessageInitShape<typeof ScoreValueSchema>[] {
  if (values === undefined) return [];
  return declarations.flatMap((d) => {
    const v = values.get(d.name);
    return v === undefined ? [] : [{ name: d.name, value: scoreInputOf(d, v) }];
  });
}

function ts(ms: number): Timestamp {
  return timestampFromMs(ms);
}

export { jsonToStruct, structToJson };

/** An evaluation, with its declared scores (none: the message of before named scores). */
export function evaluationMessage(
  row: EvaluationRow,
  declarations: readonly ScoreDeclaration[] = [],
): MessageInitShape<typeof EvaluationSchema> {
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
    scores: declarations.map(scoreDefinitionMessage),
  };
}

/**
 * A test result with its values of the declared scores (`scores`: from test_result_scores, by name). The BASIC
 * view (lists) leaves out its texts: `input`, `expected_output` and `actual_output`.
 */
export function testResultMessage(
  row: TestResultRow,
  view: ListView = "full",
  scores: { declarations: readonly ScoreDeclaration[]; values: ReadonlyMap<string, number> | undefined } = {
    declarations: [],
    values: undefined,
  },
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
    scores: scoreValueMessages(scores.declarations, scores.values),
  };
}
