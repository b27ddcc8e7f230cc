import {
  type PromotionPolicySchema,
  type PromotionSchema,
  PromotionStatus,
} from "@autoforge/contracts/evaluation/v1/promotions";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { PromotionPolicyRow, PromotionRow, PromotionStatusValue } from "./db/schema.js";
import type { RuleResult } from "./domain/promotion-rules.js";

/** Promotion rows <-> protobuf-es messages (no I/O, no rules). */

export const promotionStatusFromDb: Record<PromotionStatusValue, PromotionStatus> = {
  pending: PromotionStatus.PENDING,
  promoted: PromotionStatus.PROMOTED,
  refused: PromotionStatus.REFUSED,
  aborted: PromotionStatus.ABORTED,
  failed: PromotionStatus.FAILED,
};

/** A policy as stored in a decision (`promotions.policy`) and shown in the API. */
export function policyJson(row: PromotionPolicyRow): Record<string, unknown> {
  return {
    label: row.label,
    datasetId: row.datasetId,
    minPassRate: row.minPassRate,
    minMeanScore: row.minMeanScore,
    requireNotWorse: row.requireNotWorse === 1,
    alpha: row.alpha,
    updatedBy: row.updatedBy,
    updatedAt: row.updatedAt,
  };
}

export function policyMessage(
  projectId: string,
  p: Record<string, unknown>,
): MessageInitShape<typeof PromotionPolicySchema> {
  return {
    project: projectId,
    label: String(p.label),
    datasetId: String(p.datasetId),
    ...(p.minPassRate == null ? {} : { minPassRate: Number(p.minPassRate) }),
    ...(p.minMeanScore == null ? {} : { minMeanScore: Number(p.minMeanScore) }),
    requireNotWorse: p.requireNotWorse === true,
    alpha: Number(p.alpha),
    updatedBy: String(p.updatedBy),
    updateTime: timestampFromMs(Number(p.updatedAt)),
  };
}

export function promotionMessage(row: PromotionRow): MessageInitShape<typeof PromotionSchema> {
  return {
    id: row.id,
    project: row.projectId,
    promptId: row.promptId,
    label: row.label,
    fromVersion: row.fromVersion ?? 0,
    toVersion: row.toVersion,
    status: promotionStatusFromDb[row.status],
    candidateEvaluationId: row.candidateEvaluationId ?? "",
    baselineEvaluationId: row.baselineEvaluationId ?? "",
    rules: (JSON.parse(row.rules) as RuleResult[]).map((r) => ({ ...r })),
    policy: policyMessage(row.projectId, JSON.parse(row.policy) as Record<string, unknown>),
    error: row.error,
    requestedBy: row.requestedBy,
    reason: row.reason,
    createTime: timestampFromMs(row.createdAt),
    updateTime: timestampFromMs(row.updatedAt),
  };
}
