import type { PromptEvent } from "@autoforge/contracts/prompt/v1";
import { Code, ConnectError } from "@connectrpc/connect";
import type { ProjectState } from "./entries.js";
import type { PromptCacheClient } from "./types.js";

/**
 * One project's change feed, followed for the cache's lifetime. The first connection reads the feed's head
 * (ListPromptEvents after the largest sequence: no history replay); every reconnection first catches up from
 * the last applied sequence with ListPromptEvents pages, so "up" means "has applied everything up to a point
 * the server confirmed"; then WatchPromptEvents follows from there. A failure reconnects after a delay with
 * full jitter; a refusal (PERMISSION_DENIED for a token that is not a service principal, ...) ends it for good,
 * and the project's entries live on their TTL.
 */

/** ListPromptEvents with this returns no events, only `last_sequence`: the head. */
export const headSequence = BigInt(Number.MAX_SAFE_INTEGER);

const catchUpPage = 1_000;

/** Codes after which reconnecting cannot help: the token may not read this project's feed. */
const refusals: ReadonlySet<Code> = new Set([
  Code.PermissionDenied,
  Code.NotFound,
  Code.InvalidArgument,
  Code.Unimplemented,
]);

export interface FeedDeps {
  readonly client: PromptCacheClient;
  /** Aborted by close(). */
  readonly signal: AbortSignal;
  readonly timeoutMs: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  readonly now: () => number;
  /** Applies one event (idempotent by sequence). */
  apply(project: ProjectState, event: PromptEvent): void;
  /** The feed connected (caught up), went down, or was refused. */
  setState(project: ProjectState, mode: "up" | "down" | "refused", error?: ConnectError): void;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}

/** Full jitter: uniform in [0, min(max, initial * 2^(failures-1))]. */
export function reconnectDelay(failures: number, initialDelayMs: number, maxDelayMs: number): number {
  const cap = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.random() * cap;
}

/** A stream that stayed up this long counts as healthy: the next failure starts the delays over. */
const healthyAfterMs = 5_000;

export async function runFeed(project: ProjectState, deps: FeedDeps): Promise<void> {
  const { client, signal, timeoutMs } = deps;
  const req = { project: project.name };
  let failures = 0;
  while (!signal.aborted) {
    let upAt: number | undefined;
    try {
      if (project.position === undefined) {
        const head = await client.listPromptEvents(
          { ...req, afterSequence: headSequence, pageSize: 1 },
          { signal, timeoutMs },
        );
        project.position ??= Number(head.lastSequence);
      } else {
        for (;;) {
          const page = await client.listPromptEvents(
            { ...req, afterSequence: BigInt(project.position), pageSize: catchUpPage },
            { signal, timeoutMs },
          );
          for (const event of page.events) deps.apply(project, event);
          if (page.events.length < catchUpPage) break;
        }
      }
      upAt = deps.now();
      deps.setState(project, "up");
      const stream = client.watchPromptEvents(
        { ...req, afterSequence: BigInt(project.position ?? 0) },
        { signal },
      );
      for await (const message of stream) {
        failures = 0;
        if (message.event !== undefined) deps.apply(project, message.event);
      }
      // the server ended the stream (it is shutting down): reconnect like after any drop
      throw new ConnectError("the change feed ended", Code.Unavailable);
    } catch (e) {
      if (signal.aborted) break;
      const error = ConnectError.from(e);
      if (refusals.has(error.code)) {
        deps.setState(project, "refused", error);
        return;
      }
      deps.setState(project, "down", error);
      if (upAt !== undefined && deps.now() - upAt >= healthyAfterMs) failures = 0;
      failures++;
      await sleep(reconnectDelay(failures, deps.initialDelayMs, deps.maxDelayMs), signal);
    }
  }
}
