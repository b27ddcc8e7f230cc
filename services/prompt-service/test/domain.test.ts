import { InvalidArgumentError, PermissionDeniedError, type ProjectScope } from "@autoforge/server";
import { describe, expect, it } from "vitest";
import { computeEtag, etagMatches } from "../src/domain/etag.js";
import {
  assertLabelAt,
  assertLabelChangeAllowed,
  isPromotionGate,
  labelsWithLatest,
} from "../src/domain/labels.js";
import {
  placeholderNames,
  renderTemplate,
  type VariableDeclaration,
  validateTemplate,
} from "../src/domain/templates.js";
import { unifiedDiff } from "../src/domain/versioning.js";
import { must } from "./helpers.js";

function invalid(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(InvalidArgumentError);
    return e as InvalidArgumentError;
  }
  throw new Error("expected InvalidArgumentError");
}

describe("versioning", () => {
  it("produces a unified diff naming both versions", () => {
    const diff = unifiedDiff(1, 2, "a\nb\nc\n", "a\nB\nc\n");
    expect(diff).toContain("--- v1");
    expect(diff).toContain("+++ v2");
    expect(diff).toContain("-b\n+B");
    expect(diff).toMatch(/@@ -1,3 \+1,3 @@/);
  });
  it("is empty when the content did not change (a model_config-only version)", () => {
    expect(unifiedDiff(1, 2, "same", "same")).toBe("");
  });
});

describe("etag", () => {
  it("changes with the revision and is opaque", () => {
    const a = computeEtag("p1", 1);
    expect(a).not.toContain("1");
    expect(a).not.toBe(computeEtag("p1", 2));
    expect(etagMatches("p1", 1, a)).toBe(true);
    expect(etagMatches("p1", 2, a)).toBe(false);
    expect(etagMatches("p2", 1, a)).toBe(false);
  });
});

describe("labels", () => {
  const scope = (role: ProjectScope["role"]): ProjectScope => ({ id: "acme", role, personal: false });
  const protectedLabels = ["production"];
  it("validates the format and reserves latest", () => {
    expect(invalid(() => assertLabelChangeAllowed("Prod", scope("editor"), protectedLabels)).field).toBe(
      "label",
    );
    expect(
      invalid(() => assertLabelChangeAllowed("x".repeat(37), scope("editor"), protectedLabels)).field,
    ).toBe("label");
    expect(
      invalid(() => assertLabelChangeAllowed("latest", scope("admin"), protectedLabels)).message,
    ).toMatch(/latest/);
    expect(() => assertLabelChangeAllowed("staging", scope("editor"), protectedLabels)).not.toThrow();
    expect(() => assertLabelChangeAllowed("a_b-1", scope("editor"), protectedLabels)).not.toThrow();
  });
  it("lets only publishers and admins of the project move a protected label", () => {
    expect(() => assertLabelChangeAllowed("production", scope("editor"), protectedLabels)).toThrow(
      PermissionDeniedError,
    );
    expect(() => assertLabelChangeAllowed("production", scope("service"), protectedLabels)).toThrow(
      PermissionDeniedError,
    );
    expect(() => assertLabelChangeAllowed("production", scope("publisher"), protectedLabels)).not.toThrow();
    expect(() => assertLabelChangeAllowed("production", scope("admin"), protectedLabels)).not.toThrow();
    // the project decides which labels are protected
    expect(() => assertLabelChangeAllowed("production", scope("editor"), ["prod-eu"])).not.toThrow();
    expect(() => assertLabelChangeAllowed("prod-eu", scope("editor"), ["prod-eu"])).toThrow(
      PermissionDeniedError,
    );
  });
  it("a gated label: only the promotion gate sets it, nobody removes it; the gate sets nothing else", () => {
    const gated = (byGate: boolean) => ({ gatedLabels: ["production"], byGate });
    const reason = (f: () => void) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(PermissionDeniedError);
        return (e as PermissionDeniedError).details.reason ?? "none";
      }
      return "allowed";
    };
    const set = (label: string, role: ProjectScope["role"], byGate: boolean) =>
      reason(() => assertLabelChangeAllowed(label, scope(role), protectedLabels, gated(byGate), "set"));
    const remove = (label: string, role: ProjectScope["role"], byGate: boolean) =>
      reason(() => assertLabelChangeAllowed(label, scope(role), protectedLabels, gated(byGate), "remove"));
    // protected and gated: gated wins
    expect(set("production", "service", true)).toBe("allowed");
    expect(set("production", "admin", false)).toBe("LABEL_GATED");
    expect(set("production", "publisher", false)).toBe("LABEL_GATED");
    expect(set("production", "service", false)).toBe("LABEL_GATED");
    expect(remove("production", "service", true)).toBe("LABEL_GATED");
    expect(remove("production", "admin", false)).toBe("LABEL_GATED");
    // every other label: the gate is any service principal, people as before
    expect(set("staging", "service", true)).toBe("none");
    expect(set("staging", "service", false)).toBe("none");
    expect(set("staging", "editor", false)).toBe("allowed");
    expect(() =>
      assertLabelChangeAllowed("production", scope("admin"), protectedLabels, gated(false), "set"),
    ).toThrow(
      "label production of project acme is gated: promote a version with PromotionService.PromotePromptVersion (evaluation-service)",
    );
    // who the gate is: a service principal with one of the subjects
    expect(isPromotionGate(scope("service"), "evaluation-service", ["evaluation-service"])).toBe(true);
    expect(isPromotionGate(scope("service"), "svc-a", ["evaluation-service"])).toBe(false);
    expect(isPromotionGate(scope("admin"), "evaluation-service", ["evaluation-service"])).toBe(false);
    expect(isPromotionGate(scope("service"), "evaluation-service", [])).toBe(false);
  });
  it("compare-and-swap: the label must be where the caller expects (0 = absent)", () => {
    expect(() => assertLabelAt("production", 3, undefined)).not.toThrow();
    expect(() => assertLabelAt("production", 3, 3)).not.toThrow();
    expect(() => assertLabelAt("production", undefined, 0)).not.toThrow();
    expect(() => assertLabelAt("production", 3, 2)).toThrow(/points to version 3, expected at version 2/);
    expect(() => assertLabelAt("production", undefined, 2)).toThrow(/is not set, expected at version 2/);
    expect(() => assertLabelAt("production", 3, 0)).toThrow(/points to version 3, expected absent/);
  });
  it("always shows latest as the current version", () => {
    expect(labelsWithLatest([{ label: "production", version: 2 }], 5)).toEqual({ production: 2, latest: 5 });
  });
});

