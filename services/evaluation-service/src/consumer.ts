import { type PromptEvent, PromptEventType } from "@autoforge/contracts/prompt/v1";
import {
  type AuditEntryInput,
  appendAudit as appendUnkeyed,
  type Database,
  type SqlExecutor,
} from "@autoforge/db";
import { personalProject } from "@autoforge/server";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Logger } from "pino";
import {
  clearTombstone,
  deleteEvaluationsOfPrompt,
  evaluationsOfPromptCountQuery,
  findConsumerOffset,
  saveConsumerOffset,
  setTombstone,
} from "./db/repository.js";
import type { Schema } from "./db/schema.js";
import type { PromptClient } from "./prompt-client.js";

/**
 * The consumer of prompt-service's change feed (architecture §5: transactional outbox on the producer side,
 * at-least-once delivery, exactly-once effect here).
 *
 * Each event is applied AND `consumer_offsets.last_applied_sequence` advanced in ONE write transaction; an event
 * whose sequence is <= the stored offset is skipped. A crash between receiving and committing leaves the
 * offset where it was, and the event comes again after restart: nothing is lost, nothing is applied twice.
 *
 * It reads every project's feed: the token is evaluation-service's all-projects service principal
 * (`projects: "*"`), and the feed calls name no project (`project: ""` = every project's events for that
 * principal). A token without it (a legacy `roles: ["service"]` token) would see only its own personal
 * project's events, and purged prompts of every other project would keep their evaluations.
 *
 * Effects: PURGED deletes the prompt's evaluations in the event's project (their test results follow by ON
 * DELETE CASCADE) with one audit row, and leaves a `purged` tombstone; DELETED / RESTORED set / clear the
 * `deleted` tombstone that CreateEvaluation consults. Other event types only advance the offset — and since they
 * have no effect, the consumer persists their offset lazily (see `createPromptEventConsumer`).
 */
export const promptEventsConsumerName = "prompt-events";

/** The feed calls' `project`: none named, so the all-projects principal gets every project's events. */
const allProjectsFeed = "";

export type ApplyOutcome = "applied" | "skipped";

/**
 * The project the event's prompt belongs to. An event without one (from a prompt-service of before projects) is
 * of the owner's personal project, where all prompts of before projects are.
 */
export function eventProject(event: PromptEvent): string {
  return event.project === "" ? personalProject(event.ownerId) : event.project;
}

/** Event types with an effect here; every other type only moves the offset. */
function hasEffect(event: PromptEvent): boolean {
  return (
    event.type === PromptEventType.PURGED ||
    event.type === PromptEventType.DELETED ||
    event.type === PromptEventType.RESTORED
  );
}

