import { checkMigrations, createMigrator, type Database } from "@autoforge/db";
import { uuidv7 } from "uuidv7";
import { describe, expect, it } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import { evaluationInvariants } from "../src/db/invariants.js";
import { migrationsFolder } from "../src/db/migrations-folder.js";
import type { Schema } from "../src/db/schema.js";
import {
  Code,
  expectCode,
  migrationsFrom,
  must,
  openTestDatabase,
  result,
  startEvaluationService,
  stubPromptClient,
  tableCounts,
} from "./helpers.js";

/**
 * 0004_datasets on a database holding rows: up -> down -> up. Down drops the dataset tables (and only them:
 * every evaluation, result, key and audit row stays); up creates them again, empty and with their triggers, and
 * the API works on them.
 */
async function objects(db: Database<Schema>, like: string): Promise<string[]> {
  const rs = await db.client.execute({
    sql: "SELECT name FROM sqlite_master WHERE type IN ('table', 'index') AND name LIKE ? AND name NOT LIKE 'sqlite_%' ORDER BY name",
    args: [like],
  });
  return rs.rows.map((r) => String(r.name));
}

async function seed(db: Database<Schema>) {
  const promptId = uuidv7();
  const svc = await startEvaluationService(
    db,
    stubPromptClient(new Map([[promptId, { project: "user:alice" }]])),
  );
  const evaluations = await svc.clients.evaluations("alice");
  const datasets = await svc.clients.datasets("alice");
  const e = must((await evaluations.createEvaluation({ promptId, provider: "p", model: "m" })).evaluation);
  await evaluations.startEvaluation({ id: e.id });
  await evaluations.recordTestResults({ evaluationId: e.id, results: [result(1), result(2)] });
  const ds = must((await datasets.createDataset({ name: "qa" })).dataset);
  await datasets.createDatasetVersion({
    datasetId: ds.id,
    items: [{ itemId: "a", input: { case: "textInput", value: "q" }, expectedOutput: "x" }],
  });
  await datasets.createDatasetVersion({ datasetId: ds.id, baseVersion: 1, removedItemIds: ["a"] });
  return { evaluations, datasets, evaluationId: e.id, datasetId: ds.id };
}

describe("migration 0004_datasets", () => {
  it("up -> down -> up with rows: down drops only the dataset tables, up brings them back working", async () => {
    const { db } = await openTestDatabase();
    const { datasets, evaluationId, datasetId } = await seed(db);
    const tables = await objects(db, "dataset%");
    expect(tables).toEqual([
      "dataset_items",
      "dataset_version_items",
      "dataset_versions",
      "datasets",
      "datasets_project_name_idx",
    ]);
    const triggers = (
      await db.client.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name LIKE 'dataset%'",
      )
    ).rows.length;
    expect(triggers).toBe(12);
    const migrator = createMigrator(db, { migrationsFolder });
    // 0004_datasets and every migration after it: what down reverts and up applies again
    const newer = await migrationsFrom(migrator, "0004_datasets");
    let rows = await tableCounts(db);

    for (const round of [1, 2]) {
      expect(await migrator.down(newer.length), `round ${round}`).toEqual([...newer].reverse());
      expect(await objects(db, "dataset%")).toEqual([]);
      expect(await tableCounts(db)).toEqual(rows);
      // read by SQL: this release's evaluation queries name 0005_experiments' columns, which are down too
      const kept = await db.client.execute({
        sql: "SELECT test_count FROM evaluations WHERE id = ?",
        args: [evaluationId],
      });
      expect(Number(kept.rows[0]?.test_count)).toBe(2);
      expect(await migrator.up()).toEqual(newer);
      expect(await objects(db, "dataset%")).toEqual(tables);
      expect(await tableCounts(db)).toEqual(rows);
      // the old dataset went with the tables; new ones work, names free again
      await expectCode(datasets.getDataset({ id: datasetId }), Code.NotFound);
      const again = must((await datasets.createDataset({ name: "qa", requestId: `round-${round}` })).dataset);
      const v = await datasets.createDatasetVersion({
        datasetId: again.id,
        items: [{ itemId: "b", input: { case: "jsonInput", value: { k: 1 } } }],
      });
      expect(v.version?.itemCount).toBe(1);
      // the rows of this round (key, audit) are the ones the next round keeps
      rows = await tableCounts(db);
    }
  });

  itWith(
    "vacuumInto",
    "`migrate check` passes on a copy holding dataset versions (invariants included)",
    async () => {
      const { db } = await openTestDatabase();
      await seed(db);
      const migrator = createMigrator(db, { migrationsFolder });
      // 0004_datasets and every migration after it: what down reverts and up applies again
      const newer = await migrationsFrom(migrator, "0004_datasets");
      expect(await migrator.down(newer.length)).toEqual([...newer].reverse());
      expect(await checkMigrations(db, { migrationsFolder, invariants: evaluationInvariants })).toEqual({
        safe: true,
        pending: newer,
        problems: [],
      });
      expect(await migrator.up()).toEqual(newer);
      await seed(db);
      // the invariants hold on live dataset rows too
      for (const invariant of evaluationInvariants) {
        const rs = await db.client.execute(invariant.sql);
        expect(rs.rows, invariant.name).toEqual([]);
      }
    },
  );
});
