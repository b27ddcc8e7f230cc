import type { ComparePromptVersionsRequest, EvaluationService } from "@autoforge/contracts/evaluation/v1";
import type { ServiceHandlers } from "@autoforge/server";
import { compareVersionsQuery } from "../db/repository.js";
import type { Ctx, EvaluationTx, HandlerDeps } from "./common.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;

export function createCompareHandlers(_deps: HandlerDeps) {
  /**
   * Per prompt version over the project's evaluations of the prompt; an unknown prompt, or one of another
   * project, has none.
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
        evaluationCount: r.evaluationCount,
        completedCount: r.completedCount,
        ...(r.meanOverallScore == null ? {} : { meanOverallScore: Number(r.meanOverallScore) }),
        passRate: r.completedTests === 0 ? 0 : r.completedPassed / r.completedTests,
      })),
    };
  };

  return { comparePromptVersions };
}
