/** Limits from the proto comments: one place, shared by validators, domain rules and tests. */
export const limits = {
  titleMaxChars: 255,
  /** 1 MiB of UTF-8; the transport caps whole messages at 4 MiB. */
  contentMaxBytes: 1024 * 1024,
  tagMaxChars: 50,
  tagsMax: 20,
  changeNoteMaxChars: 1000,
  requestIdMaxChars: 64,
  /** Serialized JSON of `metadata` / `model_config`. */
  structMaxBytes: 64 * 1024,
  labelMaxChars: 36,
  templateNameMaxChars: 100,
  templateDescriptionMaxChars: 1000,
  templateBodyMaxBytes: 1024 * 1024,
  templateVariablesMax: 100,
  enumValuesMax: 100,
  enumValueMaxChars: 100,
  variableDescriptionMaxChars: 1000,
  eventPageSizeDefault: 100,
  eventPageSizeMax: 1000,
  /** Messages of a chat prompt version. */
  messagesMax: 100,
} as const;

export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const tagPattern = /^[A-Za-z0-9_.:-]{1,50}$/;
export const labelPattern = /^[a-z0-9_-]{1,36}$/;
export const templateNamePattern = /^[A-Za-z0-9_.-]{1,100}$/;
/** Prompt names, unique per project. */
export const namePattern = /^[a-z0-9][a-z0-9._/-]{0,127}$/;
export const namePrefixPattern = /^[a-z0-9._/-]{0,128}$/;
export const variableNamePattern = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/** Characters as SQLite's length() counts them (code points), not UTF-16 units. */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}
