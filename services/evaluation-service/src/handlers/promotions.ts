import {
  type GetPromotionPolicyRequest,
  type ListPromotionsRequest,
  type PromotePromptVersionRequest,
  PromotionPolicySchema,
  PromotionSchema,
  type PromotionService,
  type SetPromotionPolicyRequest,
} from "@autoforge/contracts/evaluation/v1/promotions";
import {
  AbortedError,
  cappedKeysetPage,
  decodePageToken,
  encodedItemSize,
  filterDigest,
  resolvePageSize,
  type ServiceHandlers,
} from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  findPolicy,
  insertPromotion,
  latestCompletedExperimentQuery,
  listPromotionsQuery,
  settlePromotion,
  upsertPolicy,
} from "../db/promotion-repository.js";
import type { PromotionPolicyRow, PromotionRow } from "../db/schema.js";
import {
  FailedPreconditionError,
  NotFoundError,
  policyNotFound,
  promotionRefused,
  type UnavailableError,
} from "../domain/errors.js";
import { baselineRule, candidateRules, notWorseRules, type RuleResult } from "../domain/promotion-rules.js";
import { policyJson, policyMessage, promotionMessage } from "../promotion-convert.js";
import { promptServiceUnavailable } from "../prompt-client.js";
import { type Ctx, type EvaluationTx, type HandlerDeps, newId } from "./common.js";
import { requireDataset } from "./dataset-versions.js";
import { checkPrompt } from "./evaluations.js";
import { compareForGate } from "./promotion-comparison.js";

type H = ServiceHandlers<typeof PromotionService, EvaluationTx>;

const promotionSize = encodedItemSize(PromotionSchema);
const defaultAlpha = 0.05;

/**
 * PromotionService: label policies, and PromotePromptVersion, the gate. The rules are evaluated in one read
 * snapshot (domain/promotion-rules.ts); the decision is stored before the label moves (PENDING) and settled
 * after prompt-service answers, so a decision is never PROMOTED unless the label moved, and a refusal or a lost
 * race is on record with its numbers.
 */
