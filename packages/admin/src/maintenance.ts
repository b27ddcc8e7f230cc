import {
  type AuditEntryInput,
  appendAudit as appendUnkeyed,
  type Database,
  type DatabaseMode,
  SCHEMA_MIGRATIONS_TABLE,
  type Tx,
} from "@autoforge/db";
import { FailedPreconditionError } from "@autoforge/server";
import { sql } from "drizzle-orm";
import { Counter, Gauge, type Registry } from "prom-client";

export type MaintenanceTaskName = "analyze" | "optimize" | "vacuum" | "reindex" | "integrity_check";
export const allMaintenanceTasks: readonly MaintenanceTaskName[] = [
  "analyze",
  "optimize",
  "vacuum",
  "reindex",
  "integrity_check",
];

export type MaintenanceOutcome = "ok" | "failed" | "not_applicable";

export interface MaintenanceResult {
  task: MaintenanceTaskName;
  /** False only for `failed`: a task that does not apply to the engine is not a failure. */
  ok: boolean;
  /** `not_applicable`: the engine does this itself or refuses it (see {@link notApplicableReason}); nothing ran. */
  outcome: MaintenanceOutcome;
  detail: string;
  durationMs: number;
}

/**
 * Why `task` does not apply to a database of this mode, or undefined when it does. sqld / Turso maintain their
 * own files and refuse ANALYZE, `PRAGMA optimize` and VACUUM (SQL_PARSE_ERROR: unsupported statement); REINDEX
 * rebuilds storage too, which is the server's business. An embedded replica's local file is written only by
 * replication, and its writes go to the primary, a remote server. The integrity check reads, and runs anywhere.
 */
export function notApplicableReason(mode: DatabaseMode, task: MaintenanceTaskName): string | undefined {
  if (mode === "file" || task === "integrity_check") return undefined;
  return mode === "remote"
    ? "not applicable on this engine: the libSQL server (sqld / Turso) maintains its own files"
    : "not applicable on this engine: an embedded replica's file is maintained by its primary";
}

/** pino-compatible subset. */
export interface MaintenanceLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface MaintenanceOptions {
  /** One line per task (task, actor, ok, durationMs, detail); failures at error. */
  readonly logger?: MaintenanceLogger;
  /** Registers `maintenance_runs_total{task,outcome}` and `maintenance_last_success_timestamp_seconds{task}`. */
  readonly metrics?: Registry;
  /** Clock for completion times (audit rows, lastCompleted). Default Date.now. */
  readonly now?: () => number;
  /** How audit rows are appended: the service's audit trail (its HMAC keys). Default: the unkeyed chain. */
  readonly appendAudit?: (tx: Tx<Record<string, unknown>>, entry: AuditEntryInput) => Promise<unknown>;
}

export interface MaintenanceRunOptions {
  /** Who asked: the admin principal's subject, or `scheduler`. Default `system`. */
  readonly actor?: string;
  /** The RPC's request id, carried into the audit rows. */
  readonly requestId?: string;
}

/** What the audit log says about past maintenance (it survives restarts; the in-memory state does not). */
export interface MaintenanceHistory {
  /** When each task last completed successfully, from its newest `maintenance.<task>` audit row. */
  readonly lastCompleted: ReadonlyMap<MaintenanceTaskName, number>;
  /** When the first migration was applied (the database's age), if the service keeps `schema_migrations`. */
  readonly databaseCreatedAt: number | undefined;
}

export interface Maintenance {
  /**
   * Runs tasks one at a time, in order. A second run while one is in progress: FAILED_PRECONDITION. Each task
   * that succeeds writes one audit row (`maintenance.<task>`, resource `database`/`<task>`, the actor).
   */
  run(tasks: readonly MaintenanceTaskName[], options?: MaintenanceRunOptions): Promise<MaintenanceResult[]>;
  /** When each task last completed successfully (this process, plus what `loadHistory` found). */
  readonly lastCompleted: ReadonlyMap<MaintenanceTaskName, number>;
  /** True while a run is in progress. */
  readonly running: boolean;
  /** Why `task` does not apply to this database's engine, or undefined when it does (the scheduler skips it). */
  notApplicable(task: MaintenanceTaskName): string | undefined;
  /** Reads the last completion of each task from the audit log and merges it into `lastCompleted`. */
  loadHistory(): Promise<MaintenanceHistory>;
}

