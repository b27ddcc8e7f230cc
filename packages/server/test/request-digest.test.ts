import { VerifyAuditChainResponseSchema } from "@autoforge/contracts/admin/v1";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { AlreadyExistsError } from "../src/errors.js";
import { createRequestIds, requestDigest, stableStringify } from "../src/request-digest.js";

describe("idempotency digest", () => {
  it("ignores key order but not values", () => {
    expect(requestDigest({ a: 1, b: { c: 2, d: 3 } })).toBe(requestDigest({ b: { d: 3, c: 2 }, a: 1 }));
    expect(requestDigest({ a: 1 })).not.toBe(requestDigest({ a: 2 }));
  });

  it("writes exactly what it always wrote (digests and Struct columns are stored)", () => {
    // the output of the first implementation (a JSON.stringify replacer sorting every object), pinned
    const payload = {
      z: 1,
      a: [3, "x", null, undefined, { b: 2, a: 1 }, 1.5, -0, 1e21, Number.NaN, () => 1],
      é: 'ünïcode \u2028 "quoted" \\',
      B: true,
      b: false,
      n: null,
      u: undefined,
      big: 12345678901234567890n,
      nested: { k10: 1, k2: 2, "": 0, _: [], deep: { y: [{ q: 1, p: [] }], x: {} } },
      when: new Date(0),
      bytes: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
      map: new Map([["a", 1]]),
    };
    expect(stableStringify(payload)).toBe(
      '{"B":true,"a":[3,"x",null,null,{"a":1,"b":2},1.5,0,1e+21,null,null],"b":false,' +
        '"big":"12345678901234567890","bytes":{"0":1,"1":2,"2":3,"3":4,"4":5,"5":6,"6":7,"7":8,"8":9,"9":10,"10":11},' +
        '"map":{},"n":null,"nested":{"":0,"_":[],"deep":{"x":{},"y":[{"p":[],"q":1}]},"k10":1,"k2":2},' +
        '"when":"1970-01-01T00:00:00.000Z","z":1,"é":"ünïcode \u2028 \\"quoted\\" \\\\"}',
    );
    expect(requestDigest(payload)).toBe("065a2e799c59e3b95422d9f1bb90719753fcbb6e1d8bd5a19bf37aa8370b9c8f");
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
