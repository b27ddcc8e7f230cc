import { MaintenanceTask } from "@autoforge/contracts/admin/v1";
import { createMigrator, verifyAuditChain } from "@autoforge/db";
import { describe, expect, it } from "vitest";
import { migrationsFolder } from "../src/db/migrations-folder.js";
import {
  Code,
  createPrompt,
  expectCode,
  must,
  openTestDatabase,
  result,
  startServices,
  tableCounts,
} from "./helpers.js";

async function triggerNames(db: Awaited<ReturnType<typeof startServices>>["db"]): Promise<string[]> {
  const rs = await db.client.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name");
  return rs.rows.map((r) => String(r.name));
}

async function auditColumns(db: Awaited<ReturnType<typeof startServices>>["db"]): Promise<string[]> {
  const rs = await db.client.execute("SELECT name FROM pragma_table_info('audit_log')");
  return rs.rows.map((r) => String(r.name));
}

describe("migrations", () => {
  it("apply up -> down -> up with rows intact; down to zero and up again works", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    const e = must(
      (await svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" })).evaluation,
    );
    await svc.alice.startEvaluation({ id: e.id });
    await svc.alice.recordTestResults({ evaluationId: e.id, results: [result(1), result(2)] });
    const rows = await tableCounts(svc.db);
    const migrator = createMigrator(svc.db, { migrationsFolder });
    expect((await migrator.status()).map((m) => [m.tag, m.state])).toEqual([
      ["0000_init", "applied"],
      ["0001_triggers", "applied"],
      ["0002_projects", "applied"],
      ["0003_audit_key_id", "applied"],
      ["0004_datasets", "applied"],
      ["0005_experiments", "applied"],
      ["0006_scores", "applied"],
      ["0007_promotions", "applied"],
    ]);
    const triggers = await triggerNames(svc.db);
    expect(triggers).toEqual([
      "audit_log_no_delete",
      "audit_log_no_update",
      "dataset_items_no_delete",
      "dataset_items_no_update",
      "dataset_version_items_no_delete",
      "dataset_version_items_no_update",
      "dataset_version_items_open",
      "dataset_versions_commit_count",
      "dataset_versions_immutable",
      "dataset_versions_next",
      "dataset_versions_no_delete",
      "datasets_identity_immutable",
      "datasets_latest_version",
      "datasets_no_delete",
      "evaluation_scores_categories",
      "evaluation_scores_immutable",
      "evaluation_scores_while_pending",
      "evaluations_experiment_dataset",
      "evaluations_experiment_immutable",
      "evaluations_experiment_valid",
      "evaluations_identity_immutable",
      "evaluations_project_immutable",
      "evaluations_project_valid",
      "evaluations_status_transition",
      "promotion_policies_dataset",
      "promotion_policies_dataset_update",
      "promotions_insert_status",
      "promotions_no_delete",
      "promotions_transition",
      "test_result_scores_immutable",
      "test_result_scores_of_result",
      "test_result_scores_value",
      "test_results_ad_hoc_no_item",
      "test_results_count",
      "test_results_experiment_item",
      "test_results_experiment_trial",
      "test_results_immutable",
      "test_results_only_while_running",
    ]);
    expect(await migrator.down(1)).toEqual(["0007_promotions"]);
    expect(await migrator.down(1)).toEqual(["0006_scores"]);
    expect(await migrator.down(1)).toEqual(["0005_experiments"]);
    expect(await migrator.down(1)).toEqual(["0004_datasets"]);
    expect(await migrator.down(1)).toEqual(["0003_audit_key_id"]);
    expect(await auditColumns(svc.db)).not.toContain("key_id");
    expect(await tableCounts(svc.db)).toEqual(rows);
    expect(await migrator.down(1)).toEqual(["0002_projects"]);
    expect(await migrator.down(1)).toEqual(["0001_triggers"]);
    expect(await triggerNames(svc.db)).toEqual([]);
    expect(await tableCounts(svc.db)).toEqual(rows);
    expect(await migrator.up()).toEqual([
      "0001_triggers",
      "0002_projects",
      "0003_audit_key_id",
      "0004_datasets",
      "0005_experiments",
      "0006_scores",
      "0007_promotions",
    ]);
    expect(await auditColumns(svc.db)).toContain("key_id");
    expect(await verifyAuditChain(svc.db)).toMatchObject({ ok: true, count: rows.audit_log });
    expect(await triggerNames(svc.db)).toEqual(triggers);
    expect(await tableCounts(svc.db)).toEqual(rows);
    expect((await svc.alice.getEvaluation({ id: e.id })).evaluation?.testCount).toBe(2);

    expect(await migrator.down(8)).toEqual([
      "0007_promotions",
      "0006_scores",
      "0005_experiments",
      "0004_datasets",
      "0003_audit_key_id",
      "0002_projects",
      "0001_triggers",
      "0000_init",
    ]);
    const left = await svc.db.client.execute(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations', 'sqlite_sequence')",
    );
    expect(left.rows).toEqual([]);
    expect(await migrator.up()).toEqual([
      "0000_init",
      "0001_triggers",
      "0002_projects",
      "0003_audit_key_id",
      "0004_datasets",
      "0005_experiments",
      "0006_scores",
      "0007_promotions",
    ]);
  });

  it("the database itself refuses out-of-range scores, latencies, statuses, bad projects and inconsistent states", async () => {
    const svc = await openTestDatabase();
    const id = "01900000-0000-7000-8000-000000000001";
    const bad = [
      `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, status, created_at, updated_at) VALUES ('${id}', 'user:o', 'o', 'p', 1, 'p', 'm', 'paused', 1, 1)`,
      `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, status, created_at, updated_at, completed_at) VALUES ('${id}', 'user:o', 'o', 'p', 1, 'p', 'm', 'completed', 1, 1, 1)`,
      `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, status, overall_score, created_at, updated_at, started_at, completed_at) VALUES ('${id}', 'user:o', 'o', 'p', 1, 'p', 'm', 'completed', 1.5, 1, 1, 1, 1)`,
      `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, metadata, created_at, updated_at) VALUES ('${id}', 'user:o', 'o', 'p', 1, 'p', 'm', 'not json', 1, 1)`,
      `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, created_at, updated_at) VALUES ('${id}', 'user:o', 'o', 'p', 0, 'p', 'm', 1, 1)`,
      // project_id: required (the column's default '' is refused) and at most 200 characters (trigger)
      `INSERT INTO evaluations (id, owner_id, prompt_id, prompt_version, provider, model, created_at, updated_at) VALUES ('${id}', 'o', 'p', 1, 'p', 'm', 1, 1)`,
      `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, created_at, updated_at) VALUES ('${id}', '${"x".repeat(201)}', 'o', 'p', 1, 'p', 'm', 1, 1)`,
    ];
    for (const sql of bad) {
      await expect(
        svc.db.write((tx) => tx.run(sql)),
        sql,
      ).rejects.toMatchObject({ name: "ConstraintViolationError" });
    }
    await svc.db.write((tx) =>
      tx.run(
        `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, status, created_at, updated_at, started_at) VALUES ('${id}', '${"x".repeat(200)}', 'o', 'p', 1, 'p', 'm', 'running', 1, 1, 1)`,
      ),
    );
    // an evaluation never moves to another project
    await expect(
      svc.db.write((tx) => tx.run(`UPDATE evaluations SET project_id = 'acme' WHERE id = '${id}'`)),
    ).rejects.toMatchObject({ name: "ConstraintViolationError", kind: "trigger" });
    const results = [
      `INSERT INTO test_results (id, evaluation_id, name, passed, score, latency_ms, created_at) VALUES ('r', '${id}', 't', 2, 0.5, 1, 1)`,
      `INSERT INTO test_results (id, evaluation_id, name, passed, score, latency_ms, created_at) VALUES ('r', '${id}', 't', 1, 1.01, 1, 1)`,
      `INSERT INTO test_results (id, evaluation_id, name, passed, score, latency_ms, created_at) VALUES ('r', '${id}', 't', 1, 0.5, -1, 1)`,
      `INSERT INTO test_results (id, evaluation_id, name, passed, score, latency_ms, created_at) VALUES ('r', 'missing', 't', 1, 0.5, 1, 1)`,
    ];
    for (const sql of results) {
      await expect(
        svc.db.write((tx) => tx.run(sql)),
        sql,
      ).rejects.toMatchObject({ name: "ConstraintViolationError" });
    }
  });
});

