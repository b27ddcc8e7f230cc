import {
  allMaintenanceTasks,
  type Maintenance,
  type MaintenanceLogger,
  type MaintenanceTaskName,
} from "./maintenance.js";

export interface MaintenanceSchedulerOptions {
  /** The same object AdminService.RunMaintenance uses: its one-run-at-a-time refusal covers both. */
  readonly maintenance: Maintenance;
  /** Interval per task in ms; 0 or absent: not scheduled. */
  readonly intervals: Partial<Readonly<Record<MaintenanceTaskName, number>>>;
  readonly logger?: MaintenanceLogger;
  /** Default Date.now; injectable for tests. */
  readonly now?: () => number;
  /** When a due run is refused (another run in progress) or a task fails, try again this much later. Default 5 min. */
  readonly retryDelayMs?: number;
}

export interface MaintenanceScheduler {
  /** Reads the history from the audit log, computes when each task is next due, arms the timer. */
  start(): Promise<void>;
  /** Disarms the timer and waits for a scheduled run in progress to end. */
  stop(): Promise<void>;
  /** When each scheduled task is next due (epoch ms). */
  readonly nextDue: ReadonlyMap<MaintenanceTaskName, number>;
}

// setTimeout holds at most 2^31-1 ms (~24.8 days) and fires at once beyond that: wake up earlier, re-check.
const maxTimerMs = 6 * 60 * 60 * 1000;

/**
 * Runs maintenance on a schedule inside the service. The last completion of each task comes from the audit log
 * (one `maintenance.<task>` row per completed task, written by `Maintenance.run`), so a restart does not reset
 * the schedule: a service restarted daily still VACUUMs monthly. A task that never ran is due one interval after
 * the database was created (its first migration), or after this start when that is unknown. Due tasks run
 * together, in the usual order, as one run; a run refused because another one is in progress (an admin's
 * RunMaintenance) is retried `retryDelayMs` later. The timer is unref()ed: it never keeps the process alive.
 */
export function createMaintenanceScheduler(options: MaintenanceSchedulerOptions): MaintenanceScheduler {
  const { maintenance, logger, now = Date.now, retryDelayMs = 5 * 60 * 1000 } = options;
  const intervals = new Map(
    allMaintenanceTasks
      .map((task) => [task, options.intervals[task] ?? 0] as const)
      .filter(([, interval]) => interval > 0),
  );
  const nextDue = new Map<MaintenanceTaskName, number>();
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let stopped = false;
  let started = false;

  function arm(): void {
    if (stopped || nextDue.size === 0) return;
    const next = Math.min(...nextDue.values());
    const delay = Math.min(Math.max(0, next - now()), maxTimerMs);
    timer = setTimeout(() => {
      timer = undefined;
      current = tick().finally(() => {
        current = undefined;
        arm();
      });
    }, delay);
    timer.unref();
  }

  async function tick(): Promise<void> {
    const at = now();
    const due = [...nextDue].filter(([, dueAt]) => dueAt <= at).map(([task]) => task);
    if (due.length === 0) return;
    const retryAt = () => now() + retryDelayMs;
    try {
      const results = await maintenance.run(due, { actor: "scheduler" });
      for (const r of results) {
        const interval = intervals.get(r.task) ?? 0;
        if (r.outcome === "not_applicable") nextDue.delete(r.task);
        else
          nextDue.set(r.task, r.ok ? (maintenance.lastCompleted.get(r.task) ?? now()) + interval : retryAt());
      }
    } catch (e) {
      // FAILED_PRECONDITION: an on-demand run is in progress. Anything else is unexpected; retry either way.
      const busy = e instanceof Error && e.name === "FailedPreconditionError";
      for (const task of due) nextDue.set(task, retryAt());
      const line = { tasks: due, retryInMs: retryDelayMs, err: e instanceof Error ? e.message : String(e) };
      if (busy) logger?.info(line, "maintenance due while another run is in progress: retrying later");
      else logger?.error(line, "scheduled maintenance failed");
    }
  }

  return {
    nextDue,
    async start() {
      if (started || stopped || intervals.size === 0) return;
      started = true;
      // a task the engine does not take (see notApplicableReason) is never due: said once, here
      for (const task of [...intervals.keys()]) {
        const reason = maintenance.notApplicable(task);
        if (reason === undefined) continue;
        intervals.delete(task);
        logger?.info(
          { task, detail: reason },
          "maintenance task not applicable on this engine: not scheduled",
        );
      }
      if (intervals.size === 0) return;
      const history = await maintenance.loadHistory();
      const baseline = history.databaseCreatedAt ?? now();
      for (const [task, interval] of intervals) {
        nextDue.set(task, (history.lastCompleted.get(task) ?? baseline) + interval);
      }
      logger?.info(
        {
          nextDue: Object.fromEntries([...nextDue].map(([task, at]) => [task, new Date(at).toISOString()])),
        },
        "maintenance schedule loaded",
      );
      arm();
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      await current;
    },
  };
}
