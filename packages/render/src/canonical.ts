import type { JsonValue, PromptBody } from "./types.js";

/** Keys sorted at every level, so the same settings always print the same way. */
function sortKeys(v: JsonValue): JsonValue {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== "object") return v;
  const out: { [k: string]: JsonValue } = {};
  for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k] as JsonValue);
  return out;
}

function isEmptyConfig(v: JsonValue | undefined): boolean {
  if (v === undefined || v === null) return true;
  return typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 0;
}

/**
 * The text a version's diff is computed on. A text prompt without model settings is its text, so text
 * diffs stay what they were; chat messages are `### role` (or `### role (name)`) headers over their contents,
 * one blank line apart; model settings, when there are any, follow as sorted, indented JSON, so a version
 * that changed only them still has a diff.
 */
export function canonicalForm(body: PromptBody, modelConfig: JsonValue | undefined): string {
  const content =
    body.kind === "text"
      ? body.text
      : body.messages
          .map((m) => {
            const header = m.name === undefined || m.name === "" ? m.role : `${m.role} (${m.name})`;
            return `### ${header}\n${m.content}`;
          })
          .join("\n\n");
  if (isEmptyConfig(modelConfig)) return content;
  return `${content}\n### model_config\n${JSON.stringify(sortKeys(modelConfig as JsonValue), null, 2)}`;
}
