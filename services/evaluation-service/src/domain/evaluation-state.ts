import type { EvaluationStatusValue } from "../db/schema.js";

/**
 * The evaluation state machine: PENDING -> RUNNING -> COMPLETED | FAILED, and PENDING -> FAILED.
 * COMPLETED and FAILED are final. The same table is enforced by the `evaluations_status_transition` trigger;
 * handlers use it to build conditional UPDATEs (`... WHERE status IN (from)`), so two concurrent transitions
 * cannot both win.
 */
export type Transition = "start" | "complete" | "fail";

export const transitions: Readonly<
  Record<Transition, { readonly from: readonly EvaluationStatusValue[]; readonly to: EvaluationStatusValue }>
> = {
  start: { from: ["pending"], to: "running" },
  complete: { from: ["running"], to: "completed" },
  fail: { from: ["pending", "running"], to: "failed" },
};

/** The FAILED_PRECONDITION message for an illegal transition. */
export function illegalTransitionMessage(
  id: string,
  transition: Transition,
  current: EvaluationStatusValue,
): string {
  const allowed = transitions[transition].from.map((s) => s.toUpperCase()).join(" or ");
  return `evaluation ${id} is ${current.toUpperCase()}: ${transition} needs ${allowed}`;
}

/**
 * Nearest-rank percentile (the definition GetEvaluationSummary documents): for n values sorted ascending, the
 * p-th percentile is the value at 1-based rank ceil(p/100 * n). It is always one of the values (no
 * interpolation); p50 of [1, 2, 3, 4] is 2, p95 of 20 values is the 19th. Computed in integers, as SQL does.
 */
export function nearestRank(percent: number, n: number): number {
  if (n <= 0) return 0;
  return Math.max(1, Math.floor((percent * n + 99) / 100));
}
