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
import { uuidv7 } from "uuidv7";
import { evaluationMessage, statusFromDb, structToJson, testResultMessage } from "../convert.js";
import { insertTestResults, listTestResultsQuery, requestIds, summaryQuery } from "../db/repository.js";
import type { EvaluationRow, testResults } from "../db/schema.js";
import { evaluationState } from "../domain/errors.js";
import { nearestRank } from "../domain/evaluation-state.js";
import {
  auditSnapshot,
  type Ctx,
  type EvaluationTx,
  type HandlerDeps,
  idTime,
  requestIdScope,
  requireEvaluation,
} from "./common.js";
import { checkResultTrials } from "./experiments.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;

const testResultSize = encodedItemSize(TestResultSchema);

export function createResultHandlers(_deps: HandlerDeps) {
  /**
   * One atomic batch: every row or none. The validator has already refused a batch with an invalid row (naming
   * `results[i].field`); CHECK constraints and the `test_results_only_while_running` trigger back it up. On an
   * experiment, each result's (item, trial) is checked against the version and the stored results first
   * (handlers/experiments.ts), after the request_id replay: a retried batch gets its first answer, not
   * TRIAL_ALREADY_RECORDED.
   * evaluations.test_count / passed_count are maintained by a trigger in the same transaction.
   */
  const recordTestResults: H["recordTestResults"] = async (req: RecordTestResultsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const digest =
      req.requestId === ""
        ? ""
        : requestDigest({
            evaluationId: req.evaluationId,
            results: req.results.map((r) => ({
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
              ...(r.datasetItemId === "" && r.trial === 0
                ? {}
                : { datasetItemId: r.datasetItemId, trial: r.trial }),
            })),
          });
    const requestId = requestIdScope(ctx, "RecordTestResults", {
      requestId: req.requestId,
      digest,
      responseSchema: RecordTestResultsResponseSchema,
    });
    // The rows' values, converted before the unit of work (which holds the writer and runs again on a retry);
    // ids are made inside, so each attempt's rows get the instant they are recorded.
    const values = req.results.map((r) => ({
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
    const passedInBatch = values.filter((v) => v.passed === 1).length;
    return ctx.unitOfWork(async (tx, { audit }) => {
      const earlier = await requestIds.replay(tx, requestId);
      if (earlier !== undefined) return earlier;
      const before = await requireEvaluation(tx, project, req.evaluationId);
      if (before.status !== "running") {
        throw evaluationState(
          before.id,
          before.status,
          `evaluation ${before.id} is ${before.status.toUpperCase()}: test results are recorded only while RUNNING`,
          { reason: "EVALUATION_NOT_RUNNING" },
        );
      }
      await checkResultTrials(tx, before, req.results);
      const rows: (typeof testResults.$inferInsert)[] = values.map((v) => {
        const id = uuidv7(); // monotonic within the process: id order is recording order
        return { id, evaluationId: before.id, ...v, createdAt: idTime(id) };
      });
      await insertTestResults(tx, rows);
      // The row as a re-read would return it: the test_results_count trigger added one to test_count per row
      // and `passed` to passed_count, and changed nothing else.
      const after: EvaluationRow = {
        ...before,
        testCount: before.testCount + rows.length,
        passedCount: before.passedCount + passedInBatch,
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
