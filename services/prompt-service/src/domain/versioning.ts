import { createTwoFilesPatch } from "diff";

/** Myers' diff is O((N+M)·D); a pathological pair must not hold the event loop (and the writer) for long. */
const diffTimeoutMs = 500;

/**
 * Unified diff of `from` -> `to` content, with `v<N>` as file names so the hunk headers say which versions.
 * Empty when the contents are equal.
 * Falls back to "replace every line" when the minimal diff would take too long: still a valid unified diff.
 */
export function unifiedDiff(fromVersion: number, toVersion: number, from: string, to: string): string {
  // A version that changed only model settings has no content diff.
  if (from === to) return "";
  const oldName = `v${fromVersion}`;
  const newName = `v${toVersion}`;
  const patch = createTwoFilesPatch(oldName, newName, from, to, undefined, undefined, {
    timeout: diffTimeoutMs,
  });
  return patch ?? replaceAllPatch(oldName, newName, from, to);
}

function lines(s: string): string[] {
  if (s === "") return [];
  const parts = s.split("\n");
  if (parts[parts.length - 1] === "") parts.pop();
  return parts;
}

function replaceAllPatch(oldName: string, newName: string, from: string, to: string): string {
  const a = lines(from);
  const b = lines(to);
  const out = [
    "===================================================================",
    `--- ${oldName}`,
    `+++ ${newName}`,
    `@@ -${a.length === 0 ? 0 : 1},${a.length} +${b.length === 0 ? 0 : 1},${b.length} @@`,
  ];
  for (const [i, l] of a.entries()) {
    out.push(`-${l}`);
    if (i === a.length - 1 && !from.endsWith("\n")) out.push("\\ No newline at end of file");
  }
  for (const [i, l] of b.entries()) {
    out.push(`+${l}`);
    if (i === b.length - 1 && !to.endsWith("\n")) out.push("\\ No newline at end of file");
  }
  return `${out.join("\n")}\n`;
}

/** Whether an update appends a version: content or model settings changed. */
export function needsNewVersion(
  current: { content: string; modelConfigJson: string },
  next: { content: string; modelConfigJson: string },
): boolean {
  return current.content !== next.content || current.modelConfigJson !== next.modelConfigJson;
}
