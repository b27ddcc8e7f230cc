import { createHash } from "node:crypto";

/**
 * The etag is opaque to clients: a digest of the prompt id and its row revision (a counter bumped by every
 * committed change). Comparing etags is comparing revisions without exposing them.
 */
export function computeEtag(promptId: string, revision: number): string {
  return createHash("sha256").update(`${promptId}\u0000${revision}`).digest("base64url").slice(0, 22);
}

export function etagMatches(promptId: string, revision: number, etag: string): boolean {
  return computeEtag(promptId, revision) === etag;
}
