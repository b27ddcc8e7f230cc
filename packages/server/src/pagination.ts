import { createHash } from "node:crypto";
import { z } from "zod";
import { InvalidArgumentError } from "./errors.js";

/**
 * Keyset page tokens: base64url JSON of the last row's sort key plus a digest of the list and its filters.
 * Opaque to clients; a token presented with other filters (or to another list) is refused, because its key
 * would silently skip or repeat rows of the other result set.
 */
export type KeyPart = string | number;

const maxPageTokenChars = 512;

interface TokenBody {
  /** Sort key of the last row of the previous page. */
  k: KeyPart[];
  /** Digest of list name + filters. */
  f: string;
}

export function filterDigest(list: string, filters: Readonly<Record<string, unknown>>): string {
  const canonical = JSON.stringify([
    list,
    Object.keys(filters)
      .sort()
      .map((k) => [k, filters[k]]),
  ]);
  return createHash("sha256").update(canonical).digest("base64url").slice(0, 16);
}

export function encodePageToken(key: readonly KeyPart[], digest: string): string {
  const body: TokenBody = { k: [...key], f: digest };
  return Buffer.from(JSON.stringify(body), "utf8").toString("base64url");
}

/**
 * One page of a keyset query that fetched `pageSize + 1` rows: the first `pageSize`, and a token for the next page
 * (keyed by `keyOf` of the page's last row) only when the extra row shows there is one.
 */
export function keysetPage<R>(
  rows: readonly R[],
  pageSize: number,
  digest: string,
  keyOf: (last: R) => readonly KeyPart[],
): { page: R[]; nextPageToken: string } {
  const page = rows.slice(0, pageSize);
  const last = page[page.length - 1];
  return {
    page,
    nextPageToken: rows.length > pageSize && last !== undefined ? encodePageToken(keyOf(last), digest) : "",
  };
}

/** Returns the key, or undefined for an empty token (first page). */
export function decodePageToken(
  token: string,
  digest: string,
  shape: readonly ("string" | "number")[],
): KeyPart[] | undefined {
  if (token === "") return undefined;
  let body: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(token) || token.length > maxPageTokenChars) throw new Error("not base64url");
    body = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    throw new InvalidArgumentError("page_token", "is not a token this list returned");
  }
  const b = body as Partial<TokenBody> | null;
  if (
    b === null ||
    typeof b !== "object" ||
    typeof b.f !== "string" ||
    !Array.isArray(b.k) ||
    b.k.length !== shape.length ||
    !b.k.every(
      (part, i) => typeof part === shape[i] && (typeof part !== "number" || Number.isSafeInteger(part)),
    )
  ) {
    throw new InvalidArgumentError("page_token", "is not a token this list returned");
  }
  if (b.f !== digest) {
    throw new InvalidArgumentError(
      "page_token",
      "was issued for different filters; start again without a token",
    );
  }
  return b.k as KeyPart[];
}

export interface PageSizeLimits {
  readonly default: number;
  readonly max: number;
}

/** The architecture's page_size defaults for list RPCs; a list with its own limits passes them in. */
export const defaultPageSizeLimits: PageSizeLimits = Object.freeze({ default: 20, max: 100 });

/** page_size: 0 means the default; negative or above the maximum is refused. */
export function resolvePageSize(pageSize: number, defaults: PageSizeLimits = defaultPageSizeLimits): number {
  if (pageSize === 0) return defaults.default;
  if (pageSize < 0 || pageSize > defaults.max) {
    throw new InvalidArgumentError("page_size", `must be between 0 and ${defaults.max}`);
  }
  return pageSize;
}

/** Request rules (for `defineValidator`) matching `resolvePageSize` and `decodePageToken`. */
export const pageSizeRule = (max: number = defaultPageSizeLimits.max) =>
  z.int().min(0, `must be between 0 and ${max}`).max(max, `must be between 0 and ${max}`);
export const pageTokenRule = z.string().max(maxPageTokenChars, "is not a token this list returned");
