import type {
  ChatMessage,
  GetPromptRequest,
  ListPromptEventsRequest,
  Prompt,
  PromptEvent,
  PromptKind,
  PromptSchema,
  PromptService,
  ResolvedPrompt,
  WatchPromptEventsRequest,
} from "@autoforge/contracts/prompt/v1";
import type { JsonValue } from "@autoforge/render";
import type { JsonObject, MessageInitShape } from "@bufbuild/protobuf";
import type { Client, ConnectError } from "@connectrpc/connect";

/**
 * The three PromptService calls the cache makes. Any connect-es client of PromptService (any transport) is one;
 * a test can pass a small object with just these.
 */
export type PromptCacheClient = Pick<
  Client<typeof PromptService>,
  "getPrompt" | "listPromptEvents" | "watchPromptEvents"
>;

export type { GetPromptRequest, ListPromptEventsRequest, WatchPromptEventsRequest };

/** Persistence of the last-known-good entries (one opaque string; see `createFileStore` in "./node"). */
export interface PromptCacheStore {
  /** The string last saved, or undefined when there is none. */
  load(): Promise<string | undefined>;
  save(data: string): Promise<void>;
}

/** A prompt to serve for a name that was never cached, while prompt-service is unreachable. */
export type PromptFallback = MessageInitShape<typeof PromptSchema>;

/** Which version a read asks for, as GetPrompt takes it: by name, `version` N, or `label` L (`latest` = current). */
export interface PromptSelector {
  readonly label?: string;
  readonly version?: number;
  /** The project of the read; default: the cache's `project` option. */
  readonly project?: string;
}

export type StaleReason = "ttl" | "unavailable" | "fallback";
export type StreamState = "up" | "down";

/** Metrics hooks. Called synchronously on the read path: keep them cheap (increment a counter). */
export interface PromptCacheHooks {
  /** A read served from memory, fresh. */
  hit?(name: string, project: string): void;
  /** A read that waited for GetPrompt: the first read of a key, or one after an invalidation. */
  miss?(name: string, project: string): void;
  /**
   * A read served stale: past its TTL while the feed is down (refreshed in the background), a last-known-good
   * entry while prompt-service is unreachable, or the caller's fallback.
   */
  staleServe?(name: string, project: string, reason: StaleReason): void;
  /**
   * An event of the change feed was applied: `lagMs` = now − the event's occur_time; `entries` = how many
   * cached entries it invalidated (0 when none was cached).
   */
  invalidated?(lagMs: number, event: PromptEvent, entries: number): void;
  /** The project's feed stream connected (after catching up) or went down; `error` says why it went down. */
  streamState?(state: StreamState, project: string, error?: ConnectError): void;
  /** A failure nobody awaits: the feed, a background refresh, the store. */
  error?(error: unknown, where: "feed" | "refresh" | "store"): void;
}

export interface PromptCacheOptions {
  client: PromptCacheClient;
  /** Default project of get/render; "" = the token's default project. */
  project?: string;
  /** How long an entry counts as fresh while its project's feed is down or unavailable. Default 60,000. */
  ttlMs?: number;
  /** One WatchPromptEvents stream per project read keeps entries fresh. Default true. */
  watch?: boolean;
  /** Persistence of the last-known-good entries, loaded at creation. */
  store?: PromptCacheStore;
  /** Caller-supplied prompts by name, served when nothing was ever cached and prompt-service is unreachable. */
  fallbacks?: Record<string, PromptFallback>;
  hooks?: PromptCacheHooks;
  /** Clock for TTLs and lag (ms since the epoch). Default Date.now. */
  now?: () => number;
  /** Deadline of each GetPrompt and ListPromptEvents call. Default 5,000 ms. */
  timeoutMs?: number;
  /** Reconnect delays of the feed: full jitter, doubling from `initialDelayMs` up to `maxDelayMs` (100 / 5,000). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number };
  /** Store writes are coalesced: at most one per this many ms (default 1,000), and one at close(). */
  saveDelayMs?: number;
}

export interface CachedPrompt {
  /** The prompt at the version asked for (read-only: shared by every read of the entry). */
  readonly prompt: Prompt;
  /** True when it may be outdated: past its TTL, last-known-good during an outage, loaded from the store, or a fallback. */
  readonly stale: boolean;
  readonly source: "cache" | "network" | "fallback";
}

/** RenderPrompt's answer, rendered locally from cached versions, and whether any version used was stale. */
export interface RenderedPrompt {
  readonly kind: PromptKind;
  /** The rendered text (text prompts); "" for chat. */
  readonly text: string;
  /** The rendered messages (chat prompts); empty for text. */
  readonly messages: ChatMessage[];
  /** Model settings of the rendered version. */
  readonly modelConfig?: JsonObject | undefined;
  /** Every version used: the rendered one first, then the includes in order of first use. */
  readonly resolved: ResolvedPrompt[];
  readonly stale: boolean;
}

export interface PromptCache {
  /**
   * A prompt by name, as GetPrompt answers it (`label`, `version`, or by default the `production` label's
   * version, else the current one). The first read fetches, later ones are served from memory.
   */
  get(name: string, options?: PromptSelector): Promise<CachedPrompt>;
  /** RenderPrompt, locally: the same renderer and include rules as prompt-service, includes read through the cache. */
  render(
    name: string,
    variables: Record<string, JsonValue>,
    options?: PromptSelector,
  ): Promise<RenderedPrompt>;
  /**
   * Resolves once the project's stream is connected and has applied every event up to the feed's head as of
   * this call (for tests). Rejects when the feed is off (`watch: false`) or refused for the token.
   */
  fresh(project?: string): Promise<void>;
  /** Stops the streams and background work, writes the store once more. Reads after close() reject. */
  close(): Promise<void>;
}