export function createPromotionHandlers(deps: HandlerDeps) {
  const now = deps.now ?? Date.now;

  const setPromotionPolicy: H["setPromotionPolicy"] = async (req: SetPromotionPolicyRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const p = req.policy;
    if (p === undefined) throw new FailedPreconditionError("policy is required");
    return ctx.unitOfWork(async (tx, { audit }) => {
      await requireDataset(tx, project, p.datasetId);
      const before = await findPolicy(tx, project, p.label);
      const row: PromotionPolicyRow = {
        projectId: project,
        label: p.label,
        datasetId: p.datasetId,
        minPassRate: p.minPassRate ?? null,
        minMeanScore: p.minMeanScore ?? null,
        requireNotWorse: p.requireNotWorse ? 1 : 0,
        alpha: p.alpha === 0 ? defaultAlpha : p.alpha,
        updatedBy: ctx.principal.subject,
        updatedAt: now(),
      };
      await upsertPolicy(tx, row);
      await audit({
        action: "promotion.policy.set",
        resourceType: "promotion_policy",
        resourceId: `${project}/${p.label}`,
        ...(before === undefined ? {} : { before: policyJson(before) }),
        after: policyJson(row),
      });
      return { policy: policyMessage(project, policyJson(row)) };
    });
  };

  const getPromotionPolicy: H["getPromotionPolicy"] = async (req: GetPromotionPolicyRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const row = await ctx.unitOfWork((tx) => findPolicy(tx, project, req.label));
    if (row === undefined) {
      throw new NotFoundError(
        `label ${req.label} of project ${project} has no promotion policy`,
        { type: PromotionPolicySchema.typeName, name: `${project}/${req.label}` },
        { reason: "POLICY_NOT_FOUND", metadata: { label: req.label, project } },
      );
    }
    return { policy: policyMessage(project, policyJson(row)) };
  };

  const promotePromptVersion: H["promotePromptVersion"] = async (
    req: PromotePromptVersionRequest,
    ctx: Ctx,
  ) => {
    const project = ctx.project.id;
    // The prompt and the version exist in the project (the caller's own credentials), and where the label is.
    const prompt = await checkPrompt(deps, ctx, req.promptId, req.version);
    const fromVersion = prompt.labels[req.label];
    // Step 1, one write unit: the policy, the rules over the experiments (one snapshot) and the decision recorded.
    // It holds the writer while the comparison reads (a few hundred ms for 10,000 items x 3 trials): promotions
    // are rare, and a decision must be on record before the label moves.
    const decision = await ctx.unitOfWork(async (tx, { audit }) => {
      const policy = await findPolicy(tx, project, req.label);
      if (policy === undefined) throw policyNotFound(req.label, project);
      const evaluated = await evaluateRules(tx, project, policy, req, fromVersion);
      const { id, createdAt } = newId();
      const row: PromotionRow = {
        id,
        projectId: project,
        promptId: req.promptId,
        label: req.label,
        fromVersion: fromVersion ?? null,
        toVersion: req.version,
        status: evaluated.results.every((r) => r.passed) ? "pending" : "refused",
        candidateEvaluationId: evaluated.candidateId,
        baselineEvaluationId: evaluated.baselineId,
        rules: JSON.stringify(evaluated.results),
        policy: JSON.stringify(policyJson(policy)),
        error: "",
        requestedBy: ctx.principal.subject,
        reason: req.reason,
        createdAt,
        updatedAt: createdAt,
      };
      await insertPromotion(tx, row);
      // a refusal is final: its one audit row now; a PENDING decision is audited when it settles
      if (row.status === "refused") await auditDecision(audit, row);
      return { row, failed: evaluated.results.filter((r) => !r.passed) };
    });
    const { id, createdAt } = decision.row;
    if (decision.failed.length > 0) throw promotionRefused(id, decision.failed);

    // The move: prompt-service's compare-and-swap, as this service's own principal.
    let error: ConnectError | undefined;
    try {
      if (deps.gateToken === undefined) {
        throw new ConnectError(
          "evaluation-service has no service token for the promotion gate",
          Code.Unavailable,
        );
      }
      await deps.prompts.setPromptLabel(
        {
          id: req.promptId,
          label: req.label,
          version: req.version,
          expectedVersion: fromVersion ?? 0,
          reason:
            req.reason === "" ? `promoted by the gate (decision ${id})` : `${req.reason} (decision ${id})`,
          project,
        },
        {
          token: await deps.gateToken(),
          deadline: ctx.deadline,
          signal: ctx.signal,
          requestId: ctx.requestId,
        },
      );
    } catch (e) {
      error = ConnectError.from(e);
    }
    const status = error === undefined ? "promoted" : error.code === Code.Aborted ? "aborted" : "failed";
    const settled = await ctx.unitOfWork(async (tx, { audit }) => {
      const row = await settlePromotion(tx, id, {
        status,
        error: error === undefined ? "" : `${Code[error.code]}: ${error.rawMessage}`.slice(0, 2000),
        updatedAt: Math.max(now(), createdAt),
      });
      if (row === undefined) throw new Error(`promotion ${id} is no longer PENDING`);
      await auditDecision(audit, row, decision.row);
      return row;
    });
    if (error === undefined) return { promotion: promotionMessage(settled) };
    throw moveError(error, req.label, project, id);
  };

  const listPromotions: H["listPromotions"] = async (req: ListPromotionsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const pageSize = resolvePageSize(req.pageSize);
    const promptId = req.promptId === "" ? undefined : req.promptId;
    const digest = filterDigest("ListPromotions", { project, promptId: promptId ?? null });
    const key = decodePageToken(req.pageToken, digest, ["number", "string"]);
    const rows = await ctx.unitOfWork((tx) =>
      listPromotionsQuery(tx, {
        projectId: project,
        promptId,
        after: key === undefined ? undefined : { createdAt: key[0] as number, id: key[1] as string },
        limit: pageSize + 1,
      }),
    );
    const { page, nextPageToken } = cappedKeysetPage(rows, {
      pageSize,
      digest,
      keyOf: (r) => [r.createdAt, r.id],
      toItem: (r) => create(PromotionSchema, promotionMessage(r)),
      sizeOf: promotionSize,
    });
    return { promotions: page, nextPageToken };
  };

  return { setPromotionPolicy, getPromotionPolicy, promotePromptVersion, listPromotions };
}