describe("AdminService", () => {
  it("audit chain verifies, events list and filter, maintenance runs, stats include the consumer lag", async () => {
    const svc = await startServices({ consumer: true });
    const prompt = await createPrompt(svc.alicePrompts);
    const e = must(
      (await svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" })).evaluation,
    );
    await svc.alice.failEvaluation({ id: e.id, reason: "r" });
    const verify = await svc.admin.verifyAuditChain({});
    expect(verify).toMatchObject({ ok: true, checkedCount: 2n });
    const events = await svc.admin.listAuditEvents({ resourceId: e.id });
    expect(events.events.map((x) => x.action)).toEqual(["evaluation.create", "evaluation.fail"]);
    expect(events.events.every((x) => x.actor === "alice")).toBe(true);
    const maintenance = await svc.admin.runMaintenance({
      tasks: [MaintenanceTask.ANALYZE, MaintenanceTask.INTEGRITY_CHECK],
    });
    expect(maintenance.results.map((r) => r.ok)).toEqual([true, true]);
    const stats = await svc.admin.getDatabaseStats({});
    expect(stats.objects.find((o) => o.name === "evaluations")?.rowCount).toBe(1n);
    // the refused call writes nothing; the consumer (running here) may store its offset meanwhile
    const { consumer_offsets: _before, ...before } = await tableCounts(svc.db);
    await expectCode(svc.adminAsUser.verifyAuditChain({}), Code.PermissionDenied);
    const { consumer_offsets: _after, ...after } = await tableCounts(svc.db);
    expect(after).toEqual(before);
  });
});
