import {
  type CompleteEvaluationRequest,
  type CreateEvaluationRequest,
  CreateEvaluationResponseSchema,
  EvaluationSchema,
  type EvaluationService,
  type FailEvaluationRequest,
  type GetEvaluationRequest,
  type ListEvaluationsRequest,
  type StartEvaluationRequest,
} from "@autoforge/contracts/evaluation/v1";
import type { Prompt } from "@autoforge/contracts/prompt/v1";
import {
  cappedKeysetPage,
  decodePageToken,
  encodedItemSize,
  filterDigest,
  requestDigest,
  resolvePageSize,
  type ServiceHandlers,
} from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { evaluationMessage, scoreDeclarationOf, statusToDb, structToJson } from "../convert.js";
import {
  completeEvaluation,
  findTombstone,
  insertEvaluation,
  listEvaluationsQuery,
  requestIds,
  transitionEvaluation,
} from "../db/repository.js";
import type { EvaluationRow } from "../db/schema.js";
import { insertScoreDeclarations } from "../db/score-repository.js";
import { evaluationState, promptDeleted, promptNotFound } from "../domain/errors.js";
import { illegalTransitionMessage, type Transition, transitions } from "../domain/evaluation-state.js";
import { declarationRow } from "../domain/scores.js";
import { promptServiceUnavailable } from "../prompt-client.js";
import {
  auditSnapshot,
  type Ctx,
  type EvaluationTx,
  type HandlerDeps,
  newId,
  requestIdScope,
  requireEvaluation,
} from "./common.js";
import { requireComplete, resolveExperiment } from "./experiments.js";
import { declarationsByEvaluation, declarationsOf } from "./scores.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;

const evaluationSize = encodedItemSize(EvaluationSchema);

/** Codes of PromptService that mean "the caller's request was wrong", passed on as they are. */
const callerCodes = new Set([Code.InvalidArgument, Code.PermissionDenied, Code.Unauthenticated]);

/**
 * Checks the prompt through PromptService.GetPrompt with the caller's credentials in the call's project,
 * BEFORE any unit of work (a network call inside a write transaction would hold the single writer). Unknown
 * prompt or version, or a prompt of another project: NOT_FOUND; soft-deleted (GetPrompt returns it with
 * delete_time): FAILED_PRECONDITION; prompt-service unreachable within the budget: UNAVAILABLE naming it.
 */
export async function checkPrompt(
  deps: HandlerDeps,
  ctx: Ctx,
  promptId: string,
  version: number,
): Promise<Prompt> {
  let prompt: Prompt | undefined;
  try {
    ({ prompt } = await deps.prompts.getPrompt(
      { id: promptId, version, project: ctx.project.id },
      { token: ctx.principal.token, deadline: ctx.deadline, signal: ctx.signal, requestId: ctx.requestId },
    ));
  } catch (e) {
    if (e instanceof ConnectError && e.code === Code.NotFound) {
      throw promptNotFound(promptId, version);
    }
    if (e instanceof ConnectError && callerCodes.has(e.code)) throw e;
    if (ctx.signal.aborted) throw e;
    throw promptServiceUnavailable(e);
  }
  // prompt-service answers only for the project asked; the evaluation is created in the prompt's project, so
  // an answer about any other project (a version of prompt-service that ignores the field) is NOT_FOUND too.
  if (prompt === undefined || prompt.project !== ctx.project.id) {
    throw promptNotFound(promptId);
  }
  if (prompt.deleteTime !== undefined) {
    throw promptDeleted(promptId);
  }
  return prompt;
}

