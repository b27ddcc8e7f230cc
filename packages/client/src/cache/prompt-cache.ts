import {
  type Prompt,
  type PromptEvent,
  PromptEventType,
  PromptKind,
  PromptSchema,
} from "@autoforge/contracts/prompt/v1";
import type { JsonValue, RenderableVersion } from "@autoforge/render";
import { create } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  allEntries,
  createProjectState,
  drop,
  type Entry,
  endFetch,
  entriesNamed,
  entryFor,
  findEntry,
  invalidate,
  notify,
  type ProjectState,
  removeEmpty,
  selectorOf,
  setPrompt,
  touch,
  touchedSince,
} from "./entries.js";
import { headSequence, runFeed } from "./feed.js";
import { renderableOf, renderLocally } from "./local-render.js";
import { decodeSnapshot, encodeSnapshot, type SnapshotEntry } from "./snapshot.js";
import type {
  CachedPrompt,
  PromptCache,
  PromptCacheOptions,
  PromptSelector,
  RenderedPrompt,
  StreamState,
} from "./types.js";

/** prompt-service cannot be reached: the only errors a cached entry or a fallback stands in for. */
function unreachable(e: ConnectError): boolean {
  return e.code === Code.Unavailable || e.code === Code.DeadlineExceeded;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function closedError(): ConnectError {
  return new ConnectError("the prompt cache is closed", Code.Canceled);
}

/**
 * The prompt cache: reads by name served from memory, kept fresh by one WatchPromptEvents stream per project,
 * on a TTL with stale-while-revalidate while that stream is down, last-known-good while prompt-service is
 * unreachable, and local rendering with prompt-service's renderer.
 *
 * Freshness of an entry: invalid (an event or a suspect answer) -> the next read fetches; else covered by an up
 * feed -> fresh; else fresh for `ttlMs` from its fetch (from the feed's drop, for covered entries), then served
 * stale while one background refresh runs.
 *
 * Race guard: a fetch records the project's event count and the entry's generation when it starts; if an event
 * about the same prompt id or name was applied (or the entry was invalidated) before its answer arrives, the
 * answer is returned to its caller (it overlapped the change) but stored as invalid, so the next read fetches.
 */
export function createPromptCache(options: PromptCacheOptions): PromptCache {
  const { client, store } = options;
  const defaultName = options.project ?? "";
  const ttlMs = options.ttlMs ?? 60_000;
  const watch = options.watch ?? true;
  const hooks = options.hooks ?? {};
  const now = options.now ?? Date.now;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const saveDelayMs = options.saveDelayMs ?? 1_000;
  const retryDelayMs = Math.min(ttlMs, 1_000);
  const onHit = hooks.hit;
  const closer = new AbortController();
  const projects = new Map<string, ProjectState>();
  const feeds: Promise<void>[] = [];
  const renderables = new WeakMap<Prompt, RenderableVersion>();
  let closed = false;

  const fallbacks = new Map<string, CachedPrompt>();
  for (const [name, init] of Object.entries(options.fallbacks ?? {})) {
    const kind =
      init.kind !== undefined && init.kind !== PromptKind.UNSPECIFIED
        ? init.kind
        : (init.messages?.length ?? 0) > 0
          ? PromptKind.CHAT
          : PromptKind.TEXT;
    const prompt = deepFreeze(create(PromptSchema, { ...init, name: init.name || name, kind }));
    fallbacks.set(name, Object.freeze({ prompt, stale: true, source: "fallback" }));
  }

  function setState(p: ProjectState, mode: "up" | "down" | "refused", error?: ConnectError): void {
    const was = p.feed;
    if (mode === "up") {
      p.feed = "up";
      p.refusal = undefined;
      if (was !== "up") {
        hooks.streamState?.("up", p.name);
        // entries fetched before the feed's first position may predate an event it will never send
        for (const entry of allEntries(p)) {
          if (entry.prompt !== undefined && !entry.covered && !entry.invalid) refreshInBackground(entry);
        }
      }
    } else {
      if (was === "up") p.downSince = now();
      p.feed = mode;
      if (mode === "refused") p.refusal = error;
      if (was !== mode) hooks.streamState?.("down" satisfies StreamState, p.name, error);
    }
    notify(p);
  }

  function apply(p: ProjectState, event: PromptEvent): void {
    const sequence = Number(event.sequence);
    if (p.position !== undefined && sequence <= p.position) return; // already applied (a replay after resume)
    p.position = sequence;
    touch(p, event.promptId, event.name);
    const purged = event.type === PromptEventType.PURGED;
    let entries = 0;
    const ofPrompt = p.byId.get(event.promptId);
    if (ofPrompt !== undefined) {
      for (const entry of [...ofPrompt]) {
        if (purged) drop(entry);
        else invalidate(entry);
        entries++;
      }
    }
    // the name now (or again) names this prompt: whatever else was cached under it is outdated
    if (event.name !== "") {
      for (const entry of entriesNamed(p, event.name)) {
        if (entry.prompt === undefined) entry.generation++;
        else if (entry.prompt.id !== event.promptId) {
          invalidate(entry);
          entries++;
        }
      }
    }
    if (purged && entries > 0) scheduleSave();
    if (hooks.invalidated !== undefined) {
      const at = event.occurTime === undefined ? now() : timestampMs(event.occurTime);
      hooks.invalidated(now() - at, event, entries);
    }
    notify(p);
  }

  function project(name: string): ProjectState {
    let p = projects.get(name);
    if (p === undefined) {
      p = createProjectState(name, watch && !closed);
      projects.set(name, p);
      if (watch && !closed) {
        const feed = runFeed(p, {
          client,
          signal: closer.signal,
          timeoutMs,
          initialDelayMs: options.reconnect?.initialDelayMs ?? 100,
          maxDelayMs: options.reconnect?.maxDelayMs ?? 5_000,
          now,
          apply,
          setState,
        }).catch((e: unknown) => hooks.error?.(e, "feed"));
        feeds.push(feed);
      }
    }
    return p;
  }
  const defaultProject = project(defaultName);

  function isFresh(entry: Entry): boolean {
    if (entry.invalid) return false;
    const p = entry.project;
    if (entry.covered) {
      if (p.feed === "up") return true;
      return now() - Math.max(p.downSince, entry.fetchedAt) < ttlMs;
    }
    return now() - entry.fetchedAt < ttlMs;
  }

  /** GetPrompt for an entry; one call in flight per entry, shared by every read waiting for it. */
  function fetchEntry(entry: Entry): Promise<Prompt> {
    if (entry.pending !== undefined) return entry.pending;
    const p = entry.project;
    const token = { startedAt: p.eventCount };
    const generation = entry.generation;
    const covered = p.position !== undefined;
    p.inflight.add(token);
    const { selector } = entry;
    // fetched before the feed's first position, stored after it: the feed may never send the event it predates
    let revalidate = false;
    const pending = client
      .getPrompt(
        {
          project: p.name,
          name: entry.name,
          ...(selector.by === "label" ? { label: selector.label } : {}),
          ...(selector.by === "version" ? { version: selector.version } : {}),
        },
        { timeoutMs, signal: closer.signal },
      )
      .then(
        (res) => {
          if (res.prompt === undefined)
            throw new ConnectError("GetPrompt answered without a prompt", Code.Internal);
          const prompt = deepFreeze(res.prompt);
          const suspect =
            entry.generation !== generation ||
            touchedSince(p, token.startedAt, prompt.id, [entry.name, prompt.name]);
          setPrompt(entry, prompt, { fetchedAt: now(), covered, invalid: suspect });
          revalidate = !covered && !suspect && p.position !== undefined;
          scheduleSave();
          return prompt;
        },
        (e: unknown) => {
          const error = ConnectError.from(e);
          if (error.code === Code.NotFound && entry.prompt !== undefined) {
            drop(entry);
            scheduleSave();
          }
          throw error;
        },
      )
      .finally(() => {
        entry.pending = undefined;
        endFetch(p, token);
        removeEmpty(entry);
        if (revalidate) refreshInBackground(entry);
      });
    entry.pending = pending;
    return pending;
  }

  function refreshInBackground(entry: Entry): void {
    if (entry.pending !== undefined || closed || now() < entry.retryAt) return;
    fetchEntry(entry).catch((e: unknown) => {
      const error = ConnectError.from(e);
      if (unreachable(error)) entry.retryAt = now() + retryDelayMs;
      else if (error.code !== Code.NotFound && error.code !== Code.Canceled) {
        // not hidden: the next read fetches and gets the error itself
        invalidate(entry);
        hooks.error?.(error, "refresh");
      }
    });
  }

  async function read(name: string, options: PromptSelector | undefined): Promise<CachedPrompt> {
    if (ready !== undefined) await ready;
    if (closed) throw closedError();
    const { version, label } = options ?? {};
    if (version !== undefined && version !== 0 && label !== undefined && label !== "") {
      throw new ConnectError("label: set version or label, not both", Code.InvalidArgument);
    }
    const p = options?.project === undefined ? defaultProject : project(options.project);
    const entry = entryFor(p, name, selectorOf(options));
    if (entry.hit !== undefined && entry.staleHit !== undefined && !entry.invalid) {
      if (isFresh(entry)) {
        onHit?.(name, p.name);
        return entry.hit;
      }
      // past its TTL while the feed is down: serve it, refresh it once in the background
      refreshInBackground(entry);
      hooks.staleServe?.(name, p.name, "ttl");
      return entry.staleHit;
    }
    hooks.miss?.(name, p.name);
    try {
      const prompt = await fetchEntry(entry);
      return { prompt, stale: false, source: "network" };
    } catch (e) {
      const error = ConnectError.from(e);
      if (!unreachable(error)) throw error;
      if (entry.staleHit !== undefined) {
        hooks.staleServe?.(name, p.name, "unavailable");
        return entry.staleHit;
      }
      const fallback = fallbacks.get(name);
      if (fallback !== undefined) {
        hooks.staleServe?.(name, p.name, "fallback");
        return fallback;
      }
      throw new ConnectError(
        `prompt ${name} is not cached and prompt-service is unreachable: ${error.rawMessage}`,
        error.code,
        error.metadata,
        undefined,
        error,
      );
    }
  }

  function get(name: string, options?: PromptSelector): Promise<CachedPrompt> {
    const wanted = options?.project;
    const entry = findEntry(
      wanted === undefined || wanted === defaultName ? defaultProject : projects.get(wanted),
      name,
      options,
    );
    if (entry !== undefined && entry.hit !== undefined && !closed && isFresh(entry)) {
      onHit?.(name, entry.project.name);
      return Promise.resolve(entry.hit);
    }
    return read(name, options);
  }

  function renderable(read: CachedPrompt, name: string): RenderableVersion {
    let r = renderables.get(read.prompt);
    if (r === undefined) {
      r = renderableOf(read.prompt, name);
      renderables.set(read.prompt, r);
    }
    return r;
  }

  function render(
    name: string,
    variables: Record<string, JsonValue>,
    options?: PromptSelector,
  ): Promise<RenderedPrompt> {
    return renderLocally({ get, renderable }, name, variables, options);
  }

  function pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      closer.signal.addEventListener("abort", () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Resolves when `done()` holds, re-checked on each change of the project's feed; rejects on close(). */
  function until(p: ProjectState, done: () => boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (closed) {
          p.listeners.delete(check);
          reject(closedError());
        } else if (done()) {
          p.listeners.delete(check);
          resolve();
        }
      };
      p.listeners.add(check);
      check();
    });
  }

  async function fresh(projectName: string = defaultName): Promise<void> {
    if (closed) throw closedError();
    if (!watch) {
      throw new ConnectError(
        "the prompt cache does not follow the change feed (watch: false)",
        Code.FailedPrecondition,
      );
    }
    const p = project(projectName);
    for (;;) {
      await until(p, () => p.feed === "up" || p.feed === "refused");
      if (p.feed === "refused")
        throw p.refusal ?? new ConnectError("change feed refused", Code.PermissionDenied);
      let head: number;
      try {
        const answer = await client.listPromptEvents(
          { project: p.name, afterSequence: headSequence, pageSize: 1 },
          { timeoutMs, signal: closer.signal },
        );
        head = Number(answer.lastSequence);
      } catch (e) {
        const error = ConnectError.from(e);
        if (closed) throw closedError();
        if (!unreachable(error)) throw error;
        // the feed notices too; ask again once it reconnects, or shortly
        await Promise.race([
          until(p, () => p.feed !== "up"),
          pause(options.reconnect?.initialDelayMs ?? 100),
        ]);
        continue;
      }
      await until(p, () => p.feed !== "up" || (p.position ?? -1) >= head);
      if (p.feed === "up") return;
    }
  }

  // ---- persistence ---------------------------------------------------------------------------------------

  let dirty = false;
  let saveTimer: ReturnType<typeof setTimeout> | undefined;
  let saving: Promise<void> | undefined;

  function snapshot(): SnapshotEntry[] {
    const out: SnapshotEntry[] = [];
    for (const p of projects.values()) {
      for (const entry of allEntries(p)) {
        if (entry.prompt === undefined) continue;
        out.push({
          project: p.name,
          name: entry.name,
          selector: entry.selector,
          fetchedAt: entry.fetchedAt,
          prompt: entry.prompt,
        });
      }
    }
    return out;
  }

  async function saveNow(): Promise<void> {
    while (saving !== undefined) await saving;
    if (!dirty || store === undefined) return;
    dirty = false;
    const data = encodeSnapshot(snapshot());
    saving = store
      .save(data)
      .catch((e: unknown) => hooks.error?.(e, "store"))
      .finally(() => {
        saving = undefined;
      });
    await saving;
  }

  function scheduleSave(): void {
    if (store === undefined) return;
    dirty = true;
    if (saveTimer !== undefined || closed) return;
    saveTimer = setTimeout(() => {
      saveTimer = undefined;
      void saveNow();
    }, saveDelayMs);
    (saveTimer as { unref?: () => void }).unref?.();
  }

  async function load(): Promise<void> {
    if (store === undefined) return;
    try {
      const data = await store.load();
      if (data === undefined) return;
      for (const saved of decodeSnapshot(data)) {
        const entry = entryFor(project(saved.project), saved.name, saved.selector);
        if (entry.prompt !== undefined || entry.pending !== undefined) continue;
        // stale until revalidated: the first read fetches, and falls back to this while unreachable
        setPrompt(entry, deepFreeze(saved.prompt), {
          fetchedAt: saved.fetchedAt,
          covered: false,
          invalid: true,
        });
      }
    } catch (e) {
      hooks.error?.(e, "store");
    }
  }

  let ready: Promise<void> | undefined = store === undefined ? undefined : load();
  void ready?.then(() => {
    ready = undefined;
  });

  async function close(): Promise<void> {
    if (closed) return;
    closed = true;
    closer.abort(closedError());
    for (const p of projects.values()) notify(p);
    await Promise.allSettled(feeds);
    if (saveTimer !== undefined) clearTimeout(saveTimer);
    saveTimer = undefined;
    if (ready !== undefined) await ready;
    await saveNow();
  }

  return { get, render, fresh, close };
}
