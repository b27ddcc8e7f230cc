import type { Prompt } from "@autoforge/contracts/prompt/v1";
import type { ConnectError } from "@connectrpc/connect";
import type { CachedPrompt, PromptSelector } from "./types.js";

/**
 * The cache's memory: per project, entries keyed by (name, selector) in nested maps, so a hit is two or three
 * Map lookups with no key to build; an index by prompt id for invalidation; and the feed's position.
 */

export type Selector =
  | { readonly by: "default" }
  | { readonly by: "label"; readonly label: string }
  | { readonly by: "version"; readonly version: number };

/** One cached answer of GetPrompt: a (name, selector) and the prompt it resolved to. */
export interface Entry {
  readonly project: ProjectState;
  readonly name: string;
  readonly selector: Selector;
  /** The last answer; undefined until the first fetch succeeds, and after a NOT_FOUND or a purge. */
  prompt: Prompt | undefined;
  /** The answers a read returns, built once per fetch (a hit allocates nothing else). */
  hit: CachedPrompt | undefined;
  staleHit: CachedPrompt | undefined;
  /** When the answer was fetched (the cache's clock). */
  fetchedAt: number;
  /**
   * Fetched while the project's feed had a position: every later change of the prompt is an event after that
   * position, so the feed will tell. Entries fetched before the feed's first position (or without a feed)
   * live on their TTL.
   */
  covered: boolean;
  /** An event (or a suspect answer) says the answer may be outdated: the next read fetches. */
  invalid: boolean;
  /** Bumped by every invalidation and drop: a fetch that started before a bump is not stored as fresh. */
  generation: number;
  /** The fetch in flight for this key (shared by concurrent reads and background refreshes). */
  pending: Promise<Prompt> | undefined;
  /** A background refresh failed with UNAVAILABLE: none again before this time. */
  retryAt: number;
}

export interface NameSlot {
  def: Entry | undefined;
  labels: Map<string, Entry> | undefined;
  versions: Map<number, Entry> | undefined;
}

export type FeedMode = "off" | "connecting" | "up" | "down" | "refused";

export interface ProjectState {
  readonly name: string;
  readonly names: Map<string, NameSlot>;
  /** Entries holding a prompt, by its id. */
  readonly byId: Map<string, Set<Entry>>;
  feed: FeedMode;
  /** Sequence of the last event applied; undefined until the feed's head was first read. */
  position: number | undefined;
  /** When the feed last went down (the cache's clock): covered entries were known good until then. */
  downSince: number;
  /** Why the feed was refused (PERMISSION_DENIED for a token that is not a service principal, ...). */
  refusal: ConnectError | undefined;
  /** Events applied so far, the clock of the race guard below. */
  eventCount: number;
  /** Fetches in flight, each with the eventCount at its start. */
  readonly inflight: Set<{ readonly startedAt: number }>;
  /** eventCount of the last event per prompt id and per name, kept only while fetches are in flight. */
  readonly touchedIds: Map<string, number>;
  readonly touchedNames: Map<string, number>;
  /** Called on every change of feed state or position (fresh() waits on them). */
  readonly listeners: Set<() => void>;
}

export function createProjectState(name: string, watch: boolean): ProjectState {
  return {
    name,
    names: new Map(),
    byId: new Map(),
    feed: watch ? "connecting" : "off",
    position: undefined,
    downSince: 0,
    refusal: undefined,
    eventCount: 0,
    inflight: new Set(),
    touchedIds: new Map(),
    touchedNames: new Map(),
    listeners: new Set(),
  };
}

export function notify(project: ProjectState): void {
  for (const listener of [...project.listeners]) listener();
}

/** The selector of a read: a version wins only when no label is given (both is refused by the server). */
export function selectorOf(options: PromptSelector | undefined): Selector {
  if (options === undefined) return { by: "default" };
  const { version, label } = options;
  if (version !== undefined && version !== 0) return { by: "version", version };
  if (label !== undefined && label !== "") return { by: "label", label };
  return { by: "default" };
}

/** The entry for a read, if one exists: the hit path, no allocation. */
export function findEntry(
  project: ProjectState | undefined,
  name: string,
  options: PromptSelector | undefined,
): Entry | undefined {
  const slot = project?.names.get(name);
  if (slot === undefined) return undefined;
  if (options === undefined) return slot.def;
  const { version, label } = options;
  if (version !== undefined && version !== 0) {
    // both set: the server refuses it, so it is never a hit
    return label === undefined || label === "" ? slot.versions?.get(version) : undefined;
  }
  if (label !== undefined && label !== "") return slot.labels?.get(label);
  return slot.def;
}

