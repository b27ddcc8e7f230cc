import { createHash } from "node:crypto";

/**
 * AIP-155 request ids. The key is (owner, method, request_id). A retry with the same payload gets the first
 * response; the same key with a different payload is refused (ALREADY_EXISTS): the key is taken, and
 * answering with the first response would tell the caller their different request succeeded.
 */
export function requestDigest(payload: unknown): string {
  return createHash("sha256").update(stableStringify(payload)).digest("hex");
}

/** JSON with object keys sorted, so equal payloads hash equally whatever their field order. */
export function stableStringify(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === "bigint") return v.toString();
    if (v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof Uint8Array)) {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)),
      );
    }
    return v;
  });
}
