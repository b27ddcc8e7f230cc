import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../src/errors.js";
import { decodePageToken, encodePageToken, filterDigest, resolvePageSize } from "../src/pagination.js";

function invalid(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error("expected InvalidArgumentError");
}

describe("page tokens", () => {
  const digest = filterDigest("ListPrompts", { owner: "a", status: "active" });
  it("round-trips the key", () => {
    const token = encodePageToken([123, "id"], digest);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodePageToken(token, digest, ["number", "string"])).toEqual([123, "id"]);
    expect(decodePageToken("", digest, ["number", "string"])).toBeUndefined();
  });
  it("refuses a token reused with other filters, or garbage", () => {
    const token = encodePageToken([123, "id"], digest);
    const other = filterDigest("ListPrompts", { owner: "a", status: "draft" });
    expect(invalid(() => decodePageToken(token, other, ["number", "string"])).field).toBe("page_token");
    expect(invalid(() => decodePageToken("not a token!", digest, ["number", "string"])).field).toBe(
      "page_token",
    );
    expect(
      invalid(() => decodePageToken(encodePageToken(["x", 1], digest), digest, ["number", "string"])).field,
    ).toBe("page_token");
  });
  it("defaults and bounds page_size", () => {
    expect(resolvePageSize(0)).toBe(20);
    expect(resolvePageSize(100)).toBe(100);
    expect(invalid(() => resolvePageSize(101)).field).toBe("page_size");
    expect(invalid(() => resolvePageSize(-1)).field).toBe("page_size");
    expect(resolvePageSize(0, { default: 100, max: 1000 })).toBe(100);
  });
});