function errorDetail(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** The audit action of a completed task; the scheduler reads the newest one per task back at start. */
export const maintenanceAuditAction = (task: MaintenanceTaskName): string => `maintenance.${task}`;

/**
 * The review's maintenance plan (ANALYZE weekly, VACUUM monthly, REINDEX quarterly) on demand; the scheduler
 * (`createMaintenanceScheduler`) and AdminService.RunMaintenance share one of these, so its "one run at a time"
 * refusal covers both. ANALYZE / optimize / REINDEX run as write units of work (queued behind the service's
 * writes) with their audit row in the same transaction; VACUUM cannot run inside a transaction, so it runs on the
 * writer connection outside one (`db.exclusive`), also queued behind in-flight writes, and its audit row follows
 * in a write unit of work, as does the integrity check's (a read unit of work). On sqld / Turso and on an embedded
 * replica only the integrity check applies; the others return `not_applicable` at once (see notApplicableReason).
 */
export function createMaintenance<TSchema extends Record<string, unknown>>(
  db: Database<TSchema>,
  options: MaintenanceOptions = {},
): Maintenance {
  const { logger, metrics, now = Date.now, appendAudit = appendUnkeyed } = options;
  let running = false;
  const lastCompleted = new Map<MaintenanceTaskName, number>();
  const runs =
    metrics === undefined
      ? undefined
      : new Counter({
          name: "maintenance_runs_total",
          help: "Maintenance tasks run, by task and outcome (ok / failed / not_applicable)",
          labelNames: ["task", "outcome"] as const,
          registers: [metrics],
        });
  const lastSuccess =
    metrics === undefined
      ? undefined
      : new Gauge({
          name: "maintenance_last_success_timestamp_seconds",
          help: "When each maintenance task last completed successfully (unix seconds; from the audit log after a restart)",
          labelNames: ["task"] as const,
          registers: [metrics],
        });
  /** Tasks already logged as not applicable: said once per process, at info. */
  const reportedNotApplicable = new Set<MaintenanceTaskName>();
  const completed = (task: MaintenanceTaskName, at: number) => {
    lastCompleted.set(task, at);
    lastSuccess?.set({ task }, at / 1000);
  };

  async function runOne(
    task: MaintenanceTaskName,
    record: (tx: Tx<TSchema>, detail: string) => Promise<void>,
  ): Promise<{ ok: boolean; detail: string }> {
    const inWrite = async (statement: string, detail: string) => {
      await db.write(async (tx) => {
        await tx.run(sql.raw(statement));
        await record(tx, detail);
      });
      return { ok: true, detail };
    };
    switch (task) {
      case "analyze":
        return inWrite("ANALYZE", "statistics refreshed");
      case "optimize":
        return inWrite("PRAGMA optimize", "PRAGMA optimize done");
      case "reindex":
        return inWrite("REINDEX", "every index rebuilt");
      case "vacuum": {
        const detail = "database file rebuilt";
        await db.exclusive((client) => client.execute("VACUUM"));
        await db.write((tx) => record(tx, detail));
        return { ok: true, detail };
      }
      case "integrity_check": {
        const { integrity, foreignKeys } = await db.read(async (tx) => ({
          integrity: await tx.all<{ integrity_check: string }>(sql`PRAGMA integrity_check`),
          foreignKeys: await tx.all<Record<string, unknown>>(sql`PRAGMA foreign_key_check`),
        }));
        const messages = integrity.map((r) => r.integrity_check);
        const ok = messages.length === 1 && messages[0] === "ok" && foreignKeys.length === 0;
        const fk =
          foreignKeys.length === 0
            ? "no foreign key violations"
            : `${foreignKeys.length} foreign key violations`;
        const detail = `integrity_check: ${messages.slice(0, 20).join("; ")}; ${fk}`;
        if (ok) await db.write((tx) => record(tx, detail));
        return { ok, detail };
      }
    }
  }

  return {
    lastCompleted,
    get running() {
      return running;
    },
    notApplicable: (task) => notApplicableReason(db.mode, task),
    async run(tasks, runOptions = {}) {
      if (running) {
        const description = "a maintenance run is already in progress";
        throw new FailedPreconditionError(description, {
          reason: "MAINTENANCE_RUNNING",
          preconditionViolations: [{ type: "STATE", subject: "maintenance", description }],
        });
      }
      running = true;
      const actor = runOptions.actor ?? "system";
      try {
        const results: MaintenanceResult[] = [];
        for (const task of tasks) {
          const reason = notApplicableReason(db.mode, task);
          if (reason !== undefined) {
            runs?.inc({ task, outcome: "not_applicable" });
            if (!reportedNotApplicable.has(task)) {
              reportedNotApplicable.add(task);
              logger?.info(
                { task, actor, engine: db.mode, detail: reason },
                "maintenance task not applicable",
              );
            }
            results.push({ task, ok: true, outcome: "not_applicable", detail: reason, durationMs: 0 });
            continue;
          }
          const started = performance.now();
          let at = now();
          const record = async (tx: Tx<TSchema>, detail: string) => {
            at = now();
            await appendAudit(tx, {
              actor,
              action: maintenanceAuditAction(task),
              resourceType: "database",
              resourceId: task,
              requestId: runOptions.requestId,
              after: { ok: true, detail },
              occurredAt: at,
            });
          };
          let outcome: { ok: boolean; detail: string };
          try {
            outcome = await runOne(task, record);
          } catch (e) {
            outcome = { ok: false, detail: errorDetail(e) };
          }
          const result: MaintenanceResult = {
            task,
            ...outcome,
            outcome: outcome.ok ? "ok" : "failed",
            durationMs: performance.now() - started,
          };
          if (result.ok) completed(task, at);
          runs?.inc({ task, outcome: result.ok ? "ok" : "failed" });
          const line = {
            task,
            actor,
            ok: result.ok,
            durationMs: Math.round(result.durationMs),
            detail: result.detail,
          };
          if (result.ok) logger?.info(line, "maintenance task done");
          else logger?.error(line, "maintenance task failed");
          results.push(result);
        }
        return results;
      } finally {
        running = false;
      }
    },
    async loadHistory() {
      const history = await db.read(async (tx) => {
        const found = new Map<MaintenanceTaskName, number>();
        for (const task of allMaintenanceTasks) {
          // audit_log_resource_idx (resource_type, resource_id, seq): one index probe per task
          const rows = await tx.all<{ at: number }>(
            sql`SELECT occurred_at AS at FROM audit_log
                WHERE resource_type = 'database' AND resource_id = ${task} AND action = ${maintenanceAuditAction(task)}
                ORDER BY seq DESC LIMIT 1`,
          );
          const at = rows[0]?.at;
          if (at !== undefined) found.set(task, Number(at));
        }
        let databaseCreatedAt: number | undefined;
        try {
          const rows = await tx.all<{ at: number | null }>(
            sql.raw(`SELECT min(applied_at) AS at FROM ${SCHEMA_MIGRATIONS_TABLE}`),
          );
          databaseCreatedAt = rows[0]?.at == null ? undefined : Number(rows[0].at);
        } catch {
          // a database without the migrator's table: its age is unknown
        }
        return { lastCompleted: found, databaseCreatedAt };
      });
      for (const [task, at] of history.lastCompleted) {
        if (at > (lastCompleted.get(task) ?? Number.NEGATIVE_INFINITY)) completed(task, at);
      }
      return history;
    },
  };
}

export interface DatabaseStats {
  pageSize: number;
  pageCount: number;
  freelistCount: number;
  journalMode: string;
  objects: { name: string; type: "table" | "index"; rowCount: number; sizeBytes: number }[];
}

export async function databaseStats<TSchema extends Record<string, unknown>>(
  db: Database<TSchema>,
): Promise<DatabaseStats> {
  return db.read(async (tx) => {
    const num = async (pragma: string) => {
      const rows = await tx.all<Record<string, number>>(sql.raw(`PRAGMA ${pragma}`));
      return Number(Object.values(rows[0] ?? {})[0] ?? 0);
    };
    const pageSize = await num("page_size");
    const pageCount = await num("page_count");
    const freelistCount = await num("freelist_count");
    const journal = await tx.all<{ journal_mode: string }>(sql`PRAGMA journal_mode`);
    const master = await tx.all<{ name: string; type: "table" | "index" }>(
      sql`SELECT name, type FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY type DESC, name`,
    );
    let sizes = new Map<string, number>();
    try {
      const rows = await tx.all<{ name: string; size: number }>(
        sql`SELECT name, sum(pgsize) AS size FROM dbstat GROUP BY name`,
      );
      sizes = new Map(rows.map((r) => [r.name, Number(r.size)]));
    } catch {
      // dbstat is a compile-time option; without it sizes are reported as -1
    }
    const objects: DatabaseStats["objects"] = [];
    for (const o of master) {
      let rowCount = -1;
      if (o.type === "table") {
        const quoted = `"${o.name.replaceAll('"', '""')}"`;
        const r = await tx.all<{ n: number }>(sql.raw(`SELECT count(*) AS n FROM ${quoted}`));
        rowCount = Number(r[0]?.n ?? 0);
      }
      objects.push({ name: o.name, type: o.type, rowCount, sizeBytes: sizes.get(o.name) ?? -1 });
    }
    return { pageSize, pageCount, freelistCount, journalMode: journal[0]?.journal_mode ?? "", objects };
  });
}
