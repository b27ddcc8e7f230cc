import type { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { InvalidArgumentError, type ServiceHandlers } from "@autoforge/server";
import type { EvaluationTx, HandlerDeps } from "./common.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;

// PLACEHOLDER until StreamTestResults and ExportTestResults land.
export function createResultStreamHandlers(_deps: HandlerDeps) {
  const streamTestResults: H["streamTestResults"] = async () => {
    throw new InvalidArgumentError([{ field: "", description: "not yet" }]);
  };
  const exportTestResults: H["exportTestResults"] = async function* () {
    throw new InvalidArgumentError([{ field: "", description: "not yet" }]);
  };
  return { streamTestResults, exportTestResults };
}
