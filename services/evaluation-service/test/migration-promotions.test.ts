import { createMigrator } from "@autoforge/db";
import { uuidv7 } from "uuidv7";
import { describe, expect, it } from "vitest";
import { migrationsFolder } from "../src/db/migrations-folder.js";
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
 * 0007_promotions on a database holding rows: up -> down -> up. Down drops the policies and the decisions (and
 * only them: evaluations, results, datasets and the audit chain stay); up brings the tables back working, and
 * the database refuses what the gate never does (a decision rewritten, deleted, or inserted PROMOTED).
 */
describe("migration 0007_promotions", () => {
  it("up -> down -> up with policies and decisions; the tables' rules hold again", async () => {
    const { db } = await openTestDatabase();
    const promptId = uuidv7();
    const svc = await startEvaluationService(
      db,
      stubPromptClient(new Map([[promptId, { project: "user:alice" }]])),
    );
    const evaluations = await svc.clients.evaluations("alice");
    const e = must((await evaluations.createEvaluation({ promptId, provider: "p", model: "m" })).evaluation);
    await evaluations.startEvaluation({ id: e.id });
    await evaluations.recordTestResults({ evaluationId: e.id, results: [result(1)] });
    const dataset = must((await (await svc.clients.datasets("alice")).createDataset({ name: "qa" })).dataset);
    const promotions = await svc.clients.promotionsAs({ sub: "alice", roles: ["admin"] });
    await promotions.setPromotionPolicy({
      policy: { label: "production", datasetId: dataset.id, minPassRate: 0.5 },
    });
    // a refusal on record: no experiment of the version exists
    await expectCode(
      (await svc.clients.promotionsAs({ sub: "alice", roles: ["publisher"] })).promotePromptVersion({
        promptId,
        version: 1,
        label: "production",
      }),
      Code.FailedPrecondition,
    );
    const count = async (table: string) =>
      Number((await db.client.execute(`SELECT count(*) AS n FROM ${table}`)).rows[0]?.n);
    expect([await count("promotion_policies"), await count("promotions")]).toEqual([1, 1]);

    const migrator = createMigrator(db, { migrationsFolder });
    const newer = await migrationsFrom(migrator, "0007_promotions");
    let rows = await tableCounts(db);
    for (const round of [1, 2]) {
      expect(await migrator.down(newer.length), `round ${round}`).toEqual([...newer].reverse());
      const left = await db.client.execute(
        "SELECT name FROM sqlite_master WHERE name LIKE 'promotion%' OR tbl_name LIKE 'promotion%'",
      );
      expect(left.rows).toEqual([]);
      expect(await tableCounts(db)).toEqual(rows);
      expect(await migrator.up()).toEqual(newer);
      expect(await tableCounts(db)).toEqual(rows);
      await promotions.setPromotionPolicy({ policy: { label: `round-${round}`, datasetId: dataset.id } });
      expect(await count("promotion_policies")).toBe(1);
      rows = await tableCounts(db); // the policy's audit row is this round's
    }
    // the decisions' rules, again in force
    const insert = (status: string) =>
      db.client.execute({
        sql: `INSERT INTO promotions (id, project_id, prompt_id, label, to_version, status, rules, policy, requested_by, created_at, updated_at)
              VALUES (?, 'user:alice', ?, 'production', 1, ?, '[]', '{}', 'alice', 1, 1)`,
        args: [uuidv7(), promptId, status],
      });
    await expect(insert("promoted")).rejects.toThrow(/starts PENDING or REFUSED/);
    await insert("refused");
    await expect(db.client.execute("UPDATE promotions SET status = 'promoted'")).rejects.toThrow(
      /only a PENDING/,
    );
    await expect(db.client.execute("DELETE FROM promotions")).rejects.toThrow(/never deleted/);
    await expect(
      db.client.execute({
        sql: "INSERT INTO promotion_policies (project_id, label, dataset_id, updated_by, updated_at) VALUES ('user:bob', 'x', ?, 'bob', 1)",
        args: [dataset.id],
      }),
    ).rejects.toThrow(/does not exist in the policy's project/);
  });
});
