import { RenderError } from "./errors.js";
import { messageNamePattern, renderLimits, utf8Length } from "./limits.js";
import { placeholderNames, tokenize } from "./placeholders.js";
import type { PromptBody, VariableDeclaration } from "./types.js";

const chatRoles: ReadonlySet<string> = new Set(["system", "user", "assistant", "tool"]);

/** Each text of a body with the field that names it: `<field>` for a text, `<field>[i].content` for chat. */
export function bodyParts(body: PromptBody, field?: string): { text: string; field: string }[] {
  if (body.kind === "text") return [{ text: body.text, field: field ?? "content" }];
  const base = field ?? "messages";
  return body.messages.map((m, i) => ({ text: m.content, field: `${base}[${i}].content` }));
}

/**
 * Checks a body against its declarations (create and update): size, chat shape, well-formed includes, and
 * every `{{var}}` declared. `field` names the body: default `content` for a text, `messages` for chat.
 */
export function checkBody(body: PromptBody, decls: readonly VariableDeclaration[], field?: string): void {
  const max = renderLimits.contentMaxBytes;
  if (body.kind === "text") {
    if (utf8Length(body.text) > max) throw RenderError.invalid(field ?? "content", `at most ${max} bytes`);
  } else {
    const base = field ?? "messages";
    const n = body.messages.length;
    if (n === 0 || n > renderLimits.messagesMax) {
      throw RenderError.invalid(base, `must have 1 to ${renderLimits.messagesMax} messages`);
    }
    let bytes = 0;
    for (const [i, m] of body.messages.entries()) {
      if (!chatRoles.has(m.role)) {
        throw RenderError.invalid(`${base}[${i}].role`, "must be system, user, assistant or tool");
      }
      if (m.name !== undefined && m.name !== "" && !messageNamePattern.test(m.name)) {
        throw RenderError.invalid(`${base}[${i}].name`, "must match [A-Za-z0-9_-]{1,64}");
      }
      bytes += utf8Length(m.content);
    }
    if (bytes > max) throw RenderError.invalid(base, `at most ${max} bytes in all messages together`);
  }
  const declared = new Set(decls.map((d) => d.name));
  for (const part of bodyParts(body, field)) {
    for (const t of tokenize(part.text)) {
      if (t.kind === "malformed") throw RenderError.invalid(part.field, t.reason);
      if (t.kind === "variable" && !declared.has(t.name)) {
        throw RenderError.invalid(
          part.field,
          `uses the undeclared variable {{${t.name}}}: declare ${t.name}`,
        );
      }
    }
  }
}

/** Declarations for a body sent without any (older clients): each `{{var}}` used is a required string. */
export function inferDeclarations(body: PromptBody): VariableDeclaration[] {
  const names = new Set<string>();
  for (const part of bodyParts(body)) for (const name of placeholderNames(part.text)) names.add(name);
  return [...names].map((name) => ({
    name,
    type: "string",
    required: true,
    enumValues: [],
    description: "",
  }));
}