describe("templates", () => {
  const vars: VariableDeclaration[] = [
    { name: "name", type: "string", required: true, enumValues: [], description: "" },
    { name: "count", type: "number", required: false, defaultValue: 3, enumValues: [], description: "" },
    { name: "loud", type: "boolean", required: false, enumValues: [], description: "" },
    { name: "tone", type: "enum", required: true, enumValues: ["formal", "casual"], description: "" },
  ];
  const body = "Hi {{name}}, {{ count }} times, loud={{loud}}, {{tone}}. {{ not a var }} {{1x}}";

  it("finds placeholders, ignoring braces that are not a variable", () => {
    expect(placeholderNames(body)).toEqual(["name", "count", "loud", "tone"]);
  });
  it("accepts a body whose variables are all declared", () => {
    expect(() => validateTemplate(body, vars)).not.toThrow();
  });
  it("refuses an undeclared variable, naming it", () => {
    const e = invalid(() => validateTemplate("Hello {{who}}", vars));
    expect(e.field).toBe("body");
    expect(e.message).toContain("who");
  });
  it("refuses bad declarations, naming the field", () => {
    expect(invalid(() => validateTemplate("", [{ ...must(vars[0]), name: "1bad" }])).field).toBe(
      "variables[0].name",
    );
    expect(invalid(() => validateTemplate("", [must(vars[0]), must(vars[0])])).field).toBe(
      "variables[1].name",
    );
    expect(invalid(() => validateTemplate("", [{ ...must(vars[3]), enumValues: [] }])).field).toBe(
      "variables[0].enum_values",
    );
    expect(invalid(() => validateTemplate("", [{ ...must(vars[0]), enumValues: ["x"] }])).field).toBe(
      "variables[0].enum_values",
    );
    expect(invalid(() => validateTemplate("", [{ ...must(vars[1]), defaultValue: "three" }])).field).toBe(
      "variables[0].default_value",
    );
    expect(invalid(() => validateTemplate("", [{ ...must(vars[3]), defaultValue: "angry" }])).field).toBe(
      "variables[0].default_value",
    );
  });
  it("renders typed values and defaults in one pass", () => {
    const text = renderTemplate(body, vars, { name: "{{tone}}", loud: true, tone: "casual" });
    expect(text).toBe("Hi {{tone}}, 3 times, loud=true, casual. {{ not a var }} {{1x}}");
  });
  it("names a missing, mistyped or undeclared variable", () => {
    expect(invalid(() => renderTemplate(body, vars, { tone: "formal" })).field).toBe("variables.name");
    expect(invalid(() => renderTemplate(body, vars, { name: 1, tone: "formal" })).field).toBe(
      "variables.name",
    );
    expect(invalid(() => renderTemplate(body, vars, { name: "a", tone: "angry" })).field).toBe(
      "variables.tone",
    );
    expect(invalid(() => renderTemplate(body, vars, { name: "a", tone: "formal", count: "3" })).field).toBe(
      "variables.count",
    );
    expect(
      invalid(() => renderTemplate(body, vars, { name: "a", tone: "formal", count: Number.NaN })).field,
    ).toBe("variables.count");
    expect(invalid(() => renderTemplate(body, vars, { name: "a", tone: "formal", extra: "x" })).field).toBe(
      "variables.extra",
    );
    expect(invalid(() => renderTemplate(body, vars, { name: { kind: "list" }, tone: "formal" })).field).toBe(
      "variables.name",
    );
  });
});
