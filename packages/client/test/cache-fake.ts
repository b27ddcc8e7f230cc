/**
 * A PromptService for the cache's unit tests: prompts in memory, resolved like prompt-service (by name;
 * `version`, `label`, `latest`, or by default the `production` label's version, else the current one), a change
 * feed with global sequences, and switches for outages, refusals and held answers.
 */
import {
  type ChatMessage,
  GetPromptResponseSchema,
  ListPromptEventsResponseSchema,
  type Prompt,
  type PromptEvent,
  PromptEventSchema,
  PromptEventType,
  PromptKind,
  PromptSchema,
  type TemplateVariable,
  type WatchPromptEventsResponse,
  WatchPromptEventsResponseSchema,
} from "@autoforge/contracts/prompt/v1";
import { create, type JsonObject, type MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { PromptCacheClient } from "../src/cache/index.js";

interface Version {
  version: number;
  content: string;
  messages: MessageInitShape<typeof import("@autoforge/contracts/prompt/v1").ChatMessageSchema>[];
  variables: MessageInitShape<typeof import("@autoforge/contracts/prompt/v1").TemplateVariableSchema>[];
  modelConfig: JsonObject | undefined;
}

interface StoredPrompt {
  id: string;
  project: string;
  name: string;
  kind: PromptKind;
  versions: Version[];
  labels: Map<string, number>;
  deleted: boolean;
}

type Req = {
  name?: string;
  label?: string;
  version?: number;
  project?: string;
  afterSequence?: bigint;
  pageSize?: number;
};
type Opts = { signal?: AbortSignal; timeoutMs?: number };

const unavailable = () => new ConnectError("connect ECONNREFUSED 127.0.0.1:1", Code.Unavailable);

export class FakePromptService {
  /** The project "" stands for (the token's default). */
  readonly defaultProject: string;
  readonly prompts = new Map<string, StoredPrompt>();
  readonly events: PromptEvent[] = [];
  sequence = 0;
  /** Every call: `getPrompt name label version`, `list after`, `watch after`. */
  readonly calls: string[] = [];
  /** All calls fail with UNAVAILABLE (the service is down). */
  down = false;
  /** getPrompt fails with this (once per call) while set. */
  getError: ConnectError | undefined;
  /** The feed calls fail with this (a refusal, e.g. PERMISSION_DENIED). */
  feedError: ConnectError | undefined;
  /** Clock of the events' occur_time. */
  now: () => number = Date.now;
  private nextId = 1;
  private readonly wakers = new Set<() => void>();
  private readonly streams = new Set<{ error: ConnectError | undefined; wake: () => void }>();
  private held: { release: () => void }[] | undefined;

  constructor(defaultProject = "acme") {
    this.defaultProject = defaultProject;
  }

  get client(): PromptCacheClient {
    return this as unknown as PromptCacheClient;
  }

  count(prefix: string): number {
    return this.calls.filter((c) => c.startsWith(prefix)).length;
  }

  openStreams(): number {
    return this.streams.size;
  }

  // ---- PromptService --------------------------------------------------------------------------------------

  async getPrompt(req: Req, opts?: Opts) {
    this.calls.push(`getPrompt ${req.name} ${req.label ?? ""} ${req.version ?? 0}`.trimEnd());
    // the answer is read now; a held call delivers it later (a response in flight while events commit)
    let answer: ReturnType<typeof create<typeof GetPromptResponseSchema>> | undefined;
    let error: unknown;
    try {
      answer = this.answer(req);
    } catch (e) {
      error = e;
    }
    if (this.held !== undefined) {
      const held = this.held;
      await new Promise<void>((release) => held.push({ release }));
    }
    if (opts?.signal?.aborted) throw ConnectError.from(opts.signal.reason);
    if (error !== undefined || answer === undefined) throw error;
    return answer;
  }

  private answer(req: Req) {
    if (this.down) throw unavailable();
    if (this.getError !== undefined) throw this.getError;
    const project = this.project(req.project);
    const p = [...this.prompts.values()].find((x) => x.project === project && x.name === req.name);
    if (p === undefined) throw new ConnectError(`prompt ${req.name} not found`, Code.NotFound);
    let version: number;
    if (req.version) version = req.version;
    else if (req.label === "latest") version = p.versions.length;
    else if (req.label) {
      const v = p.labels.get(req.label);
      if (v === undefined)
        throw new ConnectError(`label ${req.label} of prompt ${req.name} not found`, Code.NotFound);
      version = v;
    } else version = p.labels.get("production") ?? p.versions.length;
    if (version > p.versions.length) {
      throw new ConnectError(`version ${version} of prompt ${p.id} not found`, Code.NotFound);
    }
    return create(GetPromptResponseSchema, { prompt: this.message(p, version) });
  }

  async listPromptEvents(req: Req) {
    this.calls.push(`list ${req.afterSequence}`);
    if (this.down) throw unavailable();
    if (this.feedError !== undefined) throw this.feedError;
    const project = this.project(req.project);
    const mine = this.events.filter((e) => e.project === project);
    const after = Number(req.afterSequence ?? 0n);
    return create(ListPromptEventsResponseSchema, {
      events: mine.filter((e) => Number(e.sequence) > after).slice(0, req.pageSize ?? 100),
      lastSequence: mine.at(-1)?.sequence ?? 0n,
    });
  }

  async *watchPromptEvents(req: Req, opts?: Opts): AsyncGenerator<WatchPromptEventsResponse> {
    this.calls.push(`watch ${req.afterSequence}`);
    if (this.down) throw unavailable();
    if (this.feedError !== undefined) throw this.feedError;
    const project = this.project(req.project);
    let after = Number(req.afterSequence ?? 0n);
    const stream = { error: undefined as ConnectError | undefined, wake: () => {} };
    this.streams.add(stream);
    const signal = opts?.signal;
    try {
      for (;;) {
        if (signal?.aborted) throw ConnectError.from(signal.reason);
        if (stream.error !== undefined) throw stream.error;
        const next = this.events.find((e) => e.project === project && Number(e.sequence) > after);
        if (next !== undefined) {
          after = Number(next.sequence);
          yield create(WatchPromptEventsResponseSchema, { event: next });
          continue;
        }
        await new Promise<void>((resolve) => {
          stream.wake = resolve;
          this.wakers.add(resolve);
          signal?.addEventListener("abort", () => resolve(), { once: true });
        });
        this.wakers.delete(stream.wake);
      }
    } finally {
      this.streams.delete(stream);
    }
  }

  // ---- switches -------------------------------------------------------------------------------------------

  /** Ends every open watch with `error` (a dropped connection). */
  dropStreams(error: ConnectError = unavailable()): void {
    for (const s of this.streams) {
      s.error = error;
      s.wake();
    }
  }

  /** From now on getPrompt answers wait until `release()` (in call order); returns the releaser. */
  hold(): { waiting: () => number; releaseAll: () => void } {
    const held: { release: () => void }[] = [];
    this.held = held;
    return {
      waiting: () => held.length,
      releaseAll: () => {
        this.held = undefined;
        for (const h of held.splice(0)) h.release();
      },
    };
  }

  // ---- changes (each commits one event) -------------------------------------------------------------------

  createPrompt(
    name: string,
    body: { content?: string; messages?: Version["messages"]; variables?: Version["variables"] } = {},
    project = this.defaultProject,
  ): string {
    const id = `00000000-0000-7000-8000-${String(this.nextId++).padStart(12, "0")}`;
    const kind = body.messages === undefined ? PromptKind.TEXT : PromptKind.CHAT;
    this.prompts.set(id, {
      id,
      project,
      name,
      kind,
      versions: [this.version(1, body)],
      labels: new Map(),
      deleted: false,
    });
    this.emit(PromptEventType.CREATED, id, 1);
    return id;
  }

  update(
    id: string,
    body: { content?: string; messages?: Version["messages"]; variables?: Version["variables"] },
  ) {
    const p = this.must(id);
    p.versions.push(this.version(p.versions.length + 1, body));
    this.emit(PromptEventType.UPDATED, id, p.versions.length);
  }

  rename(id: string, name: string): void {
    this.must(id).name = name;
    this.emit(PromptEventType.UPDATED, id, this.must(id).versions.length);
  }

  setLabel(id: string, label: string, version: number): void {
    this.must(id).labels.set(label, version);
    this.emit(PromptEventType.LABEL_SET, id, version, label);
  }

  removeLabel(id: string, label: string): void {
    this.must(id).labels.delete(label);
    this.emit(PromptEventType.LABEL_REMOVED, id, 0, label);
  }

  remove(id: string): void {
    this.must(id).deleted = true;
    this.emit(PromptEventType.DELETED, id, this.must(id).versions.length);
  }

  restore(id: string): void {
    this.must(id).deleted = false;
    this.emit(PromptEventType.RESTORED, id, this.must(id).versions.length);
  }

  purge(id: string): void {
    const p = this.must(id);
    this.emit(PromptEventType.PURGED, id, p.versions.length);
    this.prompts.delete(id);
  }

  // ---- internals ------------------------------------------------------------------------------------------

  private project(p: string | undefined): string {
    return p === undefined || p === "" ? this.defaultProject : p;
  }

  private must(id: string): StoredPrompt {
    const p = this.prompts.get(id);
    if (p === undefined) throw new Error(`no prompt ${id}`);
    return p;
  }

  private version(
    version: number,
    body: { content?: string; messages?: Version["messages"]; variables?: Version["variables"] },
  ): Version {
    return {
      version,
      content: body.content ?? (body.messages === undefined ? `text v${version}` : ""),
      messages: body.messages ?? [],
      variables: body.variables ?? [],
      modelConfig: { model: `m${version}` },
    };
  }

  private emit(type: PromptEventType, id: string, version: number, label = ""): void {
    const p = this.must(id);
    this.sequence++;
    this.events.push(
      create(PromptEventSchema, {
        sequence: BigInt(this.sequence),
        eventId: `e${this.sequence}`,
        type,
        promptId: id,
        ownerId: "owner",
        version,
        label,
        occurTime: timestampFromMs(this.now()),
        project: p.project,
        name: p.name,
      }),
    );
    for (const wake of [...this.wakers]) wake();
  }

  private message(p: StoredPrompt, version: number): Prompt {
    const v = p.versions[version - 1] as Version;
    return create(PromptSchema, {
      id: p.id,
      project: p.project,
      name: p.name,
      kind: p.kind,
      title: p.name,
      content: v.content,
      messages: v.messages,
      variables: v.variables,
      version,
      currentVersion: p.versions.length,
      labels: { ...Object.fromEntries(p.labels), latest: p.versions.length },
      modelConfig: v.modelConfig,
      ...(p.deleted ? { deleteTime: timestampFromMs(this.now()) } : {}),
    });
  }
}

export type { ChatMessage, TemplateVariable };

/** An in-memory PromptCacheStore. */
export function memoryStore() {
  const state = { data: undefined as string | undefined, saves: 0 };
  return {
    state,
    load: async () => state.data,
    save: async (data: string) => {
      state.data = data;
      state.saves++;
    },
  };
}
