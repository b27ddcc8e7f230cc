import { ListPromptsResponseSchema, type Prompt, PromptSchema } from "@autoforge/contracts/prompt/v1";
import { create, toBinary, toJsonString } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../src/errors.js";
import {
  cappedKeysetPage,
  decodePageToken,
  encodedItemSize,
  encodedSizeBound,
  filterDigest,
  listView,
} from "../src/pagination.js";

const promptSize = encodedItemSize(PromptSchema);
const digest = filterDigest("ListPrompts", { project: "p" });
const prompt = (i: number, content: string) =>
  create(PromptSchema, { id: `id-${i}`, title: `t${i}`, content });

function page(rows: readonly Prompt[], pageSize: number, maxBytes?: number) {
  return cappedKeysetPage(rows, {
    pageSize,
    digest,
    keyOf: (r) => [r.id],
    toItem: (r) => r,
    sizeOf: promptSize,
    ...(maxBytes === undefined ? {} : { maxBytes }),
  });
}

describe("pages capped by bytes", () => {
  it("the cheap bound is at least an item's exact size, for every kind of field", () => {
    const rich = create(PromptSchema, {
      id: "0f8e4a52-3c1d-4b7a-9e2f-1a2b3c4d5e6f",
      title: '"\u0001'.repeat(50),
      content: "é漢🙂\n".repeat(200),
      version: 2_000_000_000,
      tags: Array.from({ length: 40 }, (_, i) => `t${i}`),
      metadata: { nested: { list: [1, "two", true, null, { deep: "x".repeat(30) }] } },
      createTime: { seconds: 1_764_700_000n, nanos: 123_456_789 },
    });
    for (const item of [rich, prompt(1, ""), prompt(2, "plain ".repeat(5000)), create(PromptSchema)]) {
      expect(encodedSizeBound(item)).toBeGreaterThanOrEqual(promptSize(item));
    }
  });

  it("a page far below the cap by the bound is never measured exactly", () => {
    const rows = [0, 1, 2, 3].map((i) => prompt(i, "x".repeat(1000)));
    let measured = 0;
    const result = cappedKeysetPage(rows, {
      pageSize: 3,
      digest,
      keyOf: (r) => [r.id],
      toItem: (r) => r,
      sizeOf: (item) => {
        measured++;
        return promptSize(item);
      },
    });
    expect(result.page).toHaveLength(3);
    expect(measured).toBe(0);
  });

  it("an item's size bounds its share of the response in both encodings", () => {
    // quotes and control characters grow in JSON (\" and \u0001), multi-byte text does not
    for (const content of ["plain ".repeat(2000), '"\u0001\n'.repeat(3000), "é漢🙂".repeat(1000), ""]) {
      const items = [prompt(1, content), prompt(2, content), prompt(3, content)];
      const total = items.reduce((n, p) => n + promptSize(p), 0);
      const response = create(ListPromptsResponseSchema, { prompts: items });
      const envelope = 64;
      expect(toBinary(ListPromptsResponseSchema, response).byteLength).toBeLessThanOrEqual(total);
      expect(Buffer.byteLength(toJsonString(ListPromptsResponseSchema, response))).toBeLessThanOrEqual(
        total + envelope,
      );
    }
  });

  it("stops before the item that would pass the cap, with a token right after the last item", () => {
    const rows = [0, 1, 2, 3, 4].map((i) => prompt(i, "x".repeat(1000)));
    const one = promptSize(must(rows[0]));
    const result = page(rows, 4, 3 * one);
    expect(result.page.map((p) => p.id)).toEqual(["id-0", "id-1", "id-2"]);
    expect(decodePageToken(result.nextPageToken, digest, ["string"])).toEqual(["id-2"]);
    // exactly at the cap: the item still fits
    expect(page(rows, 4, 3 * one + 1).page).toHaveLength(3);
    // count first: no more rows than pageSize + 1 means no token
    expect(page(rows.slice(0, 4), 4, 10 * one)).toMatchObject({ nextPageToken: "" });
    expect(page(rows.slice(0, 4), 4, 10 * one).page).toHaveLength(4);
    expect(decodePageToken(page(rows, 4, 10 * one).nextPageToken, digest, ["string"])).toEqual(["id-3"]);
  });

  it("always returns at least one item, even one over the cap", () => {
    const rows = [prompt(0, "x".repeat(5000)), prompt(1, "y")];
    const result = page(rows, 10, 100);
    expect(result.page.map((p) => p.id)).toEqual(["id-0"]);
    expect(decodePageToken(result.nextPageToken, digest, ["string"])).toEqual(["id-0"]);
    expect(page([must(rows[0])], 10, 100)).toMatchObject({ nextPageToken: "" });
    expect(page([], 10, 100)).toEqual({ page: [], nextPageToken: "" });
  });
});

describe("list views", () => {
  it("UNSPECIFIED and FULL are full, BASIC is basic, another number is INVALID_ARGUMENT naming view", () => {
    expect(listView(0)).toBe("full");
    expect(listView(2)).toBe("full");
    expect(listView(1)).toBe("basic");
    for (const n of [3, -1, 99]) {
      let error: unknown;
      try {
        listView(n);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).field).toBe("view");
    }
  });
});

function must<T>(v: T | undefined): T {
  if (v === undefined) throw new Error("expected a value");
  return v;
}
