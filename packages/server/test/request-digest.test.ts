import { describe, expect, it } from "vitest";
import { requestDigest } from "../src/request-digest.js";

describe("idempotency digest", () => {
  it("ignores key order but not values", () => {
    expect(requestDigest({ a: 1, b: { c: 2, d: 3 } })).toBe(requestDigest({ b: { d: 3, c: 2 }, a: 1 }));
    expect(requestDigest({ a: 1 })).not.toBe(requestDigest({ a: 2 }));
  });
});
