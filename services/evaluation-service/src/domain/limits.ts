/** Limits from the proto comments: one place, shared by validators, domain rules and tests. */
export const limits = {
  providerMaxChars: 100,
  modelMaxChars: 200,
  reasonMaxChars: 2000,
  requestIdMaxChars: 64,
  testNameMaxChars: 255,
  /** input / expected_output / actual_output, UTF-8 bytes. */
  testTextMaxBytes: 64 * 1024,
  /** Serialized JSON of `metadata`. */
  structMaxBytes: 64 * 1024,
  resultsPerBatchMax: 1000,
} as const;

export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Characters as SQLite's length() counts them (code points), not UTF-16 units. */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}
