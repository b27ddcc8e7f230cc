import type {
  ListPromptEventsRequest,
  PromptService,
  WatchPromptEventsRequest,
} from "@autoforge/contracts/prompt/v1";
import { resolvePageSize, type ServiceHandlers } from "@autoforge/server";
import { eventMessage } from "../convert.js";
import { lastEventSequence, listEventsQuery } from "../db/repository.js";
import { limits } from "../domain/limits.js";
import type { Ctx, HandlerDeps, PromptTx } from "./common.js";

type H = ServiceHandlers<typeof PromptService, PromptTx>;

const watchBatch = 500;

/**
 * The change feed (transactional outbox), per project: a service principal reads its project's events, the
 * all-projects principal (project `*`) every project's. Access is enforced by the server kit.
 */
export function createEventHandlers(deps: HandlerDeps) {
  const listPromptEvents: H["listPromptEvents"] = async (req: ListPromptEventsRequest, ctx: Ctx) => {
    const pageSize = resolvePageSize(req.pageSize, {
      default: limits.eventPageSizeDefault,
      max: limits.eventPageSizeMax,
    });
    return ctx.unitOfWork(async (tx) => {
      const rows = await listEventsQuery(tx, ctx.project.id, Number(req.afterSequence), pageSize);
      return {
        events: rows.map(eventMessage),
        lastSequence: BigInt(await lastEventSequence(tx, ctx.project.id)),
      };
    });
  };

  /**
   * Replays events after `after_sequence`, then follows the feed: woken by the in-process notifier after each
   * local commit, and by a poll for commits of other processes. Ends when the call's signal aborts (client
   * cancel, deadline, shutdown). Sequences are assigned under SQLite's single write lock, so reading
   * `sequence > last` after a commit never skips an event.
   */
  async function* watchPromptEvents(req: WatchPromptEventsRequest, ctx: Ctx) {
    let after = Number(req.afterSequence);
    const { signal } = ctx;
    const project = ctx.project.id;
    while (!signal.aborted) {
      const seen = deps.notifier.version;
      const rows = await deps.db.read((tx) => listEventsQuery(tx, project, after, watchBatch), { signal });
      for (const row of rows) {
        yield { event: eventMessage(row) };
        after = row.sequence;
      }
      if (rows.length < watchBatch) await deps.notifier.waitForChange(seen, deps.watchPollIntervalMs, signal);
    }
  }

  return { listPromptEvents, watchPromptEvents: watchPromptEvents as H["watchPromptEvents"] };
}
