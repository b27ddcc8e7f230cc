import {
  type ChatMessage,
  canonicalForm,
  checkBody,
  inferDeclarations,
  type JsonValue,
  type PromptBody,
  RenderError,
  type VariableDeclaration,
  validateDeclarations,
} from "@autoforge/render";
import { FailedPreconditionError, InvalidArgumentError } from "./errors.js";
import { unifiedDiff } from "./versioning.js";

/**
 * A version's body (text or chat), its declared variables, and the rules between them. The renderer itself is
 * `@autoforge/render`, shared with templates and the client SDK; this module adapts it to the stored rows.
 */

/** The stored columns of a version that make its body. */
export interface StoredBody {
  readonly content: string;
  /** JSON array of messages; NULL for text prompts. */
  readonly messages: string | null;
}

export function bodyOf(stored: StoredBody): PromptBody {
  return stored.messages === null
    ? { kind: "text", text: stored.content }
    : { kind: "chat", messages: JSON.parse(stored.messages) as ChatMessage[] };
}

/** The columns a body is stored in. */
export function storedBody(body: PromptBody): StoredBody {
  return body.kind === "text"
    ? { content: body.text, messages: null }
    : { content: "", messages: JSON.stringify(body.messages) };
}

/** The declarations a version renders with: its own, or (declared none) each `{{var}}` as a required string. */
export function effectiveDeclarations(
  body: PromptBody,
  declared: readonly VariableDeclaration[] | null,
): readonly VariableDeclaration[] {
  return declared ?? inferDeclarations(body);
}

/** The renderer's errors as this service's typed errors (one status mapping, in the server kit). */
export function asServiceError(e: unknown): unknown {
  if (!(e instanceof RenderError)) return e;
  if (e.kind === "failed_precondition") {
    return new FailedPreconditionError(e.message, {
      reason: "RENDER_FAILED",
      preconditionViolations: [{ type: "RENDER", subject: "prompt", description: e.message }],
    });
  }
  const field = e.field ?? "variables";
  const prefix = `${field}: `;
  return new InvalidArgumentError(
    field,
    e.message.startsWith(prefix) ? e.message.slice(prefix.length) : e.message,
  );
}

export function withServiceErrors<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw asServiceError(e);
  }
}

/**
 * A new version's body and declarations, checked together: declarations well-formed, every `{{var}}` of the
 * body declared (unless it declares none: then they are inferred), includes well-formed.
 */
export function checkVersion(body: PromptBody, declared: readonly VariableDeclaration[] | null): void {
  withServiceErrors(() => {
    if (declared !== null) validateDeclarations(declared);
    checkBody(body, effectiveDeclarations(body, declared), body.kind === "text" ? "content" : "messages");
  });
}

/** Whether an update appends a version: body, model settings or declarations changed. */
export function versionChanged(
  current: { body: StoredBody; modelConfig: string; variables: string | null },
  next: { body: StoredBody; modelConfig: string; variables: string | null },
): boolean {
  return (
    current.body.content !== next.body.content ||
    current.body.messages !== next.body.messages ||
    current.modelConfig !== next.modelConfig ||
    current.variables !== next.variables
  );
}

/**
 * The diff between two versions, of their canonical forms: the text or the messages, then the model settings
 * when either side has any (so a version that only changed `model_config` has a diff). Text versions without
 * model settings diff exactly as before.
 */
export function versionDiff(
  from: { version: number; body: StoredBody; modelConfig: string },
  to: { version: number; body: StoredBody; modelConfig: string },
): string {
  const a = JSON.parse(from.modelConfig) as JsonValue;
  const b = JSON.parse(to.modelConfig) as JsonValue;
  const bothEmpty = isEmptyObject(a) && isEmptyObject(b);
  return unifiedDiff(
    from.version,
    to.version,
    canonicalForm(bodyOf(from.body), bothEmpty ? undefined : a),
    canonicalForm(bodyOf(to.body), bothEmpty ? undefined : b),
  );
}

function isEmptyObject(v: JsonValue): boolean {
  return typeof v === "object" && v !== null && !Array.isArray(v) && Object.keys(v).length === 0;
}