/** The entry for (name, selector), created empty when missing. */
export function entryFor(project: ProjectState, name: string, selector: Selector): Entry {
  let slot = project.names.get(name);
  if (slot === undefined) {
    slot = { def: undefined, labels: undefined, versions: undefined };
    project.names.set(name, slot);
  }
  const existing =
    selector.by === "default"
      ? slot.def
      : selector.by === "label"
        ? slot.labels?.get(selector.label)
        : slot.versions?.get(selector.version);
  if (existing !== undefined) return existing;
  const entry: Entry = {
    project,
    name,
    selector,
    prompt: undefined,
    hit: undefined,
    staleHit: undefined,
    fetchedAt: 0,
    covered: false,
    invalid: false,
    generation: 0,
    pending: undefined,
    retryAt: 0,
  };
  if (selector.by === "default") slot.def = entry;
  else if (selector.by === "label") {
    slot.labels ??= new Map();
    slot.labels.set(selector.label, entry);
  } else {
    slot.versions ??= new Map();
    slot.versions.set(selector.version, entry);
  }
  return entry;
}

/** Every entry cached under a name (any selector). */
export function entriesNamed(project: ProjectState, name: string): Entry[] {
  const slot = project.names.get(name);
  if (slot === undefined) return [];
  const out: Entry[] = [];
  if (slot.def !== undefined) out.push(slot.def);
  if (slot.labels !== undefined) out.push(...slot.labels.values());
  if (slot.versions !== undefined) out.push(...slot.versions.values());
  return out;
}

export function allEntries(project: ProjectState): Entry[] {
  const out: Entry[] = [];
  for (const name of project.names.keys()) out.push(...entriesNamed(project, name));
  return out;
}

/** Stores an answer in an entry (re-indexing it when the name now resolves to another prompt). */
export function setPrompt(
  entry: Entry,
  prompt: Prompt,
  state: { fetchedAt: number; covered: boolean; invalid: boolean },
): void {
  const previous = entry.prompt;
  if (previous !== undefined && previous.id !== prompt.id) unindex(entry, previous.id);
  if (previous === undefined || previous.id !== prompt.id) {
    let set = entry.project.byId.get(prompt.id);
    if (set === undefined) {
      set = new Set();
      entry.project.byId.set(prompt.id, set);
    }
    set.add(entry);
  }
  entry.prompt = prompt;
  entry.hit = Object.freeze({ prompt, stale: false, source: "cache" });
  entry.staleHit = Object.freeze({ prompt, stale: true, source: "cache" });
  entry.fetchedAt = state.fetchedAt;
  entry.covered = state.covered;
  entry.invalid = state.invalid;
  entry.retryAt = 0;
}

function unindex(entry: Entry, promptId: string): void {
  const set = entry.project.byId.get(promptId);
  if (set === undefined) return;
  set.delete(entry);
  if (set.size === 0) entry.project.byId.delete(promptId);
}

export function invalidate(entry: Entry): void {
  entry.invalid = true;
  entry.generation++;
}

/** Forgets an entry's answer (NOT_FOUND, purge); the entry itself goes too unless a fetch for it is in flight. */
export function drop(entry: Entry): void {
  entry.generation++;
  if (entry.prompt !== undefined) unindex(entry, entry.prompt.id);
  entry.prompt = undefined;
  entry.hit = undefined;
  entry.staleHit = undefined;
  entry.invalid = false;
  if (entry.pending === undefined) removeEmpty(entry);
}

/** Removes an entry without an answer from its name's maps. */
export function removeEmpty(entry: Entry): void {
  if (entry.prompt !== undefined || entry.pending !== undefined) return;
  const slot = entry.project.names.get(entry.name);
  if (slot === undefined) return;
  const { selector } = entry;
  if (selector.by === "default") {
    if (slot.def === entry) slot.def = undefined;
  } else if (selector.by === "label") {
    if (slot.labels?.get(selector.label) === entry) slot.labels.delete(selector.label);
  } else if (slot.versions?.get(selector.version) === entry) {
    slot.versions.delete(selector.version);
  }
  if (slot.def === undefined && !slot.labels?.size && !slot.versions?.size) {
    entry.project.names.delete(entry.name);
  }
}

/**
 * The race guard's record of an event: only needed while fetches are in flight (a fetch that starts later
 * sees the change itself).
 */
export function touch(project: ProjectState, promptId: string, name: string): void {
  project.eventCount++;
  if (project.inflight.size === 0) return;
  project.touchedIds.set(promptId, project.eventCount);
  if (name !== "") project.touchedNames.set(name, project.eventCount);
}

/** Whether an event about the prompt (by id, or by either name) was applied after a fetch started. */
export function touchedSince(project: ProjectState, startedAt: number, promptId: string, names: string[]) {
  if ((project.touchedIds.get(promptId) ?? 0) > startedAt) return true;
  return names.some((n) => (project.touchedNames.get(n) ?? 0) > startedAt);
}

/** Ends a fetch's registration; the touch records go once no fetch could need them. */
export function endFetch(project: ProjectState, token: { readonly startedAt: number }): void {
  project.inflight.delete(token);
  if (project.inflight.size === 0) {
    project.touchedIds.clear();
    project.touchedNames.clear();
  } else if (project.touchedIds.size + project.touchedNames.size > 4096) {
    let oldest = Number.POSITIVE_INFINITY;
    for (const f of project.inflight) oldest = Math.min(oldest, f.startedAt);
    for (const map of [project.touchedIds, project.touchedNames]) {
      for (const [k, at] of map) if (at <= oldest) map.delete(k);
    }
  }
}
