import { createHash } from "node:crypto";
import { type DescMessage, type MessageShape, toBinary, toJsonString } from "@bufbuild/protobuf";
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

/**
 * What the items of one list page may take, encoded: 3 MiB, below the 4 MiB default message limit, leaving room for
 * the envelope and the page token. Checked in both encodings (binary and JSON), since a list does not know which one
 * its caller reads.
 */
export const defaultPageMaxBytes = 3 * 1024 * 1024;

/** Bytes of a varint (a length prefix). */
function varintBytes(n: number): number {
  let bytes = 1;
  for (let v = n; v >= 0x80; v = Math.floor(v / 0x80)) bytes++;
  return bytes;
}

const utf8 = new TextEncoder();

/**
 * The size an item takes in a list response: the larger of its binary entry (tag, length prefix, bytes) and its JSON
 * (plus the separating comma), so a page under the cap is under it in either encoding.
 */
export function encodedItemSize<D extends DescMessage>(schema: D): (item: MessageShape<D>) => number {
  return (item) => {
    const binary = toBinary(schema, item).byteLength;
    const json = utf8.encode(toJsonString(schema, item)).byteLength + 1;
    return Math.max(1 + varintBytes(binary) + binary, json);
  };
}

/**
 * A cheap upper bound of the encoded size of a message in either encoding, without encoding it: a walk over the
 * message object counting 6 bytes per UTF-16 unit of a string (JSON's worst case, `\\uXXXX`; UTF-8 needs at most
 * 3), 2 per byte of a bytes field (base64 takes 4/3), and 64 per scalar and per field, list entry or map entry (a
 * JSON name with its quotes and colon, a tag and length prefix, an int64 or enum name written as a string).
 * Typical pages stay far below the cap by this bound, so they are never encoded twice; only a page whose bound
 * reaches the cap is measured exactly.
 */
export function encodedSizeBound(value: unknown): number {
  switch (typeof value) {
    case "string":
      return 64 + 6 * value.length;
    case "object": {
      if (value === null) return 64;
      if (value instanceof Uint8Array) return 64 + 2 * value.byteLength;
      let bytes = 64;
      for (const v of Array.isArray(value) ? value : Object.values(value)) bytes += encodedSizeBound(v);
      return bytes;
    }
    default:
      return 64;
  }
}

export interface CappedPageOptions<R, M> {
  /** The resolved page_size; `rows` holds up to `pageSize + 1` rows (the extra one says there is more). */
  readonly pageSize: number;
  readonly digest: string;
  /** Sort key of a row: the next page starts after the page's last row. */
  readonly keyOf: (row: R) => readonly KeyPart[];
  /** Row -> response item, in the caller's view. */
  readonly toItem: (row: R) => M;
  /** Encoded size of an item, e.g. `encodedItemSize(PromptSchema)`; asked only once the page's bound reaches the cap. */
  readonly sizeOf: (item: M) => number;
  /** Default `defaultPageMaxBytes`. */
  readonly maxBytes?: number;
}

/**
 * One page of a keyset query that fetched `pageSize + 1` rows, capped by count and by bytes: items are added in order
 * until `pageSize` or until the next would take the page past `maxBytes`. A page always holds at least one item (a
 * single item over the message limit is then refused by the port, RESOURCE_EXHAUSTED). A page cut short by bytes
 * carries a token right after its last item, so a short page with a token is normal (AIP-158).
 */
export function cappedKeysetPage<R, M>(
  rows: readonly R[],
  options: CappedPageOptions<R, M>,
): { page: M[]; nextPageToken: string } {
  const { pageSize, digest, keyOf, toItem, sizeOf, maxBytes = defaultPageMaxBytes } = options;
  const page: M[] = [];
  /** The page's size by `encodedSizeBound` while that stays under the cap; then measured exactly (`exact`). */
  let bound = 0;
  let exact: number | undefined;
  let last: R | undefined;
  for (const row of rows.slice(0, pageSize)) {
    const item = toItem(row);
    if (exact === undefined) {
      const itemBound = encodedSizeBound(item);
      if (bound + itemBound <= maxBytes) {
        bound += itemBound;
        page.push(item);
        last = row;
        continue;
      }
      exact = page.reduce((sum, earlier) => sum + sizeOf(earlier), 0);
    }
    const size = sizeOf(item);
    if (last !== undefined && exact + size > maxBytes) {
      return { page, nextPageToken: encodePageToken(keyOf(last), digest) };
    }
    page.push(item);
    exact += size;
    last = row;
  }
  return {
    page,
    nextPageToken: rows.length > pageSize && last !== undefined ? encodePageToken(keyOf(last), digest) : "",
  };
}

/** What a list returns of each item (AIP-157): BASIC leaves out its large fields, FULL is everything. */
export type ListView = "basic" | "full";

/**
 * A list request's `view`: every view enum of the contracts has the same numbers, 0 UNSPECIFIED (= FULL, what the
 * lists returned before views existed), 1 BASIC, 2 FULL. Another number (sent by a newer client) is INVALID_ARGUMENT.
 */
export function listView(view: number): ListView {
  if (view === 1) return "basic";
  if (view === 0 || view === 2) return "full";
  throw new InvalidArgumentError("view", "must be BASIC or FULL");
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
