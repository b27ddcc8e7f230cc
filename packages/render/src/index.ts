export { checkBody, inferDeclarations } from "./body.js";
export { canonicalForm } from "./canonical.js";
export { RenderError, type RenderErrorKind } from "./errors.js";
export { charLength, renderLimits, utf8Length } from "./limits.js";
export { includeRefs, placeholderNames } from "./placeholders.js";
export { type RenderedPrompt, type RenderPromptOptions, renderPrompt, renderText } from "./render.js";
export type {
  ChatMessage,
  ChatRole,
  IncludeRef,
  JsonValue,
  PromptBody,
  RenderableVersion,
  UsedVersion,
  VariableDeclaration,
  VariableType,
} from "./types.js";
export { resolveValues, validateDeclarations } from "./variables.js";
