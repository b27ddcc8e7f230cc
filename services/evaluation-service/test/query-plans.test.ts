import { describe, expect, it } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import { itemDefaultScoresQuery, itemScoreMeansQuery } from "../src/db/compare-repository.js";
import {
  copyMembersQuery,
  datasetByIdQuery,
  datasetByNameQuery,
  diffCountsQuery,
  diffQuery,
  itemsWithDigestsQuery,
  listDatasetsQuery,
  listItemsQuery,
  storedContentsQuery,
  versionDigestsQuery,
  versionQuery,
} from "../src/db/dataset-repository.js";
import {
  compareVersionsQuery,
  deleteEvaluationsOfPrompt,
  evaluationsOfPromptCountQuery,
  exportTestResultsQuery,
  incompleteItemsQuery,
  listEvaluationsQuery,
  listTestResultsQuery,
  meanPassedScoreQuery,
  recordedTrialCountQuery,
  recordedTrialsQuery,
  summaryQuery,
  trialsOfItemsQuery,
} from "../src/db/repository.js";
import type { EvaluationStatusValue } from "../src/db/schema.js";
import {
  flakyPassedItemCountQuery,
  flakyScoreItemCountQuery,
  itemPageQuery,
  itemScoresQuery,
  scoreDeclarationsQuery,
  scoreDistributionQuery,
  scoreMomentsQuery,
  scoreValuesAtQuery,
  scoreValuesQuery,
} from "../src/db/score-repository.js";
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

/**
 * Each case's plan matches its expected lines, uses no temp B-tree, and never scans a table `scanned` names.
 */
