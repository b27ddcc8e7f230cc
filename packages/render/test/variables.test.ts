import { describe, expect, it } from "vitest";
import { resolveValues, type VariableDeclaration, validateDeclarations } from "../src/index.js";
import { decl, fails } from "./helpers.js";

describe("validateDeclarations", () => {
  const tone = decl("tone", "enum", { enumValues: ["formal", "casual"] });

  it("accepts every type with a default of that type", () => {
    expect(() =>
      validateDeclarations([
        decl("s", "string", { defaultValue: "x" }),
        decl("n", "number", { defaultValue: 2.5 }),
        decl("b", "boolean", { defaultValue: false }),
        decl("e", "enum", { enumValues: ["a", "b"], defaultValue: "b" }),
        decl("j", "json", { defaultValue: { a: [1, null, "x"] } }),
        decl("k", "json", { defaultValue: null }),
        decl("d", "string", { description: "d".repeat(1000) }),
      ]),
    ).not.toThrow();
  });
  it("refuses more than 100 declarations", () => {
    const many = Array.from({ length: 101 }, (_, i) => decl(`v${i}`));
    expect(fails(() => validateDeclarations(many)).message).toBe("variables: at most 100 variables");
    expect(() => validateDeclarations(many.slice(1))).not.toThrow();
  });
  it("refuses bad and duplicate names", () => {
    expect(fails(() => validateDeclarations([decl("1bad")])).message).toBe(
      "variables[0].name: must match [A-Za-z_][A-Za-z0-9_]{0,63}",
    );
    expect(fails(() => validateDeclarations([decl("a"), decl("a")])).message).toBe(
      "variables[1].name: duplicate variable a",
    );
    expect(fails(() => validateDeclarations([decl("a b")], "decls")).field).toBe("decls[0].name");
    expect(fails(() => validateDeclarations([decl("a"), decl("a")], "decls")).field).toBe("decls[1].name");
    expect(() => validateDeclarations([decl("_"), decl(`a${"b".repeat(63)}`)])).not.toThrow();
  });
  it("refuses an unknown type", () => {
    const bad = { ...decl("a"), type: "list" } as unknown as VariableDeclaration;
    expect(fails(() => validateDeclarations([bad])).field).toBe("variables[0].type");
  });
  it("checks enum values: 1 to 100 distinct, 1 to 100 characters, no NUL; only for enums", () => {
    const enumValues = (values: string[]) =>
      fails(() => validateDeclarations([{ ...tone, enumValues: values }]));
    expect(enumValues([]).message).toBe(
      "variables[0].enum_values: an enum variable needs at least one value",
    );
    expect(enumValues(Array.from({ length: 101 }, (_, i) => `v${i}`)).reason).toBe("at most 100 values");
    const each = "each value must be 1 to 100 characters, without NUL";
    expect(enumValues([""]).reason).toBe(each);
    expect(enumValues(["a\0b"]).reason).toBe(each);
    expect(enumValues(["x".repeat(101)]).reason).toBe(each);
    expect(enumValues(["a", "a"]).reason).toBe("duplicate value a");
    expect(() =>
      validateDeclarations([{ ...tone, enumValues: ["x".repeat(100), "é".repeat(100)] }]),
    ).not.toThrow();
    expect(fails(() => validateDeclarations([decl("s", "string", { enumValues: ["x"] })])).message).toBe(
      "variables[0].enum_values: only enum variables have enum values",
    );
    expect(fails(() => validateDeclarations([decl("j", "json", { enumValues: ["x"] })])).field).toBe(
      "variables[0].enum_values",
    );
  });
  it("checks descriptions: at most 1000 characters (code points), no NUL", () => {
    expect(fails(() => validateDeclarations([decl("a", "string", { description: "a\0" })])).message).toBe(
      "variables[0].description: must not contain NUL characters",
    );
    expect(
      fails(() => validateDeclarations([decl("a", "string", { description: "d".repeat(1001) })])).message,
    ).toBe("variables[0].description: at most 1000 characters");
    expect(() =>
      validateDeclarations([decl("a", "string", { description: "😀".repeat(1000) })]),
    ).not.toThrow();
  });
  it("refuses a default that does not match the type", () => {
    const dflt = (d: VariableDeclaration) => fails(() => validateDeclarations([d])).message;
    expect(dflt(decl("n", "number", { defaultValue: "three" }))).toBe(
      "variables[0].default_value: must be a number, got string",
    );
    expect(dflt(decl("n", "number", { defaultValue: Number.POSITIVE_INFINITY }))).toBe(
      "variables[0].default_value: must be a finite number",
    );
    expect(dflt(decl("s", "string", { defaultValue: [1] }))).toBe(
      "variables[0].default_value: must be a string, got list",
    );
    expect(dflt(decl("b", "boolean", { defaultValue: { a: 1 } }))).toBe(
      "variables[0].default_value: must be a boolean, got struct",
    );
    expect(dflt(decl("s", "string", { defaultValue: null }))).toBe(
      "variables[0].default_value: must be a string, got null",
    );
    expect(dflt({ ...tone, defaultValue: "angry" })).toBe(
      "variables[0].default_value: must be one of formal, casual",
    );
    expect(dflt({ ...tone, defaultValue: 1 })).toBe(
      "variables[0].default_value: must be one of formal, casual, got number",
    );
    expect(dflt(decl("j", "json", { defaultValue: { a: Number.NaN } }))).toBe(
      "variables[0].default_value: must be a JSON value (finite numbers, no undefined)",
    );
  });
});

