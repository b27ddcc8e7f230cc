import type { ComparePromptVersionsRequest, EvaluationService } from "@autoforge/contracts/evaluation/v1";
import type { ServiceHandlers } from "@autoforge/server";
import { compareVersionsQuery } from "../db/repository.js";
import type { Ctx, EvaluationTx, HandlerDeps } from "./common.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;

export function createCompareHandlers(_deps: HandlerDeps) {
  /**
   * Per prompt version, provider, model and dataset version over the project's evaluations of the prompt; an
   * unknown prompt, or one of another project, has none. Ad-hoc evaluations have no dataset: "" and version 0,
   * the proto's unset values.
   */
  const comparePromptVersions: H["comparePromptVersions"] = async (
    req: ComparePromptVersionsRequest,
    ctx: Ctx,
  ) => {
    const rows = await ctx.unitOfWork((tx) => compareVersionsQuery(tx, ctx.project.id, req.promptId));
    return {
      promptId: req.promptId,
      versions: rows.map((r) => ({
        promptVersion: r.promptVersion,
        provider: r.provider,
        model: r.model,
        datasetId: r.datasetId ?? "",
        datasetVersion: r.datasetVersion ?? 0,
        evaluationCount: r.evaluationCount,
        completedCount: r.completedCount,
        ...(r.meanOverallScore == null ? {} : { meanOverallScore: Number(r.meanOverallScore) }),
        passRate: r.completedTests === 0 ? 0 : r.completedPassed / r.completedTests,
      })),
    };
  };

  return { comparePromptVersions };
}
