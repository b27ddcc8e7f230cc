/** The shapes the renderer works on: plain data, so the service and a client SDK can share them. */

export type VariableType = "string" | "number" | "boolean" | "enum" | "json";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

/** A declared variable, as stored (JSON) and as the renderer checks it. */
export interface VariableDeclaration {
  readonly name: string;
  readonly type: VariableType;
  readonly required: boolean;
  /** Absent when the declaration has none. */
  readonly defaultValue?: JsonValue;
  readonly enumValues: readonly string[];
  readonly description: string;
}

export type ChatRole = "system" | "user" | "assistant" | "tool";

export interface ChatMessage {
  readonly role: ChatRole;
  readonly content: string;
  readonly name?: string;
}

export type PromptBody =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "chat"; readonly messages: readonly ChatMessage[] };

/** `{{> name}}`, `{{> name@label}}` or `{{> name@3}}`; at most one of `label` and `version` is set. */
export interface IncludeRef {
  readonly name: string;
  readonly label?: string;
  readonly version?: number;
  /** The token exactly as written in the text, e.g. `{{>  greeting@production }}`. */
  readonly raw: string;
}

/** A prompt version as the renderer sees it. */
export interface RenderableVersion {
  readonly promptId: string;
  readonly name: string;
  readonly version: number;
  readonly body: PromptBody;
  readonly variables: readonly VariableDeclaration[];
}

export interface UsedVersion {
  readonly promptId: string;
  readonly name: string;
  readonly version: number;
  /** The label it was resolved by; absent when by version or by default. */
  readonly label?: string;
}