async function expectIndexPlans(
  db: Db,
  cases: readonly (readonly [string, Sqlish, RegExp | RegExp[]])[],
  scanned: RegExp,
): Promise<void> {
  for (const [name, query, expected] of cases) {
    const text = (await planOf(db, query)).join("\n");
    for (const line of [expected].flat()) {
      expect(text, `${name}\n${query.toSQL().sql}\n${text}`).toMatch(line);
    }
    expect(text, `${name}\n${text}`).not.toMatch(/TEMP B-TREE/);
    expect(text, `${name}\n${text}`).not.toMatch(scanned);
  }
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
         VALUES ('${evalId(i)}', 'user:owner-${i % 5}', 'owner-${i % 5}', '${promptId(i % 40)}', ${1 + (i % 3)}, 'p${i % 2}', 'm${i % 7}', '${status}',
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
            // ExportTestResults without an item: each batch is ListTestResults' query
            cases.push([
              `ExportTestResults passed=${passed ?? "-"} min_score=${minScore ?? "-"} a later batch`,
              exportTestResultsQuery(
                d,
                { evaluationId: evalId(1), passed, minScore, afterId: `${evalId(1)}-010`, limit: 501 },
                ["quality", "safe"],
              ),
              [
                /USING INDEX test_results_evaluation_id_idx \(evaluation_id=\? AND id>\?\)/,
                // each score value: a point lookup in test_result_scores' primary key
                /(SEARCH test_result_scores USING INDEX sqlite_autoindex_test_result_scores_1 \(result_id=\? AND name=\?\)[\s\S]*){2}/,
              ],
            ]);
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
            summaryQuery(d, evalId(1), { p50: 15, p95: 29, p99: 30 }),
            [
              /^SEARCH test_results USING COVERING INDEX test_results_evaluation_passed_score_idx \(evaluation_id=\?\)$/m,
              // the two ranks and the maximum
              /(SEARCH test_results USING COVERING INDEX test_results_evaluation_latency_idx \(evaluation_id=\?\)[\s\S]*){3}/,
            ],
          ],
          [
            "ComparePromptVersions",
            compareVersionsQuery(d, "user:owner-1", promptId(1)),
            // the prompt's range walked in (version, provider, model, dataset, dataset version) order: both the
            // GROUP BY and the ORDER BY are that order (no temp B-tree, asserted below for every case)
            /^SEARCH evaluations USING INDEX evaluations_prompt_compare_idx \(prompt_id=\?\)$/m,
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
        await expectIndexPlans(db, cases, /^SCAN (evaluations|test_results)$/m);
      },
    );
  }

  for (const withStats of [false, true]) {
    itWith(
      withStats ? ["localMaintenance"] : [],
      `ExportTestResults of one dataset item: a range of the item index, sorting only that item's trials (${withStats ? "with" : "without"} ANALYZE statistics)`,
      async () => {
        const { db } = await openTestDatabase();
        if (withStats) await seed(db);
        for (const filters of [{}, { passed: true, minScore: 0.5 }, { afterId: `${evalId(1)}-010` }]) {
          const query = exportTestResultsQuery(
            db.drizzle(),
            { evaluationId: evalId(1), datasetItemId: "item-7", limit: 501, ...filters },
            ["quality"],
          );
          const text = (await planOf(db, query)).join("\n");
          // the partial UNIQUE index (evaluation_id, dataset_item_id, trial) holds at most trials_per_item (100)
          // entries per item: the temp B-tree orders those few rows by id, and nothing else of the evaluation is read
          expect(text, text).toMatch(
            /^SEARCH test_results USING INDEX test_results_evaluation_item_trial_idx \(evaluation_id=\? AND dataset_item_id=\?\)$/m,
          );
          expect(text, text).not.toMatch(/test_results_evaluation_id_idx|^SCAN/m);
          expect(text, text).toMatch(
            /SEARCH test_result_scores USING INDEX sqlite_autoindex_test_result_scores_1/,
          );
          expect(text.split("\n").filter((l) => /TEMP B-TREE/.test(l))).toEqual([
            "USE TEMP B-TREE FOR ORDER BY",
          ]);
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

const datasetId = "01910000-0000-7000-8000-000000000001";

/** Two versions of a dataset (the second derived, with changes and removals), straight into the tables. */
async function seedDataset(db: Db) {
  await db.write(async (tx) => {
    await tx.run(
      `INSERT INTO datasets (id, project_id, owner_id, name, created_at, updated_at) VALUES ('${datasetId}', 'user:owner-1', 'owner-1', 'qa', 1, 1)`,
    );
    for (let i = 0; i < 20; i++) {
      await tx.run(
        `INSERT INTO datasets (id, project_id, owner_id, name, created_at, updated_at) VALUES ('01910000-0000-7000-8001-${String(i).padStart(12, "0")}', 'user:owner-${i % 5}', 'o', 'd${i}', 1, 1)`,
      );
    }
    const digest = (i: number, v: number) => (v * 1000 + i).toString(16).padStart(64, "0");
    for (const v of [1, 2]) {
      await tx.run(
        `INSERT INTO dataset_versions (dataset_id, version, parent_version, item_count, added_count, changed_count, removed_count, creator_id, created_at)
         VALUES ('${datasetId}', ${v}, ${v === 1 ? "NULL" : 1}, 300, 0, 0, 0, 'o', 1)`,
      );
      for (let i = 0; i < 300; i++) {
        const n = v === 2 ? i + 10 : i;
        const d = digest(n, v === 2 && n % 7 === 0 ? 2 : 1);
        await tx.run(
          `INSERT INTO dataset_items (dataset_id, item_id, digest, input_kind, input, created_at) VALUES ('${datasetId}', 'item-${n}', '${d}', 'text', 'q', 1) ON CONFLICT DO NOTHING`,
        );
        await tx.run(
          `INSERT INTO dataset_version_items (dataset_id, version, item_id, digest) VALUES ('${datasetId}', ${v}, 'item-${n}', '${d}')`,
        );
      }
      await tx.run(
        `UPDATE dataset_versions SET committed = 1 WHERE dataset_id = '${datasetId}' AND version = ${v}`,
      );
      await tx.run(
        `UPDATE datasets SET latest_version = ${v}, latest_item_count = 300 WHERE id = '${datasetId}'`,
      );
    }
  });
  await db.write((tx) => tx.run("ANALYZE"));
}

describe("dataset query plans", () => {
  for (const withStats of [false, true]) {
    itWith(
      withStats ? ["localMaintenance"] : [],
      `every dataset read is a primary-key or unique-index range, without a temp B-tree (${withStats ? "with" : "without"} ANALYZE statistics)`,
      async () => {
        const { db } = await openTestDatabase();
        if (withStats) await seedDataset(db);
        const d = db.drizzle();
        const pk = /USING (COVERING )?INDEX sqlite_autoindex_dataset_version_items_1/;
        const cases: [string, Sqlish, RegExp | RegExp[]][] = [];
        for (const afterName of [undefined, "d3"]) {
          cases.push([
            `ListDatasets ${afterName ? "page 2" : "page 1"}`,
            listDatasetsQuery(d, { projectId: "user:owner-1", afterName, limit: 21 }),
            /USING INDEX datasets_project_name_idx \(project_id=\?/,
          ]);
        }
        cases.push(
          [
            "GetDataset",
            datasetByIdQuery(d, "user:owner-1", datasetId),
            /USING INDEX sqlite_autoindex_datasets_1 \(id=\?\)/,
          ],
          [
            "CreateDataset: name taken",
            datasetByNameQuery(d, "user:owner-1", "qa"),
            /datasets_project_name_idx \(project_id=\? AND name=\?\)/,
          ],
          [
            "a version",
            versionQuery(d, datasetId, 1),
            /USING INDEX sqlite_autoindex_dataset_versions_1 \(dataset_id=\? AND version=\?\)/,
          ],
          [
            "base digests of the request's ids",
            versionDigestsQuery(d, datasetId, 1, ["item-1", "item-2"]),
            /SEARCH dataset_version_items USING (COVERING )?INDEX sqlite_autoindex_dataset_version_items_1 \(dataset_id=\? AND version=\? AND item_id=\?\)/,
          ],
          [
            "a version from scratch: the latest version's items with the digests of items without id",
            itemsWithDigestsQuery(d, datasetId, 2, ["00", "01"]),
            /SEARCH dataset_version_items USING (COVERING )?INDEX sqlite_autoindex_dataset_version_items_1 \(dataset_id=\? AND version=\?\)/,
          ],
          [
            "the contents already stored under the ids of a request",
            storedContentsQuery(d, datasetId, ["item-1", "item-2"]),
            /SEARCH dataset_items USING COVERING INDEX sqlite_autoindex_dataset_items_1 \(dataset_id=\? AND item_id=\?\)/,
          ],
          [
            "CreateDatasetVersion: copy of the base's unchanged items",
            copyMembersQuery(d, { datasetId, fromVersion: 1, toVersion: 3, excludeIds: ["item-1"] }),
            /SEARCH dataset_version_items USING (COVERING )?INDEX sqlite_autoindex_dataset_version_items_1 \(dataset_id=\? AND version=\?\)/,
          ],
        );
        for (const afterItemId of [undefined, "item-50"]) {
          cases.push([
            `ListDatasetItems ${afterItemId ? "page 2" : "page 1"}`,
            listItemsQuery(d, { datasetId, version: 2, afterItemId, limit: 21 }),
            [
              pk,
              /SEARCH dataset_items USING INDEX sqlite_autoindex_dataset_items_1 \(dataset_id=\? AND item_id=\? AND digest=\?\)/,
            ],
          ]);
          cases.push([
            `DiffDatasetVersions ${afterItemId ? "page 2" : "page 1"}`,
            diffQuery(d, { datasetId, fromVersion: 1, toVersion: 2, afterItemId, limit: 21 }),
            [
              /MERGE \(UNION ALL\)/,
              /SEARCH t USING INDEX sqlite_autoindex_dataset_version_items_1 \(dataset_id=\? AND version=\?/,
              /SEARCH f USING INDEX sqlite_autoindex_dataset_version_items_1 \(dataset_id=\? AND version=\? AND item_id=\?\) LEFT-JOIN/,
              /SEARCH o USING COVERING INDEX sqlite_autoindex_dataset_version_items_1 \(dataset_id=\? AND version=\? AND item_id=\?\)/,
            ],
          ]);
        }
        cases.push([
          "DiffDatasetVersions totals",
          diffCountsQuery(d, { datasetId, fromVersion: 1, toVersion: 2 }),
          /SEARCH x USING COVERING INDEX sqlite_autoindex_dataset_version_items_1 \(dataset_id=\? AND version=\? AND item_id=\?\)/,
        ]);
        await expectIndexPlans(db, cases, /^SCAN (datasets|dataset_\w+)$/m);
      },
    );
  }

  it("a version's commit counts its items in the primary key", async () => {
    const { db } = await openTestDatabase();
    const rs = await db.client.execute({
      sql: "EXPLAIN QUERY PLAN SELECT count(*) FROM dataset_version_items i WHERE i.dataset_id = ? AND i.version = ?",
      args: [datasetId, 1],
    });
    expect(rs.rows.map((r) => String(r.detail)).join("\n")).toMatch(
      /SEARCH i USING COVERING INDEX sqlite_autoindex_dataset_version_items_1 \(dataset_id=\? AND version=\?\)/,
    );
  });
});

const experimentId = "01920000-0000-7000-8000-000000000001";

/** seedDataset, and a running experiment over its version 1 (3 trials) with results for its first 200 items. */
/** An experiment over the seeded dataset, 200 items x 3 trials; `declare` runs while it is still PENDING. */
async function seedExperiment(
  db: Db,
  declare?: (tx: { run(sql: string): Promise<unknown> }) => Promise<void>,
) {
  await seedDataset(db);
  await db.write(async (tx) => {
    await tx.run(
      `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, status, created_at,
         updated_at, dataset_id, dataset_version, trials_per_item)
       VALUES ('${experimentId}', 'user:owner-1', 'owner-1', '${promptId(1)}', 1, 'p', 'm', 'pending', 1, 1, '${datasetId}', 1, 3)`,
    );
    await declare?.(tx);
    await tx.run(`UPDATE evaluations SET status = 'running', started_at = 1 WHERE id = '${experimentId}'`);
    for (let i = 0; i < 200; i++) {
      for (let trial = 1; trial <= 3; trial++) {
        await tx.run(
          `INSERT INTO test_results (id, evaluation_id, name, passed, score, latency_ms, created_at, dataset_item_id, trial)
           VALUES ('${experimentId}-${i}-${trial}', '${experimentId}', 't', 1, 0.5, 1, 2, 'item-${i}', ${trial})`,
        );
      }
    }
  });
  await db.write((tx) => tx.run("ANALYZE"));
}

describe("experiment query plans", () => {
  for (const withStats of [false, true]) {
    itWith(
      withStats ? ["localMaintenance"] : [],
      `RecordTestResults' and CompleteEvaluation's experiment reads use the (evaluation, item, trial) index (${withStats ? "with" : "without"} ANALYZE statistics)`,
      async () => {
        const { db } = await openTestDatabase();
        if (withStats) await seedExperiment(db);
        const d = db.drizzle();
        const byItem =
          /SEARCH test_results USING COVERING INDEX test_results_evaluation_item_trial_idx \(evaluation_id=\? AND dataset_item_id=\?\)/;
        const cases: [string, Sqlish, RegExp | RegExp[]][] = [
          [
            "RecordTestResults: which pairs of the batch are recorded",
            recordedTrialsQuery(d, experimentId, [
              { itemId: "item-1", trial: 1 },
              { itemId: "item-2", trial: 3 },
            ]),
            // the item drives, and the trial too where the SQLite version searches row values by all their columns
            // (sqld's); otherwise it is checked on the item's at most trials_per_item entries
            /SEARCH test_results USING COVERING INDEX test_results_evaluation_item_trial_idx \(evaluation_id=\? AND dataset_item_id=\?( AND trial=\?)?\)/,
          ],
          [
            "CompleteEvaluation: the recorded pairs' count",
            recordedTrialCountQuery(d, experimentId),
            // (IS NOT NULL is the range `dataset_item_id > NULL` of the partial index)
            /SEARCH test_results USING COVERING INDEX test_results_evaluation_item_trial_idx \(evaluation_id=\?( AND dataset_item_id>\?)?\)/,
          ],
          [
            "CompleteEvaluation: the first incomplete items",
            incompleteItemsQuery(d, {
              evaluationId: experimentId,
              datasetId,
              version: 1,
              trials: 3,
              limit: 10,
            }),
            [
              /SEARCH dataset_version_items USING (COVERING )?INDEX sqlite_autoindex_dataset_version_items_1 \(dataset_id=\? AND version=\?\)/,
              byItem,
            ],
          ],
          [
            "CompleteEvaluation: the trials of those items",
            trialsOfItemsQuery(d, experimentId, ["item-200", "item-201"]),
            byItem,
          ],
        ];
        await expectIndexPlans(db, cases, /^SCAN (test_results|dataset_\w+)$/m);
      },
    );
  }
});

/** seedExperiment, with three declared scores and a value of each on every result. */
async function seedScores(db: Db) {
  await seedExperiment(db, async (tx) => {
    await tx.run(
      `INSERT INTO evaluation_scores (evaluation_id, name, position, kind, min_value, max_value, categories) VALUES
         ('${experimentId}', 'relevance', 0, 'numeric', 0, 10, NULL),
         ('${experimentId}', 'toxic', 1, 'boolean', NULL, NULL, NULL),
         ('${experimentId}', 'tone', 2, 'categorical', NULL, NULL, '["a","b","c"]')`,
    );
  });
  await db.write(async (tx) => {
    for (const [name, value] of [
      ["relevance", "(abs(random()) % 1000) / 100.0"],
      ["toxic", "abs(random()) % 2"],
      ["tone", "abs(random()) % 3"],
    ]) {
      await tx.run(
        `INSERT INTO test_result_scores (result_id, name, evaluation_id, dataset_item_id, value)
         SELECT id, '${name}', evaluation_id, dataset_item_id, ${value} FROM test_results WHERE evaluation_id = '${experimentId}'`,
      );
    }
  });
  await db.write((tx) => tx.run("ANALYZE"));
}

describe("score query plans", () => {
  for (const withStats of [false, true]) {
    itWith(
      withStats ? ["localMaintenance"] : [],
      `GetEvaluationSummary's and ListItemStats' score aggregates read one index range each (${withStats ? "with" : "without"} ANALYZE statistics)`,
      async () => {
        const { db } = await openTestDatabase();
        if (withStats) await seedScores(db);
        const d = db.drizzle();
        const byValue =
          /SEARCH test_result_scores USING COVERING INDEX test_result_scores_value_idx \(evaluation_id=\? AND name=\?\)/;
        const byItem =
          /SEARCH test_result_scores USING COVERING INDEX test_result_scores_item_idx \(evaluation_id=\? AND name=\?/;
        const cases: [string, Sqlish, RegExp | RegExp[]][] = [
          [
            "declarations in order",
            scoreDeclarationsQuery(d, [experimentId]),
            /SEARCH evaluation_scores USING INDEX evaluation_scores_position_idx \(evaluation_id=\?\)/,
          ],
          [
            "values of a page of results",
            scoreValuesQuery(d, [`${experimentId}-1-1`, `${experimentId}-1-2`]),
            /SEARCH test_result_scores USING INDEX sqlite_autoindex_test_result_scores_1 \(result_id=\?\)/,
          ],
          ["count, mean, min, max, deviations", scoreMomentsQuery(d, experimentId, "relevance"), byValue],
          ["the median's middle values", scoreValuesAtQuery(d, experimentId, "relevance", 300), byValue],
          ["a categorical distribution", scoreDistributionQuery(d, experimentId, "tone"), byValue],
          ["flaky items of a boolean score", flakyScoreItemCountQuery(d, experimentId, "toxic"), byItem],
          [
            "flaky items of passed",
            flakyPassedItemCountQuery(d, experimentId),
            /SEARCH test_results USING INDEX test_results_evaluation_item_trial_idx \(evaluation_id=\?/,
          ],
          [
            "a page of items",
            itemPageQuery(d, { evaluationId: experimentId, afterItemId: "item-10", limit: 21 }),
            /SEARCH test_results USING INDEX test_results_evaluation_item_trial_idx \(evaluation_id=\? AND dataset_item_id>\?\)/,
          ],
          [
            "a page of flaky items",
            itemPageQuery(d, {
              evaluationId: experimentId,
              flakyOnly: { booleanScores: ["toxic"] },
              limit: 21,
            }),
            [
              /SEARCH test_results USING INDEX test_results_evaluation_item_trial_idx \(evaluation_id=\?/,
              byItem,
            ],
          ],
          [
            "the declared scores of a page of items",
            itemScoresQuery(d, experimentId, ["relevance", "toxic", "tone"], ["item-1", "item-2"]),
            byItem,
          ],
        ];
        await expectIndexPlans(db, cases, /^SCAN (test_results|test_result_scores|evaluation_scores)$/m);
      },
    );
  }
});

describe("compare query plans", () => {
  for (const withStats of [false, true]) {
    itWith(
      withStats ? ["localMaintenance"] : [],
      `CompareEvaluations reads each score of each evaluation as one index range grouped by item in index order (${withStats ? "with" : "without"} ANALYZE statistics)`,
      async () => {
        const { db } = await openTestDatabase();
        if (withStats) await seedScores(db);
        const d = db.drizzle();
        const cases: [string, Sqlish, RegExp][] = [
          [
            "passed and score per item",
            itemDefaultScoresQuery(d, experimentId),
            /SEARCH test_results USING INDEX test_results_evaluation_item_trial_idx \(evaluation_id=\?( AND dataset_item_id>\?)?\)/,
          ],
          [
            "a named score per item",
            itemScoreMeansQuery(d, experimentId, "relevance"),
            /SEARCH test_result_scores USING COVERING INDEX test_result_scores_item_idx \(evaluation_id=\? AND name=\?( AND dataset_item_id>\?)?\)/,
          ],
        ];
        for (const [name, query, expected] of cases) {
          const plan = await planOf(db, query);
          const text = plan.join("\n");
          expect(text, `${name}\n${query.toSQL().sql}\n${text}`).toMatch(expected);
          expect(text, `${name}\n${text}`).not.toMatch(/TEMP B-TREE/);
          expect(text, `${name}\n${text}`).not.toMatch(/^SCAN (test_results|test_result_scores)$/m);
        }
      },
    );
  }
});
