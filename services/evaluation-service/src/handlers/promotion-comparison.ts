import type { Queryable } from "../db/repository.js";
import type { EvaluationRow } from "../db/schema.js";
import type { ComparedScore } from "../domain/promotion-rules.js";

/** CompareEvaluations as the gate reads it (wired to handlers/compare-evaluations.ts). */
export async function compareForGate(
  _tx: Queryable,
  _project: string,
  _baseline: EvaluationRow,
  _candidate: EvaluationRow,
  _alpha: number,
): Promise<ComparedScore[]> {
  throw new Error("CompareEvaluations is not wired to the gate yet");
}
