import { createHash } from "node:crypto";
import type { DatasetInputKind } from "../db/schema.js";

/** What an item holds, in its stored form (JSON texts with sorted keys): the part its digest covers. */
export interface ItemContent {
  readonly inputKind: DatasetInputKind;
  readonly input: string;
  readonly expectedOutput: string;
  readonly metadata: string;
  readonly tags: string;
}

/**
 * The SHA-256 (hex) of an item's content: equal contents have equal digests, whatever version they come from,
 * so "changed" (same item id, other digest) and "unchanged" are decided by comparing digests, in SQL too.
 * The fields are hashed as one JSON array, so no two contents share a preimage.
 */
export function itemDigest(c: ItemContent): string {
  return createHash("sha256")
    .update(JSON.stringify([c.inputKind, c.input, c.expectedOutput, c.metadata, c.tags]))
    .digest("hex");
}