/**
 * The policy's rules over the experiments, in the caller's snapshot: the candidate's own rules, then (with
 * `require_not_worse`) the baseline and CompareEvaluations of the two.
 */
async function evaluateRules(
  tx: EvaluationTx,
  project: string,
  policy: PromotionPolicyRow,
  req: { promptId: string; version: number; label: string },
  fromVersion: number | undefined,
): Promise<{ candidateId: string | null; baselineId: string | null; results: RuleResult[] }> {
  const rules = {
    datasetId: policy.datasetId,
    minPassRate: policy.minPassRate,
    minMeanScore: policy.minMeanScore,
    requireNotWorse: policy.requireNotWorse === 1,
    alpha: policy.alpha,
  };
  const candidate = await latestCompletedExperimentQuery(tx, {
    projectId: project,
    promptId: req.promptId,
    version: req.version,
    datasetId: policy.datasetId,
  });
  const results: RuleResult[] = candidateRules(rules, req.version, candidate);
  if (candidate === undefined || !rules.requireNotWorse) {
    return { candidateId: candidate?.id ?? null, baselineId: null, results };
  }
  const baseline =
    fromVersion === undefined || fromVersion === req.version
      ? undefined
      : await latestCompletedExperimentQuery(tx, {
          projectId: project,
          promptId: req.promptId,
          version: fromVersion,
          datasetId: policy.datasetId,
          datasetVersion: candidate.datasetVersion ?? 0,
        });
  results.push(baselineRule(req.label, fromVersion, req.version, candidate, baseline));
  if (baseline !== undefined) {
    const compared = await compareForGate(tx, project, baseline, candidate, rules.alpha);
    results.push(...notWorseRules(compared, rules.alpha));
  }
  return { candidateId: candidate.id, baselineId: baseline?.id ?? null, results };
}

function auditDecision(
  audit: Parameters<Parameters<Ctx["unitOfWork"]>[0]>[1]["audit"],
  row: PromotionRow,
  before?: PromotionRow,
): Promise<void> {
  const snapshot = (r: PromotionRow) => ({
    status: r.status,
    promptId: r.promptId,
    label: r.label,
    fromVersion: r.fromVersion,
    toVersion: r.toVersion,
    candidateEvaluationId: r.candidateEvaluationId,
    baselineEvaluationId: r.baselineEvaluationId,
    rules: JSON.parse(r.rules),
    error: r.error,
  });
  return audit({
    action: `promotion.${row.status}`,
    resourceType: "promotion",
    resourceId: row.id,
    ...(before === undefined ? {} : { before: snapshot(before) }),
    after: snapshot(row),
  });
}

/** What the caller gets when prompt-service did not move the label. */
function moveError(e: ConnectError, label: string, project: string, promotion: string): Error {
  if (e.code === Code.Aborted) {
    return new AbortedError(
      `label ${label} moved while the promotion was decided (decision ${promotion}, ABORTED): decide again`,
      { reason: "LABEL_MOVED", metadata: { label, project, promotion } },
    );
  }
  if (e.code === Code.PermissionDenied) {
    return new FailedPreconditionError(
      `prompt-service refused the gate's move of label ${label} (decision ${promotion}, FAILED): the label must be ` +
        `gated in project ${project} (PromptService.UpdateProjectSettings gated_labels): ${e.rawMessage}`,
      { reason: "LABEL_NOT_GATED", metadata: { label, project, promotion } },
    );
  }
  if (e.code === Code.Unavailable || e.code === Code.DeadlineExceeded || e.code === Code.Unknown) {
    const unavailable: UnavailableError = promptServiceUnavailable(e);
    return unavailable;
  }
  return e;
}
