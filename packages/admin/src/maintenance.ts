import type { Database } from "@autoforge/db";
import { FailedPreconditionError } from "@autoforge/server";
import { sql } from "drizzle-orm";

export type MaintenanceTaskName = "analyze" | "optimize" | "vacuum" | "reindex" | "integrity_check";
export const allMaintenanceTasks: readonly MaintenanceTaskName[] = [
  "analyze",
  "optimize",
  "vacuum",
  "reindex",
  "integrity_check",
];

export interface MaintenanceResult {
  task: MaintenanceTaskName;
  ok: boolean;
  detail: string;
  durationMs: number;
}

export interface Maintenance {
  /** Runs tasks one at a time, in order. A second run while one is in progress: FAILED_PRECONDITION. */
  run(tasks: readonly MaintenanceTaskName[]): Promise<MaintenanceResult[]>;
  /** When each task last completed successfully (this process). */
  readonly lastCompleted: ReadonlyMap<MaintenanceTaskName, number>;
}

function errorDetail(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/**
 * The review's maintenance plan (ANALYZE weekly, VACUUM monthly, REINDEX quarterly) on demand.
 * ANALYZE / optimize / REINDEX run as write units of work (queued behind the service's writes); VACUUM cannot
 * run inside a transaction, so it runs on the writer connection outside one (`db.exclusive`), also queued
 * behind the in-flight writes.
 */
export function createMaintenance<TSchema extends Record<string, unknown>>(
  db: Database<TSchema>,
): Maintenance {
  let running = false;
  const lastCompleted = new Map<MaintenanceTaskName, number>();

  async function runOne(task: MaintenanceTaskName): Promise<{ ok: boolean; detail: string }> {
    switch (task) {
      case "analyze":
        await db.write((tx) => tx.run(sql`ANALYZE`));
        return { ok: true, detail: "statistics refreshed" };
      case "optimize":
        await db.write((tx) => tx.run(sql`PRAGMA optimize`));
        return { ok: true, detail: "PRAGMA optimize done" };
      case "reindex":
        await db.write((tx) => tx.run(sql`REINDEX`));
        return { ok: true, detail: "every index rebuilt" };
      case "vacuum":
        await db.exclusive((client) => client.execute("VACUUM"));
        return { ok: true, detail: "database file rebuilt" };
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
        return { ok, detail: `integrity_check: ${messages.slice(0, 20).join("; ")}; ${fk}` };
      }
    }
  }

  return {
    lastCompleted,
    async run(tasks) {
      if (running) throw new FailedPreconditionError("a maintenance run is already in progress");
      running = true;
      try {
        const results: MaintenanceResult[] = [];
        for (const task of tasks) {
          const started = performance.now();
          let outcome: { ok: boolean; detail: string };
          try {
            outcome = await runOne(task);
          } catch (e) {
            outcome = { ok: false, detail: errorDetail(e) };
          }
          if (outcome.ok) lastCompleted.set(task, Date.now());
          results.push({ task, ...outcome, durationMs: performance.now() - started });
        }
        return results;
      } finally {
        running = false;
      }
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
