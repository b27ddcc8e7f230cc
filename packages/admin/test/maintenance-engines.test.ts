import { join } from "node:path";
import { MaintenanceTask, RunMaintenanceRequestSchema } from "@autoforge/contracts/admin/v1";
import { createDatabase, type Database } from "@autoforge/db";
import type { CallContext } from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { sql } from "drizzle-orm";
import { Registry } from "prom-client";
import { describe, expect, it, onTestFinished } from "vitest";
import { runSqldSuites, sqldForTest } from "../../../test/support/sqld.js";
import {
  allMaintenanceTasks,
  createAdminHandlers,
  createMaintenance,
  createMaintenanceScheduler,
  type MaintenanceLogger,
} from "../src/index.js";
import { openDatabase, pollUntil, tempDir } from "./helpers.js";

type Engine = "sqld" | "replica";
// Without an sqld binary these are registered as skipped; under CI=true they run and fail (test/support/sqld.ts).
const remoteEngines: readonly Engine[] = ["sqld", "replica"];

/** The services' audit table and a `notes` table on a fresh sqld (or a replica of one); closed after the test. */
async function remoteDatabase(engine: Engine): Promise<Database> {
  const server = await sqldForTest();
  const db = await createDatabase(
    engine === "sqld"
      ? { url: server.url, authToken: server.authToken }
      : { url: `file:${join(tempDir(), "replica.db")}`, syncUrl: server.url, authToken: server.authToken },
  );
  onTestFinished(() => db.close());
  // the same schema as openDatabase's, created through this handle
  const scratch = await openDatabase(tempDir());
  const ddl = await scratch.read((tx) =>
    tx.all<{ sql: string }>(
      sql`SELECT sql FROM sqlite_master WHERE type = 'table' AND name IN ('notes', 'audit_log')`,
    ),
  );
  await db.write(async (tx) => {
    for (const { sql: statement } of ddl) await tx.run(sql.raw(statement));
  });
  return db;
}

function memoryLogger() {
  const lines: [string, string, Record<string, unknown>][] = [];
  const logger: MaintenanceLogger = {
    info: (obj, msg) => lines.push(["info", msg, obj as Record<string, unknown>]),
    warn: (obj, msg) => lines.push(["warn", msg, obj as Record<string, unknown>]),
    error: (obj, msg) => lines.push(["error", msg, obj as Record<string, unknown>]),
  };
  return { logger, lines };
}

const fileManaged = ["analyze", "optimize", "vacuum", "reindex"] as const;
const ctx = {
  deadline: Date.now() + 60_000,
  signal: new AbortController().signal,
  principal: { subject: "root" },
  requestId: "req-1",
} as unknown as CallContext<never>;

describe.runIf(runSqldSuites).each(remoteEngines)("maintenance on %s", (engine) => {
  it("runs the integrity check; reports the file-level tasks as not applicable, not as failures, logged once", async () => {
    const db = await remoteDatabase(engine);
    const metrics = new Registry();
    const { logger, lines } = memoryLogger();
    const maintenance = createMaintenance(db, { logger, metrics });

    for (let round = 0; round < 2; round++) {
      const results = await maintenance.run(allMaintenanceTasks);
      for (const task of fileManaged) {
        expect(results.find((r) => r.task === task)).toMatchObject({
          outcome: "not_applicable",
          ok: true,
          detail: expect.stringMatching(/^not applicable on this engine/),
        });
      }
      expect(results.find((r) => r.task === "integrity_check")).toMatchObject({ outcome: "ok", ok: true });
    }
    expect(lines.filter(([level]) => level !== "info")).toEqual([]);
    const notApplicable = lines.filter(([, msg]) => msg.includes("not applicable"));
    expect(notApplicable.map(([, , f]) => f.task).sort()).toEqual([...fileManaged].sort());
    const text = await metrics.metrics();
    expect(text).toMatch(/maintenance_runs_total\{task="vacuum",outcome="not_applicable"\} 2/);
    expect(text).toMatch(/maintenance_runs_total\{task="integrity_check",outcome="ok"\} 2/);
    expect(text).not.toMatch(/outcome="failed"/);
    expect(maintenance.lastCompleted.has("vacuum")).toBe(false);

    // AdminService.RunMaintenance says so too
    const response = await createAdminHandlers({ db, maintenance }).runMaintenance(
      create(RunMaintenanceRequestSchema, {
        tasks: [MaintenanceTask.VACUUM, MaintenanceTask.INTEGRITY_CHECK],
      }),
      ctx,
    );
    expect(response.results).toMatchObject([
      {
        task: MaintenanceTask.VACUUM,
        ok: true,
        detail: expect.stringMatching(/^not applicable on this engine/),
      },
      { task: MaintenanceTask.INTEGRITY_CHECK, ok: true },
    ]);
  });

  it("the scheduler keeps running the integrity check and never schedules or retries the others", async () => {
    const db = await remoteDatabase(engine);
    const { logger, lines } = memoryLogger();
    const maintenance = createMaintenance(db, { logger });
    const every5ms = Object.fromEntries(allMaintenanceTasks.map((t) => [t, 5]));
    const scheduler = createMaintenanceScheduler({
      maintenance,
      intervals: every5ms,
      logger,
      retryDelayMs: 5,
    });
    onTestFinished(() => scheduler.stop());
    await scheduler.start();
    await pollUntil(async () => {
      const rows = await db.read((tx) =>
        tx.all<{ n: number }>(
          sql`SELECT count(*) AS n FROM audit_log WHERE action = 'maintenance.integrity_check'`,
        ),
      );
      return Number(rows[0]?.n ?? 0) >= 3;
    }, 20_000);
    await scheduler.stop();

    expect([...scheduler.nextDue.keys()]).toEqual(["integrity_check"]);
    expect(lines.filter(([level]) => level !== "info")).toEqual([]);
    const notScheduled = lines.filter(([, msg]) => msg.includes("not applicable"));
    expect(notScheduled.map(([, , f]) => f.task).sort()).toEqual([...fileManaged].sort());
    const audited = await db.read((tx) =>
      tx.all<{ action: string }>(sql`SELECT DISTINCT action FROM audit_log ORDER BY action`),
    );
    expect(audited).toEqual([{ action: "maintenance.integrity_check" }]);
  });
});

describe("maintenance on file", () => {
  it("every task applies: none is reported as not applicable", async () => {
    const db = await openDatabase(tempDir());
    const results = await createMaintenance(db).run(allMaintenanceTasks);
    expect(results.map((r) => [r.task, r.outcome])).toEqual(allMaintenanceTasks.map((t) => [t, "ok"]));
  });
});
