/**
 * Limits and name patterns, the same as prompt-service's (src/domain/limits.ts and the proto comments), kept here
 * so a client checks exactly what the server checks.
 */
export const renderLimits = {
  variablesMax: 100,
  enumValuesMax: 100,
  enumValueMaxChars: 100,
  variableDescriptionMaxChars: 1000,
  /** UTF-8 bytes of a text, or of all messages' contents together. */
  contentMaxBytes: 1024 * 1024,
  messagesMax: 100,
  /** Default levels of nested includes below the rendered version. */
  includeDepthMax: 5,
} as const;

export const variableNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
export const includeNamePattern = /^[a-z0-9][a-z0-9._/-]{0,127}$/;
export const labelPattern = /^[a-z0-9_-]{1,36}$/;
export const messageNamePattern = /^[A-Za-z0-9_-]{1,64}$/;
/** Versions are int32 in the contracts. */
export const versionMax = 2_147_483_647;

/** Characters as SQLite's length() counts them (code points), not UTF-16 units. */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** UTF-8 length without Buffer or TextEncoder (browsers, no DOM lib); a lone surrogate counts 3, as U+FFFD. */
export function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0) as number;
    n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
  }
  return n;
}
