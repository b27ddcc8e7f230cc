import { checkMigrations, createMigrator, type Database } from "@autoforge/db";
import { uuidv7 } from "uuidv7";
import { describe, expect } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import { evaluationInvariants } from "../src/db/invariants.js";
import { migrationsFolder } from "../src/db/migrations-folder.js";
import type { Schema } from "../src/db/schema.js";
import {
  Code,
  type EvalClient,
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
 * 0002_projects on a database holding rows: up -> down -> up. After each up, every evaluation (and its results)
 * is reachable by its owner's token of before projects (no project claims: its personal project `user:{sub}`),
 * and only by it; down restores the owner indexes and drops the column without touching a row.
 */
async function columns(db: Database<Schema>): Promise<string[]> {
  const rs = await db.client.execute("SELECT name FROM pragma_table_info('evaluations') ORDER BY cid");
  return rs.rows.map((r) => String(r.name));
}

async function evaluationIndexes(db: Database<Schema>): Promise<string[]> {
  const rs = await db.client.execute(
    "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'evaluations' AND name NOT LIKE 'sqlite_%' ORDER BY name",
  );
  return rs.rows.map((r) => String(r.name));
}

/** Evaluations in the schema of before projects (no project_id), with results, straight into the tables. */
async function seedLegacy(db: Database<Schema>, owner: string, promptId: string, results: number) {
  const id = uuidv7();
  await db.write(async (tx) => {
    await tx.run(
      `INSERT INTO evaluations (id, owner_id, prompt_id, prompt_version, provider, model, status, created_at, updated_at, started_at)
       VALUES ('${id}', '${owner}', '${promptId}', 1, 'p', 'm', 'running', 1, 1, 1)`,
    );
    for (let r = 0; r < results; r++) {
      await tx.run(
        `INSERT INTO test_results (id, evaluation_id, name, passed, score, latency_ms, created_at)
         VALUES ('${uuidv7()}', '${id}', 't${r}', ${r % 2}, 0.5, ${r}, 2)`,
      );
    }
  });
  return id;
}

/** What an owner sees of its evaluations through the API: each one, its results and its summary. */
async function view(client: EvalClient) {
  const list = (await client.listEvaluations({ pageSize: 100 })).evaluations;
  const out: Record<string, unknown> = {};
  for (const e of list) {
    out[e.id] = {
      evaluation: (await client.getEvaluation({ id: e.id })).evaluation,
      results: (await client.listTestResults({ evaluationId: e.id, pageSize: 100 })).testResults.map(
        (r) => r.id,
      ),
      summary: (await client.getEvaluationSummary({ id: e.id })).summary,
    };
  }
  return out;
}

describe("migration 0002_projects", () => {
  itWith(
    "vacuumInto",
    "up -> down -> up with rows of two owners: each row reachable by its old owner's personal token, only by it",
    async () => {
      const { db } = await openTestDatabase();
      const promptOf = { alice: uuidv7(), bob: uuidv7() } as const;
      const prompts = stubPromptClient(
        new Map([
          [promptOf.alice, { project: "user:alice" }],
          [promptOf.bob, { project: "user:bob" }],
        ]),
      );
      const svc = await startEvaluationService(db, prompts);
      const clients = {
        alice: await svc.clients.evaluations("alice"),
        bob: await svc.clients.evaluations("bob"),
      };
      // Rows written through the API (with 0002 applied), incl. a request_id to replay later.
      const created: Record<string, string[]> = { alice: [], bob: [] };
      for (const owner of ["alice", "bob"] as const) {
        const c = clients[owner];
        const req = { promptId: promptOf[owner], provider: "p", model: "m", requestId: `${owner}-1` };
        const e = must((await c.createEvaluation(req)).evaluation);
        await c.startEvaluation({ id: e.id });
        await c.recordTestResults({ evaluationId: e.id, results: [result(1), result(2), result(3)] });
        await c.completeEvaluation({ id: e.id });
        created[owner]?.push(e.id);
      }
      const migrator = createMigrator(db, { migrationsFolder });
      // 0002_projects and every migration after it: what down reverts and up applies again
      const newer = await migrationsFrom(migrator, "0002_projects");
      const withProjects = await columns(db);
      expect(withProjects).toContain("project_id");
      expect(await evaluationIndexes(db)).toEqual([
        "evaluations_project_created_idx",
        "evaluations_project_status_created_idx",
        "evaluations_prompt_compare_idx",
        "evaluations_prompt_created_idx",
        "evaluations_running_idx",
      ]);

      // down: the schema of before projects, every row kept
      const counts = await tableCounts(db);
      expect(await migrator.down(newer.length)).toEqual([...newer].reverse());
      // (0005_experiments' columns and 0006_scores' index go too: they are newer than project_id)
      const experimentColumns = ["dataset_id", "dataset_version", "trials_per_item"];
      expect(await columns(db)).toEqual(
        withProjects.filter((c) => c !== "project_id" && !experimentColumns.includes(c)),
      );
      expect(await evaluationIndexes(db)).toEqual([
        "evaluations_owner_created_idx",
        "evaluations_owner_status_created_idx",
        "evaluations_prompt_created_idx",
        "evaluations_prompt_version_idx",
        "evaluations_running_idx",
      ]);
      expect(await tableCounts(db)).toEqual(counts);
      // rows written by the previous release
      for (const owner of ["alice", "bob"] as const) {
        created[owner]?.push(await seedLegacy(db, owner, promptOf[owner], 4));
        created[owner]?.push(await seedLegacy(db, owner, promptOf[owner], 0));
      }
      const legacyCounts = await tableCounts(db);
      expect(legacyCounts.evaluations).toBe(6);
      expect(legacyCounts.test_results).toBe(6 + 8);

      // `migrate check` on a copy of these rows: up, integrity + foreign keys + invariants, down and up again
      expect(await checkMigrations(db, { migrationsFolder, invariants: evaluationInvariants })).toEqual({
        safe: true,
        pending: newer,
        problems: [],
      });
      expect(await tableCounts(db)).toEqual(legacyCounts);

      const seen: Record<string, unknown>[] = [];
      for (const round of [1, 2]) {
        expect(await migrator.up(), `round ${round}`).toEqual(newer);
        expect(await tableCounts(db)).toEqual(legacyCounts);
        const projects = await db.client.execute(
          "SELECT count(*) AS n FROM evaluations WHERE project_id <> 'user:' || owner_id",
        );
        expect(Number(projects.rows[0]?.n)).toBe(0);
        const views: Record<string, unknown> = {};
        for (const owner of ["alice", "bob"] as const) {
          const other = owner === "alice" ? "bob" : "alice";
          const mine = await view(clients[owner]);
          expect(Object.keys(mine).sort(), owner).toEqual([...(created[owner] ?? [])].sort());
          for (const v of Object.values(mine)) {
            expect(v).toMatchObject({ evaluation: { ownerId: owner, project: `user:${owner}` } });
          }
          const first = must(created[owner]?.[0]);
          expect((mine[first] as { results: string[] }).results).toHaveLength(3);
          expect((mine[must(created[owner]?.[1])] as { results: string[] }).results).toHaveLength(4);
          // the other owner's rows stay out of reach
          for (const id of created[other] ?? []) {
            await expectCode(clients[owner].getEvaluation({ id }), Code.NotFound);
            await expectCode(clients[owner].listTestResults({ evaluationId: id }), Code.NotFound);
          }
          // a request_id stored before the migrations replays (personal-project keys keep their form)
          const replay = await clients[owner].createEvaluation({
            promptId: promptOf[owner],
            provider: "p",
            model: "m",
            requestId: `${owner}-1`,
          });
          expect(replay.evaluation?.id).toBe(first);
          views[owner] = mine;
        }
        expect(await tableCounts(db)).toEqual(legacyCounts);
        seen.push(views);
        if (round === 1) {
          expect(await migrator.down(newer.length)).toEqual([...newer].reverse());
          expect(await tableCounts(db)).toEqual(legacyCounts);
        }
      }
      expect(seen[1]).toEqual(seen[0]);
      const status = await migrator.status();
      expect(status.map((m) => [m.tag, m.state])).toEqual(
        ["0000_init", "0001_triggers", ...newer].map((tag) => [tag, "applied"]),
      );
    },
  );
});