describe("resolveValues", () => {
  const decls = [
    decl("name", "string", { required: true }),
    decl("count", "number", { defaultValue: 3 }),
    decl("loud", "boolean"),
    decl("tone", "enum", { required: true, enumValues: ["formal", "casual"] }),
    decl("data", "json"),
    decl("opts", "json", { defaultValue: { b: 1, a: [true] } }),
  ];

  it("formats each type: strings and enums as they are, numbers and booleans by String, json compact", () => {
    const values = resolveValues(decls, {
      name: "{{tone}}",
      count: 1.5,
      loud: true,
      tone: "casual",
      data: { z: [1, "two", null], a: { b: false } },
    });
    expect(Object.fromEntries(values)).toEqual({
      name: "{{tone}}",
      count: "1.5",
      loud: "true",
      tone: "casual",
      data: '{"z":[1,"two",null],"a":{"b":false}}',
      opts: '{"b":1,"a":[true]}',
    });
  });
  it("uses defaults, renders an optional variable without either as empty, and treats null as not given", () => {
    const values = resolveValues(decls, { name: "a", tone: "formal", loud: null, data: undefined });
    expect(Object.fromEntries(values)).toEqual({
      name: "a",
      count: "3",
      loud: "",
      tone: "formal",
      data: "",
      opts: '{"b":1,"a":[true]}',
    });
    expect(resolveValues([decl("j", "json")], { j: "text" }).get("j")).toBe('"text"');
    expect(resolveValues([decl("j", "json")], { j: 0 }).get("j")).toBe("0");
    expect(resolveValues([decl("j", "json", { defaultValue: null })], {}).get("j")).toBe("null");
  });
  it("names a missing required variable", () => {
    expect(fails(() => resolveValues(decls, { tone: "formal" })).message).toBe("variables.name: is required");
    expect(fails(() => resolveValues(decls, { name: null, tone: "formal" })).field).toBe("variables.name");
  });
  it("names an undeclared input", () => {
    expect(fails(() => resolveValues(decls, { name: "a", tone: "formal", extra: "x" })).message).toBe(
      "variables.extra: is not declared",
    );
  });
  it("names a mistyped value with the kind it got", () => {
    const bad = (input: Record<string, unknown>) =>
      fails(() => resolveValues(decls, { name: "a", tone: "formal", ...(input as object) })).message;
    expect(bad({ name: 1 })).toBe("variables.name: must be a string, got number");
    expect(bad({ name: ["x"] })).toBe("variables.name: must be a string, got list");
    expect(bad({ name: { kind: "list" } })).toBe("variables.name: must be a string, got struct");
    expect(bad({ count: "3" })).toBe("variables.count: must be a number, got string");
    expect(bad({ count: Number.NaN })).toBe("variables.count: must be a finite number");
    expect(bad({ loud: "yes" })).toBe("variables.loud: must be a boolean, got string");
    expect(bad({ tone: "angry" })).toBe("variables.tone: must be one of formal, casual");
    expect(bad({ tone: true })).toBe("variables.tone: must be one of formal, casual, got boolean");
    expect(bad({ data: [Number.POSITIVE_INFINITY] })).toBe(
      "variables.data: must be a JSON value (finite numbers, no undefined)",
    );
  });
});