export async function applyPromptEvent(
  db: Database<Schema>,
  event: PromptEvent,
  options: {
    consumer?: string;
    lastSeenSequence?: number;
    now?: () => number;
    signal?: AbortSignal;
    appendAudit?: ConsumerOptions["appendAudit"];
  } = {},
): Promise<ApplyOutcome> {
  const consumer = options.consumer ?? promptEventsConsumerName;
  const appendAudit = options.appendAudit ?? appendUnkeyed;
  const sequence = Number(event.sequence);
  const now = options.now ?? Date.now;
  return db.write(
    async (tx) => {
      const offset = await findConsumerOffset(tx, consumer);
      const applied = offset?.lastAppliedSequence ?? 0;
      if (sequence <= applied) return "skipped";
      const occurredAt = event.occurTime === undefined ? now() : timestampMs(event.occurTime);
      const actor = `consumer:${consumer}`;
      switch (event.type) {
        case PromptEventType.PURGED: {
          const project = eventProject(event);
          const [counts] = await evaluationsOfPromptCountQuery(tx, project, event.promptId);
          await deleteEvaluationsOfPrompt(tx, project, event.promptId);
          await setTombstone(tx, {
            promptId: event.promptId,
            ownerId: event.ownerId,
            state: "purged",
            sequence,
            occurredAt,
          });
          await appendAudit(tx, {
            actor,
            action: "evaluation.purge_cascade",
            resourceType: "prompt",
            resourceId: event.promptId,
            requestId: event.eventId,
            before: { evaluations: counts?.evaluations ?? 0, testResults: counts?.testResults ?? 0 },
            after: { sequence, tombstone: "purged" },
          });
          break;
        }
        case PromptEventType.DELETED:
          await setTombstone(tx, {
            promptId: event.promptId,
            ownerId: event.ownerId,
            state: "deleted",
            sequence,
            occurredAt,
          });
          await appendAudit(tx, {
            actor,
            action: "prompt_tombstone.set",
            resourceType: "prompt",
            resourceId: event.promptId,
            requestId: event.eventId,
            after: { sequence, tombstone: "deleted" },
          });
          break;
        case PromptEventType.RESTORED: {
          const removed = await clearTombstone(tx, event.promptId);
          if (removed.rowsAffected > 0) {
            await appendAudit(tx, {
              actor,
              action: "prompt_tombstone.clear",
              resourceType: "prompt",
              resourceId: event.promptId,
              requestId: event.eventId,
              before: { tombstone: "deleted" },
              after: { sequence },
            });
          }
          break;
        }
        default:
          break;
      }
      await saveConsumerOffset(tx, {
        name: consumer,
        lastAppliedSequence: sequence,
        lastSeenSequence: Math.max(offset?.lastSeenSequence ?? 0, sequence, options.lastSeenSequence ?? 0),
        updatedAt: now(),
      });
      return "applied";
    },
    { signal: options.signal },
  );
}

export interface ConsumerOptions {
  readonly db: Database<Schema>;
  readonly prompts: PromptClient;
  /**
   * The service's own bearer token: the all-projects service principal (`{ sub: "evaluation-service", roles:
   * ["service"], projects: "*" }`), to read every project's feed. Called before each (re)connection.
   */
  readonly token: () => Promise<string>;
  readonly logger: Logger;
  /** How audit rows are appended: the service's audit trail (its HMAC keys). Default: the unkeyed chain. */
  readonly appendAudit?: (tx: SqlExecutor, entry: AuditEntryInput) => Promise<unknown>;
  readonly name?: string;
  /** First reconnect delay bound; doubles per consecutive failure up to maxDelayMs (full jitter). */
  readonly initialDelayMs?: number;
  readonly maxDelayMs?: number;
  /** Consecutive failed watches (with the feed itself reachable) before falling back to polling. */
  readonly watchFailuresBeforePolling?: number;
  /** ListPromptEvents period while polling. */
  readonly pollIntervalMs?: number;
  /** Polls before trying WatchPromptEvents again. */
  readonly pollsBeforeWatch?: number;
  readonly pageSize?: number;
  /**
   * Events without an effect here (created, updated, labels) are not worth a write transaction each: their
   * offset is saved after this many of them, or this long after the last one, whichever comes first, and on
   * stop. Losing it in a crash only means those events come again and are skipped again.
   */
  readonly offsetFlushEvery?: number;
  readonly offsetFlushAfterMs?: number;
}

export interface ConsumerStatus {
  readonly mode: "stopped" | "catching-up" | "watching" | "polling" | "backing-off";
  readonly lastAppliedSequence: number;
  readonly lastSeenSequence: number;
  readonly lag: number;
  readonly consecutiveFailures: number;
}

export interface PromptEventConsumer {
  start(): void;
  /** Stops following the feed; resolves once the loop has ended (an event being applied is committed or rolled back). */
  stop(): Promise<void>;
  readonly status: ConsumerStatus;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });
}

