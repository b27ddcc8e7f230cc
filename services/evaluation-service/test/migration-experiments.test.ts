import { checkMigrations, createMigrator, type Database } from "@autoforge/db";
import { uuidv7 } from "uuidv7";
import { describe, expect, it } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import { evaluationInvariants } from "../src/db/invariants.js";
import { migrationsFolder } from "../src/db/migrations-folder.js";
import type { Schema } from "../src/db/schema.js";
import {
  migrationsFrom,
  must,
  openTestDatabase,
  result,
  startEvaluationService,
  stubPromptClient,
  tableCounts,
} from "./helpers.js";

/**
 * 0005_experiments on a database holding rows: up -> down -> up. Down drops the experiment columns, their index
 * and triggers, and nothing else: every evaluation (ad-hoc or experiment) and result stays, with its counts; up
 * adds them again (NULL: every row is ad-hoc) and experiments work.
 */
async function columns(db: Database<Schema>, table: string): Promise<string[]> {
  const rs = await db.client.execute(`SELECT name FROM pragma_table_info('${table}') ORDER BY cid`);
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
  const adHoc = must(
    (await evaluations.createEvaluation({ promptId, provider: "p", model: "m" })).evaluation,
  );
  await evaluations.startEvaluation({ id: adHoc.id });
  await evaluations.recordTestResults({ evaluationId: adHoc.id, results: [result(1), result(2)] });
  const ds = must((await datasets.createDataset({ name: `qa-${uuidv7()}` })).dataset);
  await datasets.createDatasetVersion({
    datasetId: ds.id,
    items: ["a", "b"].map((itemId) => ({ itemId, input: { case: "textInput", value: itemId } })),
  });
  const experiment = async () => {
    const e = must(
      (
        await evaluations.createEvaluation({
          promptId,
          provider: "p",
          model: "m",
          datasetId: ds.id,
          datasetVersion: 1,
          trialsPerItem: 2,
        })
      ).evaluation,
    );
    await evaluations.startEvaluation({ id: e.id });
    await evaluations.recordTestResults({
      evaluationId: e.id,
      results: [
        { ...result(3), datasetItemId: "a", trial: 1 },
        { ...result(4), datasetItemId: "b", trial: 2 },
      ],
    });
    return e.id;
  };
  return { evaluations, adHocId: adHoc.id, experimentId: await experiment(), experiment };
}

const added = {
  evaluations: ["dataset_id", "dataset_version", "trials_per_item"],
  test_results: ["dataset_item_id", "trial"],
};

describe("migration 0005_experiments", () => {
  it("up -> down -> up with rows: ad-hoc evaluations and their results survive, experiments work again", async () => {
    const { db } = await openTestDatabase();
    const { evaluations, adHocId, experimentId, experiment } = await seed(db);
    const migrator = createMigrator(db, { migrationsFolder });
    // 0005_experiments and every migration after it: what down reverts and up applies again
    const newer = await migrationsFrom(migrator, "0005_experiments");
    const withExperiments = {
      evaluations: await columns(db, "evaluations"),
      test_results: await columns(db, "test_results"),
    };
    let rows = await tableCounts(db);
    let adHocCount = 2;
    for (const round of [1, 2]) {
      expect(await migrator.down(newer.length), `round ${round}`).toEqual([...newer].reverse());
      for (const table of ["evaluations", "test_results"] as const) {
        expect(await columns(db, table)).toEqual(
          withExperiments[table].filter((c) => !added[table].includes(c)),
        );
      }
      expect(await tableCounts(db)).toEqual(rows);
      // read by SQL: this release's evaluation queries name the columns that are down
      const kept = await db.client.execute({
        sql: "SELECT test_count FROM evaluations WHERE id = ?",
        args: [adHocId],
      });
      expect(Number(kept.rows[0]?.test_count)).toBe(adHocCount);
      expect(await migrator.up()).toEqual(newer);
      expect(await tableCounts(db)).toEqual(rows);
      for (const [id, count] of [
        [adHocId, adHocCount],
        [experimentId, 2],
      ] as const) {
        const e = must((await evaluations.getEvaluation({ id })).evaluation);
        // the experiment lost its dataset with the columns: it is an ad-hoc evaluation with the same results
        expect(e).toMatchObject({ testCount: count, datasetId: "", trialsPerItem: 0 });
        const listed = (await evaluations.listTestResults({ evaluationId: id })).testResults;
        expect(listed.map((r) => [r.datasetItemId, r.trial])).toEqual(Array(count).fill(["", 0]));
      }
      // ad-hoc results still record, and a new experiment records its pairs
      const more = await evaluations.recordTestResults({
        evaluationId: adHocId,
        results: [result(round + 10)],
      });
      expect(more.recordedCount).toBe(1);
      adHocCount++;
      const again = await experiment();
      expect(must((await evaluations.getEvaluation({ id: again })).evaluation)).toMatchObject({
        testCount: 2,
        trialsPerItem: 2,
      });
      rows = await tableCounts(db);
    }
    expect(must((await evaluations.completeEvaluation({ id: adHocId })).evaluation).testCount).toBe(4);
  });

  itWith(
    "vacuumInto",
    "`migrate check` passes on a copy holding experiments (invariants included)",
    async () => {
      const { db } = await openTestDatabase();
      await seed(db);
      const migrator = createMigrator(db, { migrationsFolder });
      // 0005_experiments and every migration after it: what down reverts and up applies again
      const newer = await migrationsFrom(migrator, "0005_experiments");
      expect(await migrator.down(newer.length)).toEqual([...newer].reverse());
      expect(await checkMigrations(db, { migrationsFolder, invariants: evaluationInvariants })).toEqual({
        safe: true,
        pending: newer,
        problems: [],
      });
      expect(await migrator.up()).toEqual(newer);
      await seed(db);
      for (const invariant of evaluationInvariants) {
        const rs = await db.client.execute(invariant.sql);
        expect(rs.rows, invariant.name).toEqual([]);
      }
    },
  );
});
