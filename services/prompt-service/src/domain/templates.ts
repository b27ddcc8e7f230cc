import {
  checkBody,
  type JsonValue,
  RenderError,
  renderText,
  resolveValues,
  type VariableDeclaration,
  type VariableType,
  validateDeclarations,
} from "@autoforge/render";
import { FailedPreconditionError, InvalidArgumentError } from "./errors.js";

// Templates render with the same code as prompts (and as a client SDK rendering locally): @autoforge/render.
export { placeholderNames, type VariableDeclaration } from "@autoforge/render";

export type VariableKind = VariableType;

/** A scalar a variable can hold (the JSON kinds of google.protobuf.Value that make sense in text). */
export type ScalarValue = string | number | boolean;

/** A value as the caller sent it, unwrapped from google.protobuf.Value (null counts as not given). */
export type InputValue = JsonValue;

/** The renderer's errors as the server kit's, so its error mapper picks the status code. */
function asServiceError<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof RenderError)) throw e;
    if (e.kind === "invalid_argument") throw new InvalidArgumentError(e.field ?? "", e.reason);
    throw new FailedPreconditionError(e.message, {
      reason: "RENDER_FAILED",
      preconditionViolations: [{ type: "RENDER", subject: "template", description: e.message }],
    });
  }
}

/**
 * Checks declarations and body together (CreatePromptTemplate): names valid and unique, types set,
 * enum values only (and always) for enums, defaults of the declared type, includes well-formed, and every
 * `{{var}}` of the body declared. Errors name the offending field, e.g. `variables[2].default_value` or `body`.
 */
export function validateTemplate(body: string, variables: readonly VariableDeclaration[]): void {
  asServiceError(() => {
    validateDeclarations(variables);
    checkBody({ kind: "text", text: body }, variables, "body");
  });
}

/**
 * Renders a body. Every provided variable must be declared and of its type; a required variable without
 * a value or default is an error; an optional one without either renders as the empty string. Errors name
 * `variables.<name>`. Substitution is a single pass; includes are not resolved in templates (left as written).
 */
export function renderTemplate(
  body: string,
  variables: readonly VariableDeclaration[],
  input: Readonly<Record<string, JsonValue | undefined>>,
): string {
  return asServiceError(() => renderText(body, resolveValues(variables, input)));
}
