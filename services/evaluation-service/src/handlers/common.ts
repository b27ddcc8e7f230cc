import type { Database, Tx } from "@autoforge/db";
import { type CallContext, type RequestIdScope, requestIdOwner } from "@autoforge/server";
import type { DescMessage } from "@bufbuild/protobuf";
import { uuidv7 } from "uuidv7";
import { findEvaluation, type Queryable } from "../db/repository.js";
import type { EvaluationRow, Schema } from "../db/schema.js";
import { evaluationNotFound } from "../domain/errors.js";
import type { PromptClient } from "../prompt-client.js";

export type EvaluationTx = Tx<Schema>;
export type Ctx = CallContext<EvaluationTx>;

/** What the handlers need, passed in explicitly (no module state). */
export interface HandlerDeps {
  readonly db: Database<Schema>;
  readonly prompts: PromptClient;
  /** This service's own token for prompt-service (the promotion gate's label moves); none: the gate refuses. */
  readonly gateToken?: () => Promise<string>;
  readonly now?: () => number;
}

/** A new UUIDv7 and the millisecond it encodes: `created_at` is that instant, so id order is creation order. */
export function newId(): { id: string; createdAt: number } {
  const id = uuidv7();
  return { id, createdAt: idTime(id) };
}

export function idTime(id: string): number {
  return Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16);
}

/** Another project's evaluation and a missing one look the same: NOT_FOUND. */
export async function requireEvaluation(
  tx: Queryable,
  projectId: string,
  id: string,
): Promise<EvaluationRow> {
  const row = await findEvaluation(tx, projectId, id);
  if (row === undefined) throw evaluationNotFound(id);
  return row;
}

/** The AIP-155 scope of a create call's request_id: per caller AND project (`requestIdOwner` of the kit). */
export function requestIdScope<S extends DescMessage>(
  ctx: Ctx,
  method: string,
  request: { requestId: string; digest: string; responseSchema: S },
): RequestIdScope<S> {
  return {
    ownerId: requestIdOwner(ctx.principal.subject, ctx.project),
    method,
    requestId: request.requestId,
    digest: request.digest,
    responseSchema: request.responseSchema,
  };
}

/** What the audit digest covers for an evaluation: its state. */
export function auditSnapshot(row: EvaluationRow): Record<string, unknown> {
  return {
    id: row.id,
    projectId: row.projectId,
    ownerId: row.ownerId,
    promptId: row.promptId,
    promptVersion: row.promptVersion,
    provider: row.provider,
    model: row.model,
    status: row.status,
    overallScore: row.overallScore,
    error: row.error,
    metadata: row.metadata,
    testCount: row.testCount,
    passedCount: row.passedCount,
    startedAt: row.startedAt,
    completedAt: row.completedAt,
    // Only for an experiment: an ad-hoc evaluation's snapshot is what it was before experiments.
    ...(row.datasetId === null
      ? {}
      : { datasetId: row.datasetId, datasetVersion: row.datasetVersion, trialsPerItem: row.trialsPerItem }),
  };
}
