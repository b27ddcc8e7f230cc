import { createHash } from "node:crypto";
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import { AlreadyExistsError } from "./errors.js";

/**
 * AIP-155 request ids. The key is (owner, method, request_id). A retry with the same payload gets the first
 * response; the same key with a different payload is refused (ALREADY_EXISTS): the key is taken, and
 * answering with the first response would tell the caller their different request succeeded.
 */
export function requestDigest(payload: unknown): string {
  return createHash("sha256").update(stableStringify(payload)).digest("hex");
}

/**
 * JSON with object keys sorted, so equal payloads hash equally whatever their field order. Otherwise as
 * `JSON.stringify` writes it (`toJSON` honoured, `undefined` members left out and `null` in arrays, non-finite
 * numbers as `null`), except that bigints are written as strings and byte arrays as `JSON.stringify` writes
 * them. Its output is stored (request digests, Struct columns), so it must never change: the tests pin it.
 * Written out rather than as a `JSON.stringify` replacer, which had to build a sorted copy of every object.
 */
export function stableStringify(value: unknown): string {
  return write(value) ?? "null";
}

function write(value: unknown): string | undefined {
  let v = value;
  if (v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON === "function") {
    v = (v as { toJSON(): unknown }).toJSON();
  }
  switch (typeof v) {
    case "string":
    case "number":
    case "boolean":
      return JSON.stringify(v);
    case "bigint":
      return JSON.stringify(v.toString());
    case "object": {
      if (v === null) return "null";
      if (Array.isArray(v)) {
        let out = "[";
        for (let i = 0; i < v.length; i++) out += `${i === 0 ? "" : ","}${write(v[i]) ?? "null"}`;
        return `${out}]`;
      }
      if (v instanceof Uint8Array) return JSON.stringify(v);
      const record = v as Record<string, unknown>;
      let out = "{";
      for (const key of Object.keys(record).sort()) {
        const member = write(record[key]);
        if (member !== undefined) out += `${out === "{" ? "" : ","}${JSON.stringify(key)}:${member}`;
      }
      return `${out}}`;
    }
    default:
      return undefined; // undefined, functions, symbols: left out of objects, null in arrays
  }
}

/** A service's own `idempotency_keys` table, read and written inside the caller's unit of work. */
export interface RequestIdStore<Tx> {
  find(
    tx: Tx,
    ownerId: string,
    method: string,
    key: string,
  ): Promise<{ requestHash: string; response: Uint8Array } | undefined>;
  insert(
    tx: Tx,
    row: {
      ownerId: string;
      method: string;
      key: string;
      requestHash: string;
      response: Buffer;
      createdAt: number;
    },
  ): Promise<void>;
}

/** One create call's request id: whose, which method, the key, the payload's digest, the response type. */
export interface RequestIdScope<S extends DescMessage> {
  readonly ownerId: string;
  readonly method: string;
  /** The request's `request_id`; empty: the call is not idempotent and nothing is looked up or stored. */
  readonly requestId: string;
  /** `requestDigest` of the payload without the request id. */
  readonly digest: string;
  readonly responseSchema: S;
}

export interface RequestIds<Tx> {
  /** The first response stored under this request id, or undefined; another payload under it: ALREADY_EXISTS. */
  replay<S extends DescMessage>(tx: Tx, scope: RequestIdScope<S>): Promise<MessageShape<S> | undefined>;
  /** Stores the response under the request id, in the same unit of work as the change it answers. */
  remember<S extends DescMessage>(
    tx: Tx,
    scope: RequestIdScope<S>,
    response: MessageShape<S>,
    at?: number,
  ): Promise<void>;
}

/** AIP-155 request ids over a service's own table (see `requestDigest` for the rule). */
export function createRequestIds<Tx>(store: RequestIdStore<Tx>): RequestIds<Tx> {
  return {
    async replay(tx, scope) {
      if (scope.requestId === "") return undefined;
      const seen = await store.find(tx, scope.ownerId, scope.method, scope.requestId);
      if (seen === undefined) return undefined;
      if (seen.requestHash !== scope.digest) {
        throw new AlreadyExistsError(
          `request_id ${scope.requestId} was already used for a different ${scope.method} request`,
          { reason: "REQUEST_ID_REUSED", metadata: { requestId: scope.requestId, method: scope.method } },
        );
      }
      return fromBinary(scope.responseSchema, seen.response);
    },
    async remember(tx, scope, response, at = Date.now()) {
      if (scope.requestId === "") return;
      await store.insert(tx, {
        ownerId: scope.ownerId,
        method: scope.method,
        key: scope.requestId,
        requestHash: scope.digest,
        response: Buffer.from(toBinary(scope.responseSchema, response)),
        createdAt: at,
      });
    },
  };
}
