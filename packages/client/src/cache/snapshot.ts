import { type Prompt, PromptSchema } from "@autoforge/contracts/prompt/v1";
import { fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import type { Selector } from "./entries.js";

/**
 * What `store` holds: the last-known-good answer of each entry, as JSON (prompts in their proto3 JSON form),
 * versioned so a later release can read or ignore an older file.
 */

export interface SnapshotEntry {
  readonly project: string;
  readonly name: string;
  readonly selector: Selector;
  readonly fetchedAt: number;
  readonly prompt: Prompt;
}

const format = "autoforge.prompt-cache/v1";

interface StoredEntry {
  project: string;
  name: string;
  by: Selector["by"];
  label?: string;
  version?: number;
  fetchedAt: number;
  prompt: JsonValue;
}

export function encodeSnapshot(entries: Iterable<SnapshotEntry>): string {
  const out: StoredEntry[] = [];
  for (const e of entries) {
    out.push({
      project: e.project,
      name: e.name,
      by: e.selector.by,
      ...(e.selector.by === "label" ? { label: e.selector.label } : {}),
      ...(e.selector.by === "version" ? { version: e.selector.version } : {}),
      fetchedAt: e.fetchedAt,
      prompt: toJson(PromptSchema, e.prompt),
    });
  }
  return JSON.stringify({ format, entries: out });
}

function selectorOf(e: StoredEntry): Selector | undefined {
  if (e.by === "default") return { by: "default" };
  if (e.by === "label" && typeof e.label === "string" && e.label !== "")
    return { by: "label", label: e.label };
  if (e.by === "version" && Number.isInteger(e.version) && (e.version as number) > 0) {
    return { by: "version", version: e.version as number };
  }
  return undefined;
}

/** The entries of a stored snapshot; throws on a string this release cannot read. */
export function decodeSnapshot(data: string): SnapshotEntry[] {
  const parsed = JSON.parse(data) as { format?: unknown; entries?: unknown };
  if (parsed.format !== format || !Array.isArray(parsed.entries)) {
    throw new Error(`prompt cache store: not a ${format} snapshot`);
  }
  const out: SnapshotEntry[] = [];
  for (const raw of parsed.entries as StoredEntry[]) {
    const selector = selectorOf(raw);
    if (selector === undefined || typeof raw.project !== "string" || typeof raw.name !== "string") continue;
    out.push({
      project: raw.project,
      name: raw.name,
      selector,
      fetchedAt: typeof raw.fetchedAt === "number" ? raw.fetchedAt : 0,
      prompt: fromJson(PromptSchema, raw.prompt, { ignoreUnknownFields: true }),
    });
  }
  return out;
}
