import { describe, expect, it } from "vitest";
import { includeRefs, placeholderNames, renderText } from "../src/index.js";
import { fails } from "./helpers.js";

describe("placeholderNames", () => {
  it("lists variables in order of first use; other braces are literal", () => {
    const text = "Hi {{name}}, {{ count }} times, {{name}} again. {{ not a var }} {{1x}} {{}} {x} {{a-b}}";
    expect(placeholderNames(text)).toEqual(["name", "count"]);
  });
  it("accepts names up to 64 characters only", () => {
    expect(placeholderNames(`{{a${"b".repeat(63)}}}`)).toEqual([`a${"b".repeat(63)}`]);
    expect(placeholderNames(`{{a${"b".repeat(64)}}}`)).toEqual([]);
  });
  it("finds a variable inside extra braces as templates always did", () => {
    expect(placeholderNames("{{{x}}}")).toEqual(["x"]);
    expect(renderText("{{{x}}}", new Map([["x", "1"]]))).toBe("{1}");
  });
  it("does not count includes as variables", () => {
    expect(placeholderNames("{{> header}} {{x}}")).toEqual(["x"]);
  });
});

describe("includeRefs", () => {
  it("parses a name, a label or a version, with spaces inside the braces", () => {
    expect(includeRefs("a {{> header}} b {{>  footer@production  }} c {{>x.y/z-1_2@3}}", "content")).toEqual([
      { name: "header", raw: "{{> header}}" },
      { name: "footer", label: "production", raw: "{{>  footer@production  }}" },
      { name: "x.y/z-1_2", version: 3, raw: "{{>x.y/z-1_2@3}}" },
    ]);
    expect(includeRefs("{{> p@latest}} {{> p@my_label-2}}", "content").map((r) => r.label)).toEqual([
      "latest",
      "my_label-2",
    ]);
  });
  it("refuses anything else shaped like an include, naming the field", () => {
    for (const bad of [
      "{{>}}",
      "{{> Header}}",
      "{{> -x}}",
      "{{> a b}}",
      "{{> a @prod}}",
      "{{> a@}}",
      "{{> a@0}}",
      "{{> a@01}}",
      "{{> a@2147483648}}",
      "{{> a@Prod}}",
      "{{> a@b@c}}",
      `{{> a@${"x".repeat(37)}}}`,
      `{{> a${"b".repeat(128)}}}`,
    ]) {
      const e = fails(() => includeRefs(`text ${bad} text`, "messages[2].content"));
      expect(e.field).toBe("messages[2].content");
      expect(e.reason).toContain(bad);
      expect(e.message).toBe(`messages[2].content: ${e.reason}`);
    }
    expect(fails(() => includeRefs("{{> A}}", "content")).reason).toBe(
      "include {{> A}}: the name must match [a-z0-9][a-z0-9._/-]{0,127}",
    );
    expect(fails(() => includeRefs("{{> a@0}}", "content")).reason).toBe(
      "include {{> a@0}}: the version must be a positive integer",
    );
    expect(fails(() => includeRefs("{{> a@B}}", "content")).reason).toBe(
      "include {{> a@B}}: after @ comes a version (a positive integer) or a label matching [a-z0-9_-]{1,36}",
    );
  });
  it("accepts the longest name and label, and the largest version", () => {
    const name = `a${"b".repeat(127)}`;
    const label = "x".repeat(36);
    expect(includeRefs(`{{> ${name}@${label}}} {{> a@2147483647}}`, "content")).toEqual([
      { name, label, raw: `{{> ${name}@${label}}}` },
      { name: "a", version: 2147483647, raw: "{{> a@2147483647}}" },
    ]);
  });
  it("leaves an unclosed or multi-line {{> literal", () => {
    expect(includeRefs("{{> a", "content")).toEqual([]);
    expect(includeRefs("{{> a\n}}", "content")).toEqual([]);
  });
});

describe("renderText", () => {
  it("substitutes in one pass: values holding {{x}} or {{> y}} stay literal", () => {
    const values = new Map([
      ["a", "{{b}}"],
      ["b", "{{> y}}"],
    ]);
    expect(renderText("{{a}} {{ b }}", values)).toBe("{{b}} {{> y}}");
  });
  it("leaves names without a value, literals and includes as written", () => {
    expect(renderText("{{x}} {{ not a var }} {{>  inc@production }}", new Map())).toBe(
      "{{x}} {{ not a var }} {{>  inc@production }}",
    );
  });
});
