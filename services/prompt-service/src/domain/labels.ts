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

/**
 * Rules for SetPromptLabel / RemovePromptLabel: format, `latest` reserved, a protected label (the project's
 * list, `production` by default) needs the publisher role there.
 */
export function assertLabelChangeAllowed(
  label: string,
  project: ProjectScope,
  protectedLabels: readonly string[],
): void {
  validateLabelName(label);
  if (label === latestLabel) {
    throw new InvalidArgumentError(
      "label",
      "`latest` always points to the newest version and cannot be changed",
      { reason: "LABEL_RESERVED" },
    );
  }
  if (
    protectedLabels.includes(label) &&
    (project.role === "service" || !hasProjectRole(project.role, "publisher"))
  ) {
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
