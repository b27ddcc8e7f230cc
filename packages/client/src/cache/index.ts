// PromptCache: exports are added here by the cache's own modules.
export {};
