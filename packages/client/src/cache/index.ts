// PromptCache: reads by name from memory, kept fresh by the change feed, last-known-good through outages, and
// local rendering with prompt-service's renderer. The file store (node:fs) is exported from "./node".
export { createPromptCache } from "./prompt-cache.js";
export type {
  CachedPrompt,
  PromptCache,
  PromptCacheClient,
  PromptCacheHooks,
  PromptCacheOptions,
  PromptCacheStore,
  PromptFallback,
  PromptSelector,
  RenderedPrompt,
  StaleReason,
  StreamState,
} from "./types.js";