export function createEvaluationHandlers(deps: HandlerDeps) {
  const now = deps.now ?? Date.now;

  const createEvaluation: H["createEvaluation"] = async (req: CreateEvaluationRequest, ctx: Ctx) => {
    const owner = ctx.principal.subject;
    const project = ctx.project.id;
    const digest = requestDigest({
      promptId: req.promptId,
      promptVersion: req.promptVersion,
      provider: req.provider,
      model: req.model,
      metadata: req.metadata ?? null,
      // only when set: an ad-hoc create digests as it did before experiments
      ...(req.datasetId === ""
        ? {}
        : { datasetId: req.datasetId, datasetVersion: req.datasetVersion, trialsPerItem: req.trialsPerItem }),
      ...(req.scores.length === 0
        ? {}
        : {
            scores: req.scores.map((d) => ({
              name: d.name,
              kind: d.kind,
              min: d.min ?? null,
              max: d.max ?? null,
              categories: d.categories,
              direction: d.direction,
            })),
          }),
    });
    const requestId = requestIdScope(ctx, "CreateEvaluation", {
      requestId: req.requestId,
      digest,
      responseSchema: CreateEvaluationResponseSchema,
    });
    // A retry of a create that already succeeded answers from the stored response, without asking
    // prompt-service again (the prompt may have been deleted since). A read outside the call's unit of work.
    if (req.requestId !== "") {
      const earlier = await deps.db.read((tx) => requestIds.replay(tx, requestId), {
        deadline: ctx.deadline,
        signal: ctx.signal,
      });
      if (earlier !== undefined) return earlier;
    }

    const prompt = await checkPrompt(deps, ctx, req.promptId, req.promptVersion);
    const declarations = req.scores.map(scoreDeclarationOf);

    return ctx.unitOfWork(async (tx, { audit }) => {
      const earlier = await requestIds.replay(tx, requestId);
      if (earlier !== undefined) return earlier;
      // The event feed may know more than the GetPrompt answer of a moment ago (a delete or purge since).
      const tombstone = await findTombstone(tx, req.promptId);
      if (tombstone?.state === "purged") throw promptNotFound(req.promptId);
      if (tombstone?.state === "deleted") {
        throw promptDeleted(req.promptId);
      }
      const experiment = await resolveExperiment(tx, project, req);
      const { id, createdAt } = newId();
      const row: EvaluationRow = {
        id,
        projectId: project,
        ownerId: owner,
        promptId: req.promptId,
        promptVersion: prompt.version,
        provider: req.provider,
        model: req.model,
        status: "pending",
        overallScore: null,
        error: "",
        metadata: structToJson(req.metadata),
        testCount: 0,
        passedCount: 0,
        createdAt,
        updatedAt: createdAt,
        startedAt: null,
        completedAt: null,
        ...experiment,
      };
      await insertEvaluation(tx, row);
      await insertScoreDeclarations(
        tx,
        declarations.map((d) => declarationRow(id, d)),
      );
      await audit({
        action: "evaluation.create",
        resourceType: "evaluation",
        resourceId: id,
        after: { ...auditSnapshot(row), ...(declarations.length === 0 ? {} : { scores: declarations }) },
      });
      const response = create(CreateEvaluationResponseSchema, {
        evaluation: evaluationMessage(row, declarations),
      });
      await requestIds.remember(tx, requestId, response, createdAt);
      return response;
    });
  };

  const getEvaluation: H["getEvaluation"] = async (req: GetEvaluationRequest, ctx: Ctx) => {
    return ctx.unitOfWork(async (tx) => {
      const row = await requireEvaluation(tx, ctx.project.id, req.id);
      return { evaluation: evaluationMessage(row, await declarationsOf(tx, row.id)) };
    });
  };

  const listEvaluations: H["listEvaluations"] = async (req: ListEvaluationsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const pageSize = resolvePageSize(req.pageSize);
    const status = statusToDb[req.status];
    const promptId = req.promptId === "" ? undefined : req.promptId;
    const digest = filterDigest("ListEvaluations", {
      project,
      promptId: promptId ?? null,
      status: status ?? null,
    });
    const key = decodePageToken(req.pageToken, digest, ["number", "string"]);
    const { rows, declarations } = await ctx.unitOfWork(async (tx) => {
      const rows = await listEvaluationsQuery(tx, {
        projectId: project,
        promptId,
        status,
        after: key === undefined ? undefined : { createdAt: key[0] as number, id: key[1] as string },
        limit: pageSize + 1,
      });
      return {
        rows,
        declarations: await declarationsByEvaluation(
          tx,
          rows.map((r) => r.id),
        ),
      };
    });
    const { page, nextPageToken } = cappedKeysetPage(rows, {
      pageSize,
      digest,
      keyOf: (r) => [r.createdAt, r.id],
      toItem: (r) => create(EvaluationSchema, evaluationMessage(r, declarations.get(r.id))),
      sizeOf: evaluationSize,
    });
    return { evaluations: page, nextPageToken };
  };

  /**
   * One transition: read the row (NOT_FOUND / FAILED_PRECONDITION with its current status), then the conditional
   * UPDATE. If another writer (another process) moved it in between, the UPDATE matches nothing and the
   * re-read status is reported: two concurrent transitions never both win.
   */
  async function transition(
    ctx: Ctx,
    id: string,
    kind: Transition,
    apply: (tx: EvaluationTx, row: EvaluationRow, at: number) => Promise<EvaluationRow | undefined>,
    precondition?: (tx: EvaluationTx, row: EvaluationRow) => Promise<void> | void,
  ) {
    const project = ctx.project.id;
    const row = await ctx.unitOfWork(async (tx, { audit }) => {
      const before = await requireEvaluation(tx, project, id);
      if (!transitions[kind].from.includes(before.status)) {
        throw evaluationState(id, before.status, illegalTransitionMessage(id, kind, before.status));
      }
      await precondition?.(tx, before);
      const at = Math.max(now(), before.updatedAt);
      const after = await apply(tx, before, at);
      if (after === undefined) {
        const current = await requireEvaluation(tx, project, id);
        throw evaluationState(id, current.status, illegalTransitionMessage(id, kind, current.status));
      }
      await audit({
        action: `evaluation.${kind}`,
        resourceType: "evaluation",
        resourceId: id,
        before: auditSnapshot(before),
        after: auditSnapshot(after),
      });
      return { after, declarations: await declarationsOf(tx, id) };
    });
    return { evaluation: evaluationMessage(row.after, row.declarations) };
  }

  const startEvaluation: H["startEvaluation"] = (req: StartEvaluationRequest, ctx: Ctx) =>
    transition(ctx, req.id, "start", (tx, row, at) =>
      transitionEvaluation(
        tx,
        { id: row.id, projectId: row.projectId, from: transitions.start.from },
        { status: "running", startedAt: at, updatedAt: at },
      ),
    );

  const completeEvaluationHandler: H["completeEvaluation"] = (req: CompleteEvaluationRequest, ctx: Ctx) =>
    transition(
      ctx,
      req.id,
      "complete",
      (tx, row, at) => completeEvaluation(tx, row.id, row.projectId, at),
      async (tx, row) => {
        if (row.testCount === 0) {
          throw evaluationState(
            row.id,
            row.status,
            `evaluation ${row.id} has no test results: record at least one before completing it (or fail it)`,
            { reason: "NO_TEST_RESULTS" },
          );
        }
        await requireComplete(tx, row, req.allowPartial);
      },
    );

  const failEvaluation: H["failEvaluation"] = (req: FailEvaluationRequest, ctx: Ctx) =>
    transition(ctx, req.id, "fail", (tx, row, at) =>
      transitionEvaluation(
        tx,
        { id: row.id, projectId: row.projectId, from: transitions.fail.from },
        { status: "failed", error: req.reason, completedAt: at, updatedAt: at },
      ),
    );

  return {
    createEvaluation,
    getEvaluation,
    listEvaluations,
    startEvaluation,
    completeEvaluation: completeEvaluationHandler,
    failEvaluation,
  };
}
