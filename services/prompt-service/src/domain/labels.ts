import { InvalidArgumentError, PermissionDeniedError } from "./errors.js";
import { labelPattern } from "./limits.js";

/** Always the newest version; computed, never stored, never settable. */
export const latestLabel = "latest";
/** Moving (or removing) it publishes: only `publisher` or `admin`. */
export const productionLabel = "production";
const publishingRoles = new Set(["publisher", "admin"]);

export function validateLabelName(label: string, field = "label"): void {
  if (!labelPattern.test(label)) {
    throw new InvalidArgumentError(field, "must match [a-z0-9_-]{1,36}");
  }
}

/** Rules for SetPromptLabel / RemovePromptLabel: format, `latest` reserved, `production` needs a publisher. */
export function assertLabelChangeAllowed(label: string, roles: readonly string[]): void {
  validateLabelName(label);
  if (label === latestLabel) {
    throw new InvalidArgumentError(
      "label",
      "`latest` always points to the newest version and cannot be changed",
    );
  }
  if (label === productionLabel && !roles.some((r) => publishingRoles.has(r))) {
    throw new PermissionDeniedError("moving the `production` label needs the publisher or admin role");
  }
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
