import { InvalidArgumentError } from "./errors.js";
import { charLength, limits, variableNamePattern } from "./limits.js";

export type VariableKind = "string" | "number" | "boolean" | "enum";

/** A scalar a variable can hold (the JSON kinds of google.protobuf.Value that make sense in text). */
export type ScalarValue = string | number | boolean;

/** A value as the caller sent it, already unwrapped from google.protobuf.Value. */
export type InputValue = ScalarValue | null | { readonly kind: "list" | "struct" };

/** A declared variable, as stored (JSON) and as the domain checks it. */
export interface VariableDeclaration {
  readonly name: string;
  readonly type: VariableKind;
  readonly required: boolean;
  /** Absent when the declaration has none. */
  readonly defaultValue?: ScalarValue;
  readonly enumValues: readonly string[];
  readonly description: string;
}

/** Placeholders are `{{name}}` (spaces inside the braces allowed); any other `{{...}}` is literal text. */
const placeholderPattern = /\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}/g;

/** Names used in a body, in order of first appearance. */
export function placeholderNames(body: string): string[] {
  const seen = new Set<string>();
  for (const m of body.matchAll(placeholderPattern)) seen.add(m[1] as string);
  return [...seen];
}

function kindOf(v: InputValue): string {
  if (v === null) return "null";
  if (typeof v === "object") return v.kind;
  return typeof v;
}

/** Whether `value` is acceptable for the declaration; returns the reason when not. */
function typeMismatch(decl: VariableDeclaration, value: InputValue): string | undefined {
  switch (decl.type) {
    case "string":
      return typeof value === "string" ? undefined : `must be a string, got ${kindOf(value)}`;
    case "number":
      if (typeof value !== "number") return `must be a number, got ${kindOf(value)}`;
      return Number.isFinite(value) ? undefined : "must be a finite number";
    case "boolean":
      return typeof value === "boolean" ? undefined : `must be a boolean, got ${kindOf(value)}`;
    case "enum":
      if (typeof value !== "string")
        return `must be one of ${decl.enumValues.join(", ")}, got ${kindOf(value)}`;
      return decl.enumValues.includes(value) ? undefined : `must be one of ${decl.enumValues.join(", ")}`;
  }
}

/**
 * Checks declarations and body together (CreatePromptTemplate): names valid and unique, types set,
 * enum values only (and always) for enums, defaults of the declared type, and every `{{var}}` of the body
 * declared. Errors name the offending field, e.g. `variables[2].default_value` or `body`.
 */
export function validateTemplate(body: string, variables: readonly VariableDeclaration[]): void {
  if (variables.length > limits.templateVariablesMax) {
    throw new InvalidArgumentError("variables", `at most ${limits.templateVariablesMax} variables`);
  }
  const names = new Set<string>();
  for (const [i, v] of variables.entries()) {
    const field = `variables[${i}]`;
    if (!variableNamePattern.test(v.name)) {
      throw new InvalidArgumentError(`${field}.name`, "must match [A-Za-z_][A-Za-z0-9_]{0,63}");
    }
    if (names.has(v.name)) throw new InvalidArgumentError(`${field}.name`, `duplicate variable ${v.name}`);
    names.add(v.name);
    if (v.description.includes("\0")) {
      throw new InvalidArgumentError(`${field}.description`, "must not contain NUL characters");
    }
    if (charLength(v.description) > limits.variableDescriptionMaxChars) {
      throw new InvalidArgumentError(
        `${field}.description`,
        `at most ${limits.variableDescriptionMaxChars} characters`,
      );
    }
    if (v.type === "enum") {
      if (v.enumValues.length === 0) {
        throw new InvalidArgumentError(`${field}.enum_values`, "an enum variable needs at least one value");
      }
      if (v.enumValues.length > limits.enumValuesMax) {
        throw new InvalidArgumentError(`${field}.enum_values`, `at most ${limits.enumValuesMax} values`);
      }
      const distinct = new Set<string>();
      for (const ev of v.enumValues) {
        if (ev === "" || ev.includes("\0") || charLength(ev) > limits.enumValueMaxChars) {
          throw new InvalidArgumentError(
            `${field}.enum_values`,
            `each value must be 1 to ${limits.enumValueMaxChars} characters, without NUL`,
          );
        }
        if (distinct.has(ev)) throw new InvalidArgumentError(`${field}.enum_values`, `duplicate value ${ev}`);
        distinct.add(ev);
      }
    } else if (v.enumValues.length > 0) {
      throw new InvalidArgumentError(`${field}.enum_values`, "only enum variables have enum values");
    }
    if (v.defaultValue !== undefined) {
      const reason = typeMismatch(v, v.defaultValue);
      if (reason !== undefined) throw new InvalidArgumentError(`${field}.default_value`, reason);
    }
  }
  for (const name of placeholderNames(body)) {
    if (!names.has(name)) {
      throw new InvalidArgumentError("body", `uses the undeclared variable {{${name}}}: declare ${name}`);
    }
  }
}

function formatScalar(v: ScalarValue): string {
  return typeof v === "string" ? v : String(v);
}

/**
 * Renders a body. Every provided variable must be declared and of its type; a required variable without
 * a value or default is an error; an optional one without either renders as the empty string. Errors name
 * `variables.<name>`. Substitution is a single pass: a value containing `{{x}}` is not expanded again.
 */
export function renderTemplate(
  body: string,
  variables: readonly VariableDeclaration[],
  input: Readonly<Record<string, InputValue>>,
): string {
  const decls = new Map(variables.map((v) => [v.name, v]));
  for (const name of Object.keys(input)) {
    if (!decls.has(name))
      throw new InvalidArgumentError(`variables.${name}`, "is not declared by the template");
  }
  const values = new Map<string, string>();
  for (const decl of variables) {
    const given = Object.hasOwn(input, decl.name) ? input[decl.name] : undefined;
    if (given === undefined || given === null) {
      if (decl.defaultValue !== undefined) {
        values.set(decl.name, formatScalar(decl.defaultValue));
      } else if (decl.required) {
        throw new InvalidArgumentError(`variables.${decl.name}`, "is required");
      } else {
        values.set(decl.name, "");
      }
      continue;
    }
    const reason = typeMismatch(decl, given);
    if (reason !== undefined) throw new InvalidArgumentError(`variables.${decl.name}`, reason);
    values.set(decl.name, formatScalar(given as ScalarValue));
  }
  return body.replace(placeholderPattern, (whole, name: string) => values.get(name) ?? whole);
}
