import { createHmac } from "node:crypto";

/**
 * The HMAC keys of the audit chain: every key that ever signed a row still in the log, by id, and the id new
 * rows use. Keys live outside the database (the environment); each row stores only its key id, so a key can be
 * rotated by adding a new one and keeping the old ones for verification.
 */
export interface AuditKeyring {
  readonly currentKeyId: string;
  readonly keys: ReadonlyMap<string, Uint8Array>;
}

/** Key ids: short, printable, no separators of the `id:key,id:key` list. */
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
/** HMAC-SHA256 keys shorter than the hash output weaken it. */
export const AUDIT_KEY_MIN_BYTES = 32;

/** Builds a keyring; throws a RangeError naming the problem (unknown current id, short key, bad id). */
export function createAuditKeyring(keys: Iterable<[string, Uint8Array]>, currentKeyId: string): AuditKeyring {
  const map = new Map<string, Uint8Array>();
  for (const [id, key] of keys) {
    if (!KEY_ID.test(id)) throw new RangeError(`key id ${JSON.stringify(id)} must match ${KEY_ID.source}`);
    if (map.has(id)) throw new RangeError(`key id ${JSON.stringify(id)} appears twice`);
    if (key.byteLength < AUDIT_KEY_MIN_BYTES) {
      throw new RangeError(
        `key ${JSON.stringify(id)} has ${key.byteLength} bytes, at least ${AUDIT_KEY_MIN_BYTES} needed`,
      );
    }
    map.set(id, key);
  }
  if (!map.has(currentKeyId)) {
    throw new RangeError(`current key id ${JSON.stringify(currentKeyId)} is not among the keys`);
  }
  return Object.freeze({ currentKeyId, keys: map });
}

/**
 * Parses `id1:base64key,id2:base64key` (standard or URL-safe base64, padding optional) into keyring entries.
 * Throws a RangeError saying which entry is malformed (never echoing key material).
 */
export function parseAuditKeyList(list: string): [string, Uint8Array][] {
  const entries: [string, Uint8Array][] = [];
  const parts = list.split(",").map((p) => p.trim());
  parts.forEach((part, i) => {
    const colon = part.indexOf(":");
    if (colon <= 0) throw new RangeError(`entry ${i + 1} must be id:base64key`);
    const id = part.slice(0, colon);
    const encoded = part.slice(colon + 1);
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded)) {
      throw new RangeError(`key ${JSON.stringify(id)} is not base64`);
    }
    entries.push([id, Buffer.from(encoded.replaceAll("-", "+").replaceAll("_", "/"), "base64")]);
  });
  return entries;
}

/** HMAC-SHA256 hex of `text` under `key`. */
export function hmacSha256Hex(key: Uint8Array, text: string): string {
  return createHmac("sha256", key).update(text, "utf8").digest("hex");
}
