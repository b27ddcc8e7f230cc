import { RenderError } from "./errors.js";
import { charLength, renderLimits, variableNamePattern } from "./limits.js";
import type { JsonValue, VariableDeclaration } from "./types.js";

const variableTypes: ReadonlySet<string> = new Set(["string", "number", "boolean", "enum", "json"]);

/** Kind names as google.protobuf.Value calls them, for messages like `must be a string, got list`. */
function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "list";
  if (typeof v === "object") return "struct";
  return typeof v;
}

/** JSON.stringify would turn NaN into null and drop undefined members: refuse them instead. */
function isJson(v: unknown): boolean {
  if (v === null || typeof v === "string" || typeof v === "boolean") return true;
  if (typeof v === "number") return Number.isFinite(v);
  if (Array.isArray(v)) return v.every(isJson);
  if (typeof v === "object") return Object.values(v).every(isJson);
  return false;
}

/** Why `value` does not fit the declaration, or undefined when it does. */
function typeMismatch(decl: VariableDeclaration, value: JsonValue): string | undefined {
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
    case "json":
      return isJson(value) ? undefined : "must be a JSON value (finite numbers, no undefined)";
  }
}

/**
 * Checks declarations: at most 100, names valid and unique, enum values only (and always) for enums,
 * descriptions bounded, defaults of the declared type. Errors name `<field>[i].name` etc.
 */
export function validateDeclarations(decls: readonly VariableDeclaration[], field = "variables"): void {
  if (decls.length > renderLimits.variablesMax) {
    throw RenderError.invalid(field, `at most ${renderLimits.variablesMax} variables`);
  }
  const names = new Set<string>();
  for (const [i, v] of decls.entries()) {
    const at = `${field}[${i}]`;
    if (!variableNamePattern.test(v.name)) {
      throw RenderError.invalid(`${at}.name`, "must match [A-Za-z_][A-Za-z0-9_]{0,63}");
    }
    if (names.has(v.name)) throw RenderError.invalid(`${at}.name`, `duplicate variable ${v.name}`);
    names.add(v.name);
    // declarations also come from stored JSON and SDK callers, not only from checked protos
    if (!variableTypes.has(v.type)) {
      throw RenderError.invalid(`${at}.type`, "must be string, number, boolean, enum or json");
    }
    if (v.description.includes("\0")) {
      throw RenderError.invalid(`${at}.description`, "must not contain NUL characters");
    }
    if (charLength(v.description) > renderLimits.variableDescriptionMaxChars) {
      throw RenderError.invalid(
        `${at}.description`,
        `at most ${renderLimits.variableDescriptionMaxChars} characters`,
      );
    }
    if (v.type === "enum") {
      if (v.enumValues.length === 0) {
        throw RenderError.invalid(`${at}.enum_values`, "an enum variable needs at least one value");
      }
      if (v.enumValues.length > renderLimits.enumValuesMax) {
        throw RenderError.invalid(`${at}.enum_values`, `at most ${renderLimits.enumValuesMax} values`);
      }
      const distinct = new Set<string>();
      for (const ev of v.enumValues) {
        if (ev === "" || ev.includes("\0") || charLength(ev) > renderLimits.enumValueMaxChars) {
          throw RenderError.invalid(
            `${at}.enum_values`,
            `each value must be 1 to ${renderLimits.enumValueMaxChars} characters, without NUL`,
          );
        }
        if (distinct.has(ev)) throw RenderError.invalid(`${at}.enum_values`, `duplicate value ${ev}`);
        distinct.add(ev);
      }
    } else if (v.enumValues.length > 0) {
      throw RenderError.invalid(`${at}.enum_values`, "only enum variables have enum values");
    }
    if (v.defaultValue !== undefined) {
      const reason = typeMismatch(v, v.defaultValue);
      if (reason !== undefined) throw RenderError.invalid(`${at}.default_value`, reason);
    }
  }
}

/** The text a value renders as: strings as they are, JSON compact, numbers and booleans by String(). */
function format(decl: VariableDeclaration, v: JsonValue): string {
  if (decl.type === "json") return JSON.stringify(v);
  return typeof v === "string" ? v : String(v);
}

/**
 * The text of every declared variable, from the input or the default. Every given name must be declared; a
 * required variable without a value or default is an error; an optional one without either is "". A null
 * value counts as not given (google.protobuf.Value's null). Errors name `variables.<name>`.
 */
export function resolveValues(
  decls: readonly VariableDeclaration[],
  input: Readonly<Record<string, JsonValue | undefined>>,
): Map<string, string> {
  const declared = new Set(decls.map((d) => d.name));
  for (const name of Object.keys(input)) {
    if (!declared.has(name)) throw RenderError.invalid(`variables.${name}`, "is not declared");
  }
  const values = new Map<string, string>();
  for (const decl of decls) {
    const given = Object.hasOwn(input, decl.name) ? input[decl.name] : undefined;
    if (given === undefined || given === null) {
      if (decl.defaultValue !== undefined) {
        values.set(decl.name, format(decl, decl.defaultValue));
      } else if (decl.required) {
        throw RenderError.invalid(`variables.${decl.name}`, "is required");
      } else {
        values.set(decl.name, "");
      }
      continue;
    }
    const reason = typeMismatch(decl, given);
    if (reason !== undefined) throw RenderError.invalid(`variables.${decl.name}`, reason);
    values.set(decl.name, format(decl, given));
  }
  return values;
}
