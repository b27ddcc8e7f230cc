import { hasProjectRole, type ProjectScope } from "@autoforge/server";
import { AbortedError, InvalidArgumentError, PermissionDeniedError } from "./errors.js";
import { labelPattern } from "./limits.js";

/** Always the newest version; computed, never stored, never settable. */
export const latestLabel = "latest";
/** Protected unless a project says otherwise: moving (or removing) it publishes. */
export const defaultProtectedLabels: readonly string[] = ["production"];

export function validateLabelName(label: string, field = "label"): void {
  if (!labelPattern.test(label)) {
    throw new InvalidArgumentError(field, "must match [a-z0-9_-]{1,36}");
  }
}

/** Where the promotion gate lives: what a refused move of a gated label points to. */
export const promotionGateMethod = "PromotionService.PromotePromptVersion (evaluation-service)";

/**
 * Whether a call is by the promotion gate: a service principal admitted to the project (its own, or an
 * all-projects token naming it) whose subject is one of PROMOTION_GATE_SUBJECTS.
 */
export function isPromotionGate(
  project: ProjectScope,
  subject: string,
  gateSubjects: readonly string[],
): boolean {
  return project.role === "service" && gateSubjects.includes(subject);
}

/** A project's gated labels, and whether the caller is the promotion gate, for one label change. */
export interface LabelGate {
  /** Labels only the promotion gate may move (the project's settings; none by default). */
  readonly gatedLabels: readonly string[];
  /** The caller is the promotion gate (`isPromotionGate`). */
  readonly byGate: boolean;
}

const noGate: LabelGate = { gatedLabels: [], byGate: false };

/**
 * Rules for SetPromptLabel (`change` "set") / RemovePromptLabel ("remove"): format, `latest` reserved; a gated
 * label only the promotion gate may set, and nobody may remove; a protected label (the project's list,
 * `production` by default) needs the publisher role there. Service principals reach SetPromptLabel only to be
 * checked here: the gate may set gated labels, and nothing else; every other service principal nothing.
 * A label both protected and gated is gated.
 */
export function assertLabelChangeAllowed(
  label: string,
  project: ProjectScope,
  protectedLabels: readonly string[],
  gate: LabelGate = noGate,
  change: "set" | "remove" = "set",
): void {
  validateLabelName(label);
  if (label === latestLabel) {
    throw new InvalidArgumentError(
      "label",
      "`latest` always points to the newest version and cannot be changed",
      { reason: "LABEL_RESERVED" },
    );
  }
  if (gate.gatedLabels.includes(label)) {
    if (change === "set" && gate.byGate) return;
    const how =
      change === "set"
        ? `promote a version with ${promotionGateMethod}`
        : "it cannot be removed (ungate it first: UpdateProjectSettings, gated_labels)";
    throw new PermissionDeniedError(`label ${label} of project ${project.id} is gated: ${how}`, {
      reason: "LABEL_GATED",
      metadata: { label, project: project.id },
    });
  }
  if (project.role === "service") {
    const method = change === "set" ? "SetPromptLabel" : "RemovePromptLabel";
    throw new PermissionDeniedError(
      gate.byGate
        ? `${method} is not open to service principals: the promotion gate moves gated labels only`
        : `${method} is not open to service principals`,
    );
  }
  if (protectedLabels.includes(label) && !hasProjectRole(project.role, "publisher")) {
    throw new PermissionDeniedError(
      `moving the protected label \`${label}\` needs the publisher role in project ${project.id}`,
      { reason: "LABEL_PROTECTED", metadata: { label, project: project.id, requiredRole: "publisher" } },
    );
  }
}

/**
 * Compare-and-swap of a label move: `expected` (when given) must be where the label points now, 0 = absent.
 * A mismatch is ABORTED and says where it points, so the caller can decide again.
 */
export function assertLabelAt(
  label: string,
  current: number | undefined,
  expected: number | undefined,
): void {
  if (expected === undefined || expected === (current ?? 0)) return;
  const now = current === undefined ? "is not set" : `points to version ${current}`;
  const wanted = expected === 0 ? "absent" : `at version ${expected}`;
  const description = `label ${label} ${now}, expected ${wanted}: read it again and retry`;
  throw new AbortedError(description, {
    reason: "LABEL_MOVED",
    metadata: { label, currentVersion: String(current ?? 0), expectedVersion: String(expected) },
    preconditionViolations: [{ type: "LABEL", subject: label, description }],
  });
}

/** Labels as the API shows them: the stored ones plus `latest`. */
export function labelsWithLatest(
  stored: Iterable<{ label: string; version: number }>,
  currentVersion: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { label, version } of stored) out[label] = version;
  out[latestLabel] = currentVersion;
  return out;
}
