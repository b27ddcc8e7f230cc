import {
  type EvaluationService,
  type ExportTestResultsRequest,
  TestResultSchema,
} from "@autoforge/contracts/evaluation/v1";
import { cappedKeysetPage, encodedItemSize, listView, type ServiceHandlers } from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { testResultMessage } from "../convert.js";
import { type ExportedResultRow, exportTestResultsBatch } from "../db/repository.js";
import { limits } from "../domain/limits.js";
import type { ScoreDeclaration } from "../domain/scores.js";
import { type Ctx, type EvaluationTx, requireEvaluation } from "./common.js";
import { declarationsOf } from "./scores.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;

const testResultSize = encodedItemSize(TestResultSchema);

/**
 * ExportTestResults: the evaluation's results in recording order, one message per batch. Each batch is read in a
 * read unit of work of its own (`batch_size + 1` rows of an index range, keyset on the id: the extra row says
 * whether there is more), so the export never holds a transaction open, and a long one sees results recorded
 * while it runs (it ends when a batch finds none after its last id). The first batch's unit checks the
 * evaluation (NOT_FOUND). A message is capped at 3 MiB encoded as ListTestResults' pages are
 * (`cappedKeysetPage`): a batch cut short by bytes continues right after its last result. Each result carries its
 * named scores, as in ListTestResults.
 *
 * The next batch is read only when the client has taken the previous one: the kit pulls this generator after
 * the transport accepted the message it yielded, so the process holds one batch per export, whatever the size
 * of the evaluation and the speed of the client. A client that cancels ends the generator at its `yield` (the
 * kit calls `return()`), between two units of work.
 */
export function createExportHandler(): H["exportTestResults"] {
  return async function* exportTestResults(req: ExportTestResultsRequest, ctx: Ctx) {
    const project = ctx.project.id;
    const view = listView(req.view);
    const batchSize = req.batchSize === 0 ? limits.exportBatchDefault : req.batchSize;
    const filter = {
      evaluationId: req.evaluationId,
      passed: req.passed,
      minScore: req.minScore,
      datasetItemId: req.datasetItemId === "" ? undefined : req.datasetItemId,
    };
    let afterId = req.afterId === "" ? undefined : req.afterId;
    /** The evaluation's declared scores: read with the first batch (they never change after creation). */
    let declarations: readonly ScoreDeclaration[] | undefined;
    for (;;) {
      const rows = await ctx.unitOfWork(async (tx) => {
        if (declarations === undefined) {
          await requireEvaluation(tx, project, req.evaluationId);
          declarations = await declarationsOf(tx, req.evaluationId);
        }
        const names = declarations.map((d) => d.name);
        return exportTestResultsBatch(tx, { ...filter, afterId, limit: batchSize + 1 }, names);
      });
      if (rows.length === 0) return;
      const scores = declarations ?? [];
      const valuesOf = (r: ExportedResultRow) => {
        if (scores.length === 0) return undefined;
        const values = new Map<string, number>();
        scores.forEach((d, i) => {
          const v = r[`score${i}`];
          if (v !== null && v !== undefined) values.set(d.name, v);
        });
        return values;
      };
      const { page } = cappedKeysetPage(rows, {
        pageSize: batchSize,
        digest: "",
        keyOf: (r) => [r.id],
        toItem: (r) =>
          create(TestResultSchema, testResultMessage(r, view, { declarations: scores, values: valuesOf(r) })),
        sizeOf: testResultSize,
      });
      yield { testResults: page };
      const last = rows[page.length - 1];
      if (rows.length === page.length || last === undefined) return;
      afterId = last.id;
    }
  };
}
