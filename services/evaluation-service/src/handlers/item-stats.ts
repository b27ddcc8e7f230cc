import {
  type EvaluationService,
  type ItemScoreStatsSchema,
  ItemStatsSchema,
  type ListItemStatsRequest,
} from "@autoforge/contracts/evaluation/v1";
import {
  cappedKeysetPage,
  decodePageToken,
  encodedItemSize,
  filterDigest,
  resolvePageSize,
  type ServiceHandlers,
} from "@autoforge/server";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { itemPageQuery, itemScoresQuery } from "../db/score-repository.js";
import type { ScoreDeclaration } from "../domain/scores.js";
import type { Ctx, EvaluationTx, HandlerDeps } from "./common.js";
import { requireEvaluation } from "./common.js";
import { declarationsOf } from "./scores.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;
type ScoreStats = MessageInitShape<typeof ItemScoreStatsSchema>;

const itemStatsSize = encodedItemSize(ItemStatsSchema);

/** Mean and sample variance (n - 1; none for one trial) from a count, a sum and a sum of squares. */
function acrossTrials(name: string, n: number, sum: number, squares: number, flaky: boolean): ScoreStats {
  const mean = sum / n;
  // clamped: sum(v²) - n·mean² may come out a hair below 0 for identical values
  const variance = n < 2 ? undefined : Math.max(0, (squares - n * mean * mean) / (n - 1));
  return { name, mean, ...(variance === undefined ? {} : { variance }), flaky };
}

/**
 * ListItemStats: a page of an experiment's items in item id order (keyset), each with the default scores across
 * its trials (itemPageQuery, grouped along test_results_evaluation_item_trial_idx) and its declared scores
 * (itemScoresQuery, test_result_scores_item_idx), in one read snapshot. `flaky_only` keeps the items whose
 * `passed` or a boolean score differs between trials (a HAVING on the same grouping).
 */
export function createItemStatsHandlers(_deps: HandlerDeps) {
  const listItemStats: H["listItemStats"] = async (req: ListItemStatsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const pageSize = resolvePageSize(req.pageSize);
    const digest = filterDigest("ListItemStats", {
      project,
      evaluationId: req.evaluationId,
      flakyOnly: req.flakyOnly,
    });
    const key = decodePageToken(req.pageToken, digest, ["string"]);
    const { items, declarations, scores } = await ctx.unitOfWork(async (tx) => {
      const evaluation = await requireEvaluation(tx, project, req.evaluationId);
      const declarations = await declarationsOf(tx, evaluation.id);
      if (evaluation.datasetId === null) return { items: [], declarations, scores: [] };
      const booleanScores = declarations.filter((d) => d.kind === "boolean").map((d) => d.name);
      const items = await itemPageQuery(tx, {
        evaluationId: evaluation.id,
        afterItemId: key?.[0] as string | undefined,
        flakyOnly: req.flakyOnly ? { booleanScores } : undefined,
        limit: pageSize + 1,
      });
      const scores =
        declarations.length === 0 || items.length === 0
          ? []
          : await itemScoresQuery(
              tx,
              evaluation.id,
              declarations.map((d) => d.name),
              items.map((i) => i.itemId),
            );
      return { items, declarations, scores };
    });
    const byItem = new Map<string, Map<string, (typeof scores)[number]>>();
    for (const s of scores) {
      const m = byItem.get(s.itemId) ?? new Map();
      m.set(s.name, s);
      byItem.set(s.itemId, m);
    }
    const declared = (itemId: string, d: ScoreDeclaration): ScoreStats[] => {
      const s = byItem.get(itemId)?.get(d.name);
      return s === undefined
        ? []
        : [acrossTrials(d.name, s.count, s.sum, s.squares, d.kind === "boolean" && s.flaky === 1)];
    };
    const { page, nextPageToken } = cappedKeysetPage(items, {
      pageSize,
      digest,
      keyOf: (i) => [i.itemId],
      toItem: (i) => {
        const ofDeclared = declarations.flatMap((d) => declared(i.itemId, d));
        const flaky = i.passedFlaky === 1 || ofDeclared.some((s) => s.flaky === true);
        return create(ItemStatsSchema, {
          datasetItemId: i.itemId,
          trialCount: i.trials,
          flaky,
          scores: [
            // passed is 0/1: its sum of squares is its sum
            acrossTrials("passed", i.trials, i.passedSum, i.passedSum, i.passedFlaky === 1),
            acrossTrials("score", i.trials, i.scoreSum, i.scoreSquares, false),
            ...ofDeclared,
          ],
        });
      },
      sizeOf: itemStatsSize,
    });
    return { items: page, nextPageToken };
  };
  return { listItemStats };
}
