import { describe, expect, it } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import {
  compareVersionsQuery,
  deleteEvaluationsOfPrompt,
  evaluationsOfPromptCountQuery,
  listEvaluationsQuery,
  listTestResultsQuery,
  meanPassedScoreQuery,
  summaryQuery,
} from "../src/db/repository.js";
import type { EvaluationStatusValue } from "../src/db/schema.js";
import { must, openTestDatabase } from "./helpers.js";

/**
 * The handlers' own queries (built by the repository, rendered with .toSQL()) must be answered by an index
 * with no temporary B-tree. Plans are checked on a database with rows and ANALYZE statistics, and on an empty
 * one (no statistics), so neither planner input changes the answer.
 */
interface Sqlish {
  toSQL(): { sql: string; params: unknown[] };
}
type Db = Awaited<ReturnType<typeof openTestDatabase>>["db"];

async function planOf(db: Db, q: Sqlish): Promise<string[]> {
  const { sql, params } = q.toSQL();
  const rs = await db.client.execute({ sql: `EXPLAIN QUERY PLAN ${sql}`, args: params as never[] });
  return rs.rows.map((r) => String(r.detail));
}

const evalId = (i: number) => `01900000-0000-7000-8000-${i.toString().padStart(12, "0")}`;
const promptId = (i: number) => `01800000-0000-7000-8000-${i.toString().padStart(12, "0")}`;

async function seed(db: Db) {
  const statuses: EvaluationStatusValue[] = ["pending", "running", "completed", "failed"];
  await db.write(async (tx) => {
    for (let i = 0; i < 400; i++) {
      const status = must(statuses[i % 4]);
      await tx.run(
        `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, status, overall_score, error,
           test_count, passed_count, created_at, updated_at, started_at, completed_at)
         VALUES ('${evalId(i)}', 'user:owner-${i % 5}', 'owner-${i % 5}', '${promptId(i % 40)}', ${1 + (i % 3)}, 'p', 'm', '${status}',
           ${status === "completed" ? 0.5 : "NULL"}, '${status === "failed" ? "boom" : ""}', 0, 0, ${1000 + i}, ${1000 + i},
           ${status === "pending" ? "NULL" : 1000 + i}, ${status === "completed" || status === "failed" ? 1000 + i : "NULL"})`,
      );
    }
    // Results only for running evaluations (the trigger refuses the others), 30 each.
    for (let i = 1; i < 400; i += 4) {
      for (let r = 0; r < 30; r++) {
        await tx.run(
          `INSERT INTO test_results (id, evaluation_id, name, passed, score, latency_ms, created_at)
           VALUES ('${evalId(i)}-${r.toString().padStart(3, "0")}', '${evalId(i)}', 't', ${r % 2}, ${(r % 10) / 10}, ${r * 3}, ${2000 + r})`,
        );
      }
    }
  });
  await db.write((tx) => tx.run("ANALYZE"));
}

const after = { createdAt: 1100, id: evalId(100) };

describe("query plans", () => {
  for (const withStats of [false, true]) {
    // ANALYZE is maintenance: sqld refuses it, and a replica's statistics are its primary's
    itWith(
      withStats ? ["localMaintenance"] : [],
      `every list RPC and the review's query patterns use an index and no temp B-tree (${withStats ? "with" : "without"} ANALYZE statistics)`,
      async () => {
        const { db } = await openTestDatabase();
        if (withStats) await seed(db);
        const d = db.drizzle();
        const cases: [string, Sqlish, RegExp | RegExp[]][] = [];
        for (const prompt of [undefined, promptId(1)]) {
          for (const status of [undefined, "running", "completed"] as const) {
            for (const page of [undefined, after]) {
              const name = `ListEvaluations prompt=${prompt ?? "-"} status=${status ?? "-"} ${page ? "page 2" : "page 1"}`;
              const expected =
                prompt !== undefined
                  ? // the prompt drives (the project is a `+project_id` filter: a prompt's evaluations are all in its project)
                    /USING INDEX (evaluations_prompt_created_idx|evaluations_running_idx)/
                  : status === undefined
                    ? /USING INDEX evaluations_project_created_idx/
                    : /USING INDEX evaluations_project_status_created_idx/;
              cases.push([
                name,
                listEvaluationsQuery(d, {
                  projectId: "user:owner-1",
                  promptId: prompt,
                  status,
                  after: page,
                  limit: 21,
                }),
                expected,
              ]);
            }
          }
        }
        for (const passed of [undefined, true, false]) {
          for (const minScore of [undefined, 0.5]) {
            for (const afterId of [undefined, `${evalId(1)}-010`]) {
              cases.push([
                `ListTestResults passed=${passed ?? "-"} min_score=${minScore ?? "-"} ${afterId ? "page 2" : "page 1"}`,
                listTestResultsQuery(d, { evaluationId: evalId(1), passed, minScore, afterId, limit: 21 }),
                /USING INDEX test_results_evaluation_id_idx/,
              ]);
            }
          }
        }
        cases.push(
          // The review's pattern 2 is ListEvaluations by prompt (above, with the tenant filter). Pattern 3:
          [
            "review pattern 3: mean score of an evaluation's passed tests",
            meanPassedScoreQuery(d, evalId(1)),
            /USING COVERING INDEX test_results_evaluation_passed_score_idx \(evaluation_id=\? AND passed=\?\)/,
          ],
          [
            "GetEvaluationSummary",
            summaryQuery(d, evalId(1), { p50: 15, p95: 29 }),
            [
              /^SEARCH test_results USING COVERING INDEX test_results_evaluation_passed_score_idx \(evaluation_id=\?\)$/m,
              // the two ranks and the maximum
              /(SEARCH test_results USING COVERING INDEX test_results_evaluation_latency_idx \(evaluation_id=\?\)[\s\S]*){3}/,
            ],
          ],
          [
            "ComparePromptVersions",
            compareVersionsQuery(d, "user:owner-1", promptId(1)),
            /USING INDEX evaluations_prompt_version_idx/,
          ],
          [
            "PURGED: evaluations of a prompt",
            evaluationsOfPromptCountQuery(d, "user:owner-1", promptId(1)),
            /USING (COVERING )?INDEX evaluations_prompt_/,
          ],
          [
            "PURGED: delete evaluations of a prompt",
            deleteEvaluationsOfPrompt(d, "user:owner-1", promptId(1)),
            /USING (COVERING )?INDEX evaluations_prompt_/,
          ],
        );
        for (const [name, query, expected] of cases) {
          const plan = await planOf(db, query);
          const text = plan.join("\n");
          for (const line of [expected].flat()) {
            expect(text, `${name}\n${query.toSQL().sql}\n${text}`).toMatch(line);
          }
          expect(text, `${name}\n${text}`).not.toMatch(/TEMP B-TREE/);
          expect(text, `${name}\n${text}`).not.toMatch(/^SCAN (evaluations|test_results)$/m);
        }
      },
    );
  }

  it("the PURGED cascade finds a deleted evaluation's results by index (the FK child key)", async () => {
    const { db } = await openTestDatabase();
    // SQLite plans the ON DELETE CASCADE as a DELETE on the child key; it must be a search, not a scan.
    const rs = await db.client.execute({
      sql: "EXPLAIN QUERY PLAN DELETE FROM test_results WHERE evaluation_id = ?",
      args: [evalId(1)],
    });
    expect(rs.rows.map((r) => String(r.detail)).join("\n")).toMatch(
      /USING (COVERING )?INDEX test_results_evaluation_/,
    );
  });
});