/**
 * Follows WatchPromptEvents from the stored offset. Every (re)connection first catches up with ListPromptEvents
 * pages (which also reports the feed's newest sequence, for lag), then watches. A failure backs off
 * exponentially with full jitter (capped) and reconnects; after `watchFailuresBeforePolling` failed watches
 * while the feed itself answers (e.g. a proxy without HTTP/2 streaming, UNIMPLEMENTED), it polls
 * ListPromptEvents instead and tries the stream again now and then.
 */
export function createPromptEventConsumer(options: ConsumerOptions): PromptEventConsumer {
  const {
    db,
    prompts,
    logger: parentLogger,
    name = promptEventsConsumerName,
    initialDelayMs = 100,
    maxDelayMs = 5_000,
    watchFailuresBeforePolling = 3,
    pollIntervalMs = 1_000,
    pollsBeforeWatch = 30,
    pageSize = 500,
    offsetFlushEvery = 200,
    offsetFlushAfterMs = 250,
    appendAudit,
  } = options;
  const logger = parentLogger.child({ consumer: name });
  let mode: ConsumerStatus["mode"] = "stopped";
  let lastApplied = 0;
  let lastSeen = 0;
  let failures = 0;
  let controller: AbortController | undefined;
  let loop: Promise<void> | undefined;

  async function loadOffset(signal: AbortSignal) {
    const row = await db.read((tx) => findConsumerOffset(tx, name), { signal });
    lastApplied = row?.lastAppliedSequence ?? 0;
    lastSeen = Math.max(lastSeen, row?.lastSeenSequence ?? 0);
  }

  /** The newest event without an effect whose offset is not saved yet, and how many such events wait. */
  let unsaved: PromptEvent | undefined;
  let unsavedCount = 0;
  let flushTimer: NodeJS.Timeout | undefined;

  /** Saves the offset of the events without an effect (applyPromptEvent skips it if a newer one is saved). */
  async function flushOffset() {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    const event = unsaved;
    unsaved = undefined;
    unsavedCount = 0;
    if (event === undefined) return;
    try {
      await applyPromptEvent(db, event, { consumer: name, lastSeenSequence: lastSeen, appendAudit });
    } catch (e) {
      // the events come again after a restart and are skipped again: nothing is lost
      logger.warn({ err: e instanceof Error ? e.message : String(e) }, "could not save the consumer offset");
    }
  }

  async function apply(event: PromptEvent, signal: AbortSignal) {
    const sequence = Number(event.sequence);
    lastSeen = Math.max(lastSeen, sequence);
    if (sequence > lastApplied + 1) {
      logger.warn({ expected: lastApplied + 1, got: sequence }, "gap in the prompt event feed");
    }
    if (!hasEffect(event)) {
      lastApplied = Math.max(lastApplied, sequence);
      unsaved = event;
      if (++unsavedCount >= offsetFlushEvery) await flushOffset();
      else flushTimer ??= setTimeout(() => void flushOffset(), offsetFlushAfterMs);
      return;
    }
    // an event with an effect saves its own offset, superseding the unsaved one
    clearTimeout(flushTimer);
    flushTimer = undefined;
    unsaved = undefined;
    unsavedCount = 0;
    const outcome = await applyPromptEvent(db, event, {
      consumer: name,
      lastSeenSequence: lastSeen,
      signal,
      appendAudit,
    });
    lastApplied = Math.max(lastApplied, sequence);
    logger.debug(
      {
        sequence,
        type: PromptEventType[event.type],
        project: eventProject(event),
        promptId: event.promptId,
        outcome,
      },
      "prompt event",
    );
    if (event.type === PromptEventType.PURGED && outcome === "applied") {
      logger.info(
        { sequence, project: eventProject(event), promptId: event.promptId },
        "purged the evaluations of a purged prompt",
      );
    }
  }

  /** ListPromptEvents pages from the offset until the feed is exhausted. */
  async function catchUp(token: string, signal: AbortSignal) {
    for (;;) {
      const page = await prompts.listPromptEvents(
        { afterSequence: BigInt(lastApplied), pageSize, project: allProjectsFeed },
        { token, deadline: Date.now() + 10_000, signal },
      );
      lastSeen = Math.max(lastSeen, Number(page.lastSequence));
      for (const event of page.events) {
        if (signal.aborted) return;
        await apply(event, signal);
      }
      if (page.events.length < pageSize) break;
    }
    const lag = Math.max(0, lastSeen - lastApplied);
    logger.info(
      { lastAppliedSequence: lastApplied, lastSeenSequence: lastSeen, lag },
      "prompt event feed caught up",
    );
  }

  async function run(signal: AbortSignal) {
    let polling = false;
    let polls = 0;
    let watchStartedAt: number | undefined;
    await loadOffset(signal).catch((e: unknown) =>
      logger.error({ err: e }, "could not read the consumer offset"),
    );
    while (!signal.aborted) {
      let feedReachable = false;
      try {
        const token = await options.token();
        mode = "catching-up";
        await catchUp(token, signal);
        feedReachable = true;
        if (polling) {
          mode = "polling";
          failures = 0;
          await sleep(pollIntervalMs, signal);
          if (++polls >= pollsBeforeWatch) {
            polling = false;
            polls = 0;
          }
          continue;
        }
        mode = "watching";
        watchStartedAt = Date.now();
        const streamController = new AbortController();
        const onAbort = () => streamController.abort();
        signal.addEventListener("abort", onAbort, { once: true });
        try {
          for await (const message of prompts.watchPromptEvents(
            { afterSequence: BigInt(lastApplied), project: allProjectsFeed },
            { token, signal: streamController.signal },
          )) {
            if (message.event === undefined) continue;
            if (Number(message.event.sequence) <= lastApplied) continue;
            await apply(message.event, signal);
            failures = 0;
          }
        } finally {
          signal.removeEventListener("abort", onAbort);
          streamController.abort();
        }
        // The stream ended without an error (the server is draining): reconnect, after a short pause.
        throw new ConnectError("the event stream ended", Code.Unavailable);
      } catch (e) {
        if (signal.aborted) break;
        // A watch that ran for a while before failing (a restart of prompt-service) starts a new failure count.
        failures = watchStartedAt !== undefined && Date.now() - watchStartedAt > 5_000 ? 1 : failures + 1;
        watchStartedAt = undefined;
        const unimplemented = e instanceof ConnectError && e.code === Code.Unimplemented;
        if (feedReachable && (unimplemented || failures >= watchFailuresBeforePolling) && !polling) {
          polling = true;
          polls = 0;
          logger.warn(
            { err: String(e) },
            "WatchPromptEvents keeps failing: polling ListPromptEvents instead",
          );
        }
        const bound = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(failures - 1, 20));
        const delay = Math.round(Math.random() * bound);
        mode = "backing-off";
        logger.warn(
          {
            err: e instanceof Error ? e.message : String(e),
            failures,
            delayMs: delay,
            lastAppliedSequence: lastApplied,
            lastSeenSequence: lastSeen,
            lag: Math.max(0, lastSeen - lastApplied),
          },
          "prompt event feed unavailable; reconnecting",
        );
        await sleep(delay, signal);
      }
    }
    mode = "stopped";
  }

  return {
    start() {
      if (loop !== undefined) return;
      controller = new AbortController();
      const signal = controller.signal;
      loop = run(signal).catch((e: unknown) => {
        logger.error({ err: e }, "prompt event consumer stopped unexpectedly");
        mode = "stopped";
      });
    },
    async stop() {
      controller?.abort();
      await loop;
      await flushOffset();
      loop = undefined;
      controller = undefined;
    },
    get status(): ConsumerStatus {
      return {
        mode,
        lastAppliedSequence: lastApplied,
        lastSeenSequence: lastSeen,
        lag: Math.max(0, lastSeen - lastApplied),
        consecutiveFailures: failures,
      };
    },
  };
}
