import type { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { InvalidArgumentError, type ServiceHandlers } from "@autoforge/server";
import type { EvaluationTx, HandlerDeps } from "./common.js";

type H = ServiceHandlers<typeof EvaluationService, EvaluationTx>;

// PLACEHOLDER until ListItemStats lands.
export function createItemStatsHandlers(_deps: HandlerDeps) {
  const listItemStats: H["listItemStats"] = async () => {
    throw new InvalidArgumentError([{ field: "", description: "not yet" }]);
  };
  return { listItemStats };
}
