import {
  type EvaluationService,
  type GetEvaluationSummaryRequest,
  type ListTestResultsRequest,
  type RecordTestResultsRequest,
  RecordTestResultsResponseSchema,
  TestResultSchema,
} from "@autoforge/contracts/evaluation/v1";
import {
  cappedKeysetPage,
  decodePageToken,
  encodedItemSize,
  filterDigest,
  listView,
  resolvePageSize,
  type ServiceHandlers,
} from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { statusFromDb, testResultMessage } from "../convert.js";
import { listTestResultsQuery, requestIds, summaryQuery } from "../db/repository.js";
import { nearestRank } from "../domain/evaluation-state.js";
import {
  type Ctx,
  type EvaluationTx,
  type HandlerDeps,
  requestIdScope,
  requireEvaluation,
} from "./common.js";
import { batchDigest, prepareBatch, recordBatch } from "./record-batch.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;

const testResultSize = encodedItemSize(TestResultSchema);

export function createResultHandlers(_deps: HandlerDeps) {
  /**
   * One atomic batch (recordBatch: every row or none, only while RUNNING), after the request_id replay: a retried
   * batch gets its first answer.
   */
  const recordTestResults: H["recordTestResults"] = async (req: RecordTestResultsRequest, ctx: Ctx) => {
    const requestId = requestIdScope(ctx, "RecordTestResults", {
      requestId: req.requestId,
      digest: req.requestId === "" ? "" : batchDigest(req.evaluationId, req.results),
      responseSchema: RecordTestResultsResponseSchema,
    });
    const batch = prepareBatch(req.results);
    const target = { projectId: ctx.project.id, evaluationId: req.evaluationId };
    return ctx.unitOfWork(async (tx, tools) => {
      const earlier = await requestIds.replay(tx, requestId);
      if (earlier !== undefined) return earlier;
      const { response, at } = await recordBatch(tx, tools, target, batch);
      await requestIds.remember(tx, requestId, response, at);
      return response;
    });
  };

  const listTestResults: H["listTestResults"] = async (req: ListTestResultsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const pageSize = resolvePageSize(req.pageSize);
    const digest = filterDigest("ListTestResults", {
      project,
      evaluationId: req.evaluationId,
      passed: req.passed ?? null,
      minScore: req.minScore ?? null,
    });
    const key = decodePageToken(req.pageToken, digest, ["string"]);
    const view = listView(req.view);
    const rows = await ctx.unitOfWork(async (tx) => {
      await requireEvaluation(tx, project, req.evaluationId);
      return listTestResultsQuery(tx, {
        evaluationId: req.evaluationId,
        passed: req.passed,
        minScore: req.minScore,
        afterId: key?.[0] as string | undefined,
        limit: pageSize + 1,
      });
    });
    const { page, nextPageToken } = cappedKeysetPage(rows, {
      pageSize,
      digest,
      keyOf: (r) => [r.id],
      toItem: (r) => create(TestResultSchema, testResultMessage(r, view)),
      sizeOf: testResultSize,
    });
    return { testResults: page, nextPageToken };
  };

  /**
   * Two statements in one read snapshot: the evaluation (NOT_FOUND), then every aggregate in one statement
   * (`summaryQuery`), each from an index alone: counts and means over (evaluation_id, passed, score); latency
   * percentiles by walking (evaluation_id, latency_ms) to the nearest rank (see domain/evaluation-state.ts: rank
   * ceil(p/100 * n), no interpolation), and the maximum from the same index's end. The ranks come from the
   * evaluation's test_count, which the test_results_count trigger keeps equal to the number of results.
   */
  const getEvaluationSummary: H["getEvaluationSummary"] = async (
    req: GetEvaluationSummaryRequest,
    ctx: Ctx,
  ) => {
    const project = ctx.project.id;
    return ctx.unitOfWork(async (tx) => {
      const row = await requireEvaluation(tx, project, req.id);
      const ranks = { p50: nearestRank(50, row.testCount), p95: nearestRank(95, row.testCount) };
      const [agg] = await summaryQuery(tx, row.id, ranks);
      const n = agg?.testCount ?? 0;
      const passedCount = agg?.passedCount ?? 0;
      return {
        summary: {
          evaluationId: row.id,
          status: statusFromDb[row.status],
          testCount: n,
          passedCount,
          passRate: n === 0 ? 0 : passedCount / n,
          ...(agg?.meanScore == null ? {} : { meanScore: Number(agg.meanScore) }),
          ...(agg?.meanPassedScore == null ? {} : { meanPassedScore: Number(agg.meanPassedScore) }),
          latencyP50Ms: BigInt(agg?.latencyP50Ms ?? 0),
          latencyP95Ms: BigInt(agg?.latencyP95Ms ?? 0),
          latencyMaxMs: BigInt(agg?.maxLatencyMs ?? 0),
          ...(row.overallScore === null ? {} : { overallScore: row.overallScore }),
        },
      };
    });
  };

  return { recordTestResults, listTestResults, getEvaluationSummary };
}
