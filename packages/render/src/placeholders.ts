import { RenderError } from "./errors.js";
import { includeNamePattern, labelPattern, versionMax } from "./limits.js";
import type { IncludeRef } from "./types.js";

export type Token =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "variable"; readonly name: string; readonly raw: string }
  | { readonly kind: "include"; readonly ref: IncludeRef }
  /** Shaped like an include but not one: refused by validation, literal if it ever reaches a render. */
  | { readonly kind: "malformed"; readonly raw: string; readonly reason: string };

/**
 * A variable (`{{ name }}`) or anything shaped like an include (`{{>...}}` on one line). The variable
 * alternative is the pattern templates always used, so which `{{...}}` are variables stays the same; every
 * other `{{...}}` is literal text.
 */
const tokenPattern = /\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,63})\s*\}\}|\{\{>([^\n]*?)\}\}/g;
const includeBody = /^\s*([^@]*?)(?:@(.*?))?\s*$/;

function parseInclude(raw: string, inner: string): Token {
  const m = includeBody.exec(inner) as RegExpExecArray;
  const name = m[1] as string;
  const selector = m[2];
  if (!includeNamePattern.test(name)) {
    return {
      kind: "malformed",
      raw,
      reason: `include ${raw}: the name must match [a-z0-9][a-z0-9._/-]{0,127}`,
    };
  }
  if (selector === undefined) return { kind: "include", ref: { name, raw } };
  if (/^[0-9]+$/.test(selector)) {
    // all digits is a version, never a label of digits
    const version = Number(selector);
    if (!/^[1-9]/.test(selector) || version > versionMax) {
      return { kind: "malformed", raw, reason: `include ${raw}: the version must be a positive integer` };
    }
    return { kind: "include", ref: { name, version, raw } };
  }
  if (!labelPattern.test(selector)) {
    return {
      kind: "malformed",
      raw,
      reason: `include ${raw}: after @ comes a version (a positive integer) or a label matching [a-z0-9_-]{1,36}`,
    };
  }
  return { kind: "include", ref: { name, label: selector, raw } };
}

/** Splits a text once; rendering walks the tokens, so substituted values are never scanned again. */
export function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let last = 0;
  for (const m of text.matchAll(tokenPattern)) {
    const start = m.index;
    if (start > last) tokens.push({ kind: "text", text: text.slice(last, start) });
    const raw = m[0];
    const name = m[1];
    tokens.push(name !== undefined ? { kind: "variable", name, raw } : parseInclude(raw, m[2] as string));
    last = start + raw.length;
  }
  if (last < text.length) tokens.push({ kind: "text", text: text.slice(last) });
  return tokens;
}

/** Variable names used in a text, in order of first appearance. */
export function placeholderNames(text: string): string[] {
  const seen = new Set<string>();
  for (const t of tokenize(text)) if (t.kind === "variable") seen.add(t.name);
  return [...seen];
}

/** The includes of a text, in order; a malformed one is INVALID_ARGUMENT naming `field`. */
export function includeRefs(text: string, field: string): IncludeRef[] {
  return includesOf(tokenize(text), field);
}

export function includesOf(tokens: readonly Token[], field: string): IncludeRef[] {
  const refs: IncludeRef[] = [];
  for (const t of tokens) {
    if (t.kind === "malformed") throw RenderError.invalid(field, t.reason);
    if (t.kind === "include") refs.push(t.ref);
  }
  return refs;
}

/** `name`, `name@label` or `name@3`: how messages and include chains show a reference. */
export function refTarget(ref: IncludeRef): string {
  if (ref.label !== undefined) return `${ref.name}@${ref.label}`;
  if (ref.version !== undefined) return `${ref.name}@${ref.version}`;
  return ref.name;
}
