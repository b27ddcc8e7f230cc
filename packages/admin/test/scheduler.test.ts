import type { Database } from "@autoforge/db";
import { sql } from "drizzle-orm";
import { Registry } from "prom-client";
import { describe, expect, onTestFinished } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import {
  allMaintenanceTasks,
  createMaintenance,
  createMaintenanceScheduler,
  type MaintenanceLogger,
  type MaintenanceScheduler,
} from "../src/index.js";
import { openDatabase, pollUntil, tempDir, testDatabase } from "./helpers.js";

const day = 24 * 60 * 60 * 1000;

/** Log lines kept in memory: [level, message, fields]. */
function memoryLogger() {
  const lines: [string, string, Record<string, unknown>][] = [];
  const logger: MaintenanceLogger = {
    info: (obj, msg) => lines.push(["info", msg, obj as Record<string, unknown>]),
    warn: (obj, msg) => lines.push(["warn", msg, obj as Record<string, unknown>]),
    error: (obj, msg) => lines.push(["error", msg, obj as Record<string, unknown>]),
  };
  return { logger, lines };
}

async function maintenanceRows(db: Database) {
  return db.read((tx) =>
    tx.all<{ action: string; actor: string; resource_type: string; resource_id: string; at: number }>(
      sql`SELECT action, actor, resource_type, resource_id, occurred_at AS at FROM audit_log ORDER BY seq`,
    ),
  );
}

/** Stopped when the test finishes, before its database closes. */
function stopAfterTest(scheduler: MaintenanceScheduler): MaintenanceScheduler {
  onTestFinished(() => scheduler.stop());
  return scheduler;
}

describe("maintenance scheduler", () => {
  itWith(
    "localMaintenance",
    "runs every task on tiny intervals, one audit row per completed task, logged with durations and counted",
    async () => {
      const db = await testDatabase();
      const metrics = new Registry();
      const { logger, lines } = memoryLogger();
      const maintenance = createMaintenance(db, { logger, metrics });
      const every5ms = Object.fromEntries(allMaintenanceTasks.map((t) => [t, 5]));
      const scheduler = stopAfterTest(
        createMaintenanceScheduler({ maintenance, intervals: every5ms, logger, retryDelayMs: 5 }),
      );
      await scheduler.start();
      await pollUntil(async () => {
        const done = new Set((await maintenanceRows(db)).map((r) => r.action));
        return allMaintenanceTasks.every((t) => done.has(`maintenance.${t}`));
      });
      await scheduler.stop();
      expect(maintenance.running).toBe(false);

      const rows = await maintenanceRows(db);
      for (const task of allMaintenanceTasks) {
        expect(rows).toContainEqual(
          expect.objectContaining({
            action: `maintenance.${task}`,
            actor: "scheduler",
            resource_type: "database",
            resource_id: task,
          }),
        );
      }
      const done = lines.filter(([level, msg]) => level === "info" && msg === "maintenance task done");
      expect(done.length).toBeGreaterThanOrEqual(allMaintenanceTasks.length);
      expect(done.every(([, , f]) => typeof f.durationMs === "number" && f.actor === "scheduler")).toBe(true);
      const text = await metrics.metrics();
      expect(text).toMatch(/maintenance_runs_total\{task="vacuum",outcome="ok"\} [1-9]/);
      expect(text).toMatch(/maintenance_last_success_timestamp_seconds\{task="reindex"\} \d+/);
    },
  );

  itWith(
    "localMaintenance",
    "after a restart on the same database, computes when each task is next due from the audit rows",
    async () => {
      const dir = tempDir();
      const t0 = Date.UTC(2026, 0, 1);
      let clock = t0 - 40 * day;
      const first = await openDatabase(dir);
      const before = createMaintenance(first, { now: () => clock });
      await before.run(["vacuum"], { actor: "root" }); // 40 days ago
      clock = t0;
      await before.run(["analyze"], { actor: "root" }); // "just now"
      await first.close();

      // a new process on the same file, its clock one second later
      const db = await openDatabase(dir);
      const maintenance = createMaintenance(db, { now: () => t0 + 1_000 });
      const scheduler = stopAfterTest(
        createMaintenanceScheduler({
          maintenance,
          intervals: { analyze: 7 * day, optimize: 0, vacuum: 30 * day, reindex: 90 * day },
          now: () => t0 + 1_000,
        }),
      );
      await scheduler.start();
      const due = new Map(scheduler.nextDue); // read before the timer's first turn
      expect(due.get("analyze")).toBe(t0 + 7 * day); // done just now: not due again for a week
      expect(due.get("vacuum")).toBe(t0 - 10 * day); // overdue: runs now
      expect(due.get("reindex")).toBe(t0 + 1_000 + 90 * day); // never ran, database age unknown: from this start
      expect(due.has("optimize")).toBe(false); // 0 disables
      expect(maintenance.lastCompleted.get("analyze")).toBe(t0); // GetDatabaseStats sees it after the restart

      await pollUntil(async () =>
        (await maintenanceRows(db)).some((r) => r.action === "maintenance.vacuum" && r.actor === "scheduler"),
      );
      await pollUntil(() => scheduler.nextDue.get("vacuum") === t0 + 1_000 + 30 * day);
      const actions = (await maintenanceRows(db)).map((r) => `${r.action} by ${r.actor}`);
      expect(actions).toEqual([
        "maintenance.vacuum by root",
        "maintenance.analyze by root",
        "maintenance.vacuum by scheduler",
      ]);
    },
  );

  itWith(
    "localMaintenance",
    "a due task that finds a run in progress is refused, and retried later",
    async () => {
      const db = await testDatabase();
      const { logger, lines } = memoryLogger();
      const maintenance = createMaintenance(db, { logger });
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const holding = db.write(() => held);
      const manual = maintenance.run(["analyze"], { actor: "root" }); // queued behind the held writer
      const scheduler = stopAfterTest(
        createMaintenanceScheduler({
          maintenance,
          intervals: { integrity_check: 1 },
          logger,
          retryDelayMs: 10,
        }),
      );
      await scheduler.start();
      await pollUntil(() => lines.some(([, msg]) => msg.includes("retrying later")));
      expect(await maintenanceRows(db)).toEqual([]);
      release();
      await holding;
      expect((await manual)[0]?.ok).toBe(true);
      await pollUntil(async () =>
        (await maintenanceRows(db)).some((r) => r.action === "maintenance.integrity_check"),
      );
      const rows = await maintenanceRows(db);
      expect(rows[0]).toMatchObject({ action: "maintenance.analyze", actor: "root" });
      expect(rows.some((r) => r.action === "maintenance.integrity_check" && r.actor === "scheduler")).toBe(
        true,
      );
    },
  );
});
