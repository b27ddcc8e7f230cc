import { VerifyAuditChainResponseSchema } from "@autoforge/contracts/admin/v1";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AlreadyExistsError } from "../src/errors.js";
import { createRequestIds, requestDigest } from "../src/request-digest.js";

describe("idempotency digest", () => {
  it("ignores key order but not values", () => {
    expect(requestDigest({ a: 1, b: { c: 2, d: 3 } })).toBe(requestDigest({ b: { d: 3, c: 2 }, a: 1 }));
    expect(requestDigest({ a: 1 })).not.toBe(requestDigest({ a: 2 }));
  });
});

describe("createRequestIds", () => {
  // A store over a Map: the service's table, minus SQL.
  const rows = new Map<string, { requestHash: string; response: Uint8Array }>();
  const requestIds = createRequestIds<null>({
    find: async (_tx, ownerId, method, key) => rows.get(`${ownerId}/${method}/${key}`),
    insert: async (_tx, row) => {
      rows.set(`${row.ownerId}/${row.method}/${row.key}`, row);
    },
  });
  const scope = (requestId: string, digest: string) => ({
    ownerId: "alice",
    method: "VerifyAuditChain",
    requestId,
    digest,
    responseSchema: VerifyAuditChainResponseSchema,
  });

  it("replays the stored first response, refuses another payload under the same id, ignores an empty id", async () => {
    const first = create(VerifyAuditChainResponseSchema, { ok: true, checkedCount: 7n });
    expect(await requestIds.replay(null, scope("r1", "d1"))).toBeUndefined();
    await requestIds.remember(null, scope("r1", "d1"), first);
    expect(await requestIds.replay(null, scope("r1", "d1"))).toEqual(first);
    await expect(requestIds.replay(null, scope("r1", "other"))).rejects.toBeInstanceOf(AlreadyExistsError);

    await requestIds.remember(null, scope("", "d1"), first);
    expect(await requestIds.replay(null, scope("", "d1"))).toBeUndefined();
    expect(rows.size).toBe(1);
  });
});
