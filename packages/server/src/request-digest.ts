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
