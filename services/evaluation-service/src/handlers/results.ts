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
  requestDigest,
  resolvePageSize,
  type ServiceHandlers,
} from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { evaluationMessage, statusFromDb, testResultMessage } from "../convert.js";
import { listTestResultsQuery, requestIds, summaryQuery } from "../db/repository.js";
import { flakyPassedItemCountQuery } from "../db/score-repository.js";
import { nearestRank } from "../domain/evaluation-state.js";
import {
  type Ctx,
  type EvaluationTx,
  type HandlerDeps,
  requestIdScope,
  requireEvaluation,
} from "./common.js";
import { batchDigestInput, batchValues, recordBatch } from "./record-batch.js";
import { scoreSummaries } from "./score-summary.js";
import { declarationsOf, valuesOfResults } from "./scores.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;

const testResultSize = encodedItemSize(TestResultSchema);

export function createResultHandlers(_deps: HandlerDeps) {
  /**
   * One atomic batch: every row or none (handlers/record-batch.ts), after the request_id replay: a retried batch
   * gets its first answer, not TRIAL_ALREADY_RECORDED.
   */
  const recordTestResults: H["recordTestResults"] = async (req: RecordTestResultsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const digest =
      req.requestId === ""
        ? ""
        : requestDigest({ evaluationId: req.evaluationId, results: batchDigestInput(req.results) });
    const requestId = requestIdScope(ctx, "RecordTestResults", {
      requestId: req.requestId,
      digest,
      responseSchema: RecordTestResultsResponseSchema,
    });
    const batch = batchValues(req.results);
    return ctx.unitOfWork(async (tx, { audit }) => {
      const earlier = await requestIds.replay(tx, requestId);
      if (earlier !== undefined) return earlier;
      const before = await requireEvaluation(tx, project, req.evaluationId);
      const { rows, after, declarations } = await recordBatch(tx, audit, before, batch);
      const response = create(RecordTestResultsResponseSchema, {
        recordedCount: rows.length,
        evaluation: evaluationMessage(after, declarations),
      });
      await requestIds.remember(tx, requestId, response, rows[0]?.createdAt);
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
    const { rows, declarations, values } = await ctx.unitOfWork(async (tx) => {
      await requireEvaluation(tx, project, req.evaluationId);
      const rows = await listTestResultsQuery(tx, {
        evaluationId: req.evaluationId,
        passed: req.passed,
        minScore: req.minScore,
        afterId: key?.[0] as string | undefined,
        limit: pageSize + 1,
      });
      const declarations = await declarationsOf(tx, req.evaluationId);
      const ids = rows.map((r) => r.id);
      return { rows, declarations, values: await valuesOfResults(tx, declarations, ids) };
    });
    const { page, nextPageToken } = cappedKeysetPage(rows, {
      pageSize,
      digest,
      keyOf: (r) => [r.id],
      toItem: (r) =>
        create(TestResultSchema, testResultMessage(r, view, { declarations, values: values.get(r.id) })),
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
      const ranks = {
        p50: nearestRank(50, row.testCount),
        p95: nearestRank(95, row.testCount),
        p99: nearestRank(99, row.testCount),
      };
      const [agg] = await summaryQuery(tx, row.id, ranks);
      const n = agg?.testCount ?? 0;
      const passedCount = agg?.passedCount ?? 0;
      const isExperiment = row.datasetId !== null;
      const declarations = await declarationsOf(tx, row.id);
      const flaky = isExperiment ? ((await flakyPassedItemCountQuery(tx, row.id))[0]?.count ?? 0) : 0;
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
          latencyP99Ms: BigInt(agg?.latencyP99Ms ?? 0),
          latencyMaxMs: BigInt(agg?.maxLatencyMs ?? 0),
          ...(row.overallScore === null ? {} : { overallScore: row.overallScore }),
          scores: await scoreSummaries(tx, { id: row.id, isExperiment }, declarations),
          flakyItemCount: flaky,
        },
      };
    });
  };

  return { recordTestResults, listTestResults, getEvaluationSummary };
}
