import { randomUUID } from "node:crypto";
import { describe, expect } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import {
  activePromptsOfProjectQuery,
  listEventsQuery,
  listLabelMovesQuery,
  listPromptsQuery,
  listTemplatesQuery,
  listVersionsQuery,
  promptViewQuery,
  versionViewQuery,
} from "../src/db/repository.js";
import type { PromptStatusValue } from "../src/db/schema.js";
import { openTestDatabase } from "./helpers.js";

/**
 * The handlers' own queries (built by the repository, rendered with .toSQL()) must be answered by an index
 * with no temporary B-tree sort. Plans are checked on a database with some rows and ANALYZE statistics, and
 * on an empty one (no statistics), so neither planner input changes the answer.
 */
interface Sqlish {
  toSQL(): { sql: string; params: unknown[] };
}

async function planOf(db: Awaited<ReturnType<typeof openTestDatabase>>["db"], q: Sqlish): Promise<string[]> {
  const { sql, params } = q.toSQL();
  const rs = await db.client.execute({ sql: `EXPLAIN QUERY PLAN ${sql}`, args: params as never[] });
  return rs.rows.map((r) => String(r.detail));
}

async function seed(db: Awaited<ReturnType<typeof openTestDatabase>>["db"]) {
  const statuses: PromptStatusValue[] = ["draft", "active", "archived"];
  await db.write(async (tx) => {
    for (let i = 0; i < 300; i++) {
      const id = randomUUID();
      const owner = `owner-${i % 5}`;
      const project = `project-${i % 5}`;
      await tx.run(
        `INSERT INTO prompts (id, project_id, name, owner_id, title, status, created_at, updated_at, deleted_at)
         VALUES ('${id}', '${project}', 'team/prompt-${i}', '${owner}', 't${i}', '${statuses[i % 3]}', ${1000 + i}, ${1000 + i}, ${i % 7 === 0 ? 2000 + i : "NULL"})`,
      );
      await tx.run(
        `INSERT INTO prompt_versions (prompt_id, version, content, created_by, created_at) VALUES ('${id}', 1, 'c', '${owner}', ${1000 + i})`,
      );
      await tx.run(
        `INSERT INTO prompt_tags (prompt_id, tag, project_id) VALUES ('${id}', 'tag${i % 4}', '${project}')`,
      );
      await tx.run(
        `INSERT INTO prompt_label_history (prompt_id, label, from_version, to_version, actor, occurred_at) VALUES ('${id}', 'production', NULL, 1, '${owner}', ${1000 + i})`,
      );
      await tx.run(
        `INSERT INTO prompt_events (event_id, type, prompt_id, project_id, name, owner_id, version, occurred_at) VALUES ('${randomUUID()}', 'created', '${id}', '${project}', 'n', '${owner}', 1, ${1000 + i})`,
      );
    }
  });
  await db.write((tx) => tx.run("ANALYZE"));
}

/**
 * Live lists: with statistics the planner picks the partial (live-only) index; on a fresh database without
 * statistics it rates the full index with the same columns as equal and may take it (still no sort).
 */
function liveIndex(withStats: boolean, partial: string, full: string): RegExp {
  return withStats ? new RegExp(`USING INDEX ${partial} `) : new RegExp(`USING INDEX (${partial}|${full}) `);
}

const after = { createdAt: 1100, id: "01900000-0000-7000-8000-000000000000" };

/** The correlated subselects that load each shown prompt's tags and labels: primary-key ranges, in key order. */
const tagsAndLabels = [
  /SEARCH prompt_tags USING COVERING INDEX sqlite_autoindex_prompt_tags_1 \(prompt_id=\?\)/,
  /SEARCH prompt_labels USING INDEX sqlite_autoindex_prompt_labels_1 \(prompt_id=\?\)/,
];
const versionByKey =
  /SEARCH prompt_versions USING INDEX sqlite_autoindex_prompt_versions_1 \(prompt_id=\? AND version=\?\)/;
const promptById = /SEARCH prompts USING (COVERING )?INDEX sqlite_autoindex_prompts_1 \(id=\?\)/;
const promptByName =
  /SEARCH prompts USING (COVERING )?INDEX prompts_project_name_uq \(project_id=\? AND name=\?\)/;
const labelByName =
  /SEARCH prompt_labels USING INDEX sqlite_autoindex_prompt_labels_1 \(prompt_id=\? AND label=\?\)/;

describe("query plans", () => {
  for (const withStats of [false, true]) {
    // ANALYZE is maintenance: sqld refuses it, and a replica's statistics are its primary's
    itWith(
      withStats ? ["localMaintenance"] : [],
      `every list query uses an index and no temp B-tree (${withStats ? "with" : "without"} ANALYZE statistics)`,
      async () => {
        const { db } = await openTestDatabase();
        if (withStats) await seed(db);
        const d = db.drizzle();
        const cases: [string, Sqlish, RegExp | RegExp[]][] = [];
        for (const status of [undefined, "active"] as const) {
          for (const tag of [undefined, "tag1"]) {
            for (const includeDeleted of [false, true]) {
              for (const page of [undefined, after]) {
                for (const [namePrefix, titleContains] of [
                  [undefined, undefined],
                  ["team/", undefined],
                  [undefined, "t1"],
                  ["team/prompt-1", "t"],
                ] as const) {
                  const name = `ListPrompts status=${status ?? "-"} tag=${tag ?? "-"} include_deleted=${includeDeleted} name_prefix=${namePrefix ?? "-"} title_contains=${titleContains ?? "-"} ${page ? "page 2" : "page 1"}`;
                  const expected =
                    tag !== undefined
                      ? /prompt_tags USING (COVERING )?INDEX prompt_tags_project_tag_idx/
                      : status === undefined
                        ? includeDeleted
                          ? /USING INDEX prompts_project_created_idx/
                          : liveIndex(withStats, "prompts_project_live_idx", "prompts_project_created_idx")
                        : includeDeleted
                          ? /USING INDEX prompts_project_status_created_idx/
                          : liveIndex(
                              withStats,
                              "prompts_project_status_live_idx",
                              "prompts_project_status_created_idx",
                            );
                  cases.push([
                    name,
                    listPromptsQuery(d, {
                      projectId: "project-1",
                      status,
                      tag,
                      namePrefix,
                      titleContains,
                      includeDeleted,
                      after: page,
                      limit: 21,
                    }),
                    [expected, ...tagsAndLabels],
                  ]);
                }
              }
            }
          }
        }
        cases.push(
          [
            "review pattern 1: active prompts of a project, newest first",
            activePromptsOfProjectQuery(d, "project-1", 20),
            liveIndex(withStats, "prompts_project_status_live_idx", "prompts_project_status_created_idx"),
          ],
          [
            "ListPromptVersions page 1",
            listVersionsQuery(d, after.id, undefined, 21),
            /USING PRIMARY KEY|USING INDEX sqlite_autoindex_prompt_versions_1/,
          ],
          [
            "ListPromptVersions page 2",
            listVersionsQuery(d, after.id, 5, 21),
            /USING PRIMARY KEY|USING INDEX sqlite_autoindex_prompt_versions_1/,
          ],
          [
            "GetPrompt (current version)",
            promptViewQuery(d, "project-1", { id: after.id }, { by: "current" }),
            [promptById, versionByKey, ...tagsAndLabels],
          ],
          [
            "GetPrompt (version)",
            promptViewQuery(d, "project-1", { id: after.id }, { by: "number", version: 2 }),
            [promptById, versionByKey, ...tagsAndLabels],
          ],
          [
            "GetPrompt (label)",
            promptViewQuery(d, "project-1", { id: after.id }, { by: "label", label: "production" }),
            [promptById, labelByName, versionByKey, ...tagsAndLabels],
          ],
          [
            "GetPrompt by name (label)",
            promptViewQuery(d, "project-1", { name: "team/prompt-1" }, { by: "label", label: "staging" }),
            [promptByName, labelByName, versionByKey, ...tagsAndLabels],
          ],
          [
            "GetPrompt by name alone (production, else current)",
            promptViewQuery(d, "project-1", { name: "team/prompt-1" }, { by: "default" }),
            [promptByName, labelByName, versionByKey, ...tagsAndLabels],
          ],
          [
            "GetPrompt by name (version)",
            promptViewQuery(d, "project-1", { name: "team/prompt-1" }, { by: "number", version: 1 }),
            [promptByName, versionByKey, ...tagsAndLabels],
          ],
          [
            "ListPromptLabelHistory",
            listLabelMovesQuery(d, after.id, undefined, 50, 21),
            /USING (COVERING )?INDEX prompt_label_history_prompt_idx/,
          ],
          [
            "ListPromptLabelHistory of one label",
            listLabelMovesQuery(d, after.id, "production", undefined, 21),
            /USING (COVERING )?INDEX prompt_label_history_prompt_label_idx/,
          ],
          [
            "a version with its prompt's tags and labels (mutations' response)",
            versionViewQuery(d, after.id, 2),
            [versionByKey, ...tagsAndLabels],
          ],
          [
            "ListPromptTemplates page 1",
            listTemplatesQuery(d, "project-1", undefined, 21),
            /USING INDEX prompt_templates_project_created_idx/,
          ],
          [
            "ListPromptTemplates page 2",
            listTemplatesQuery(d, "project-1", after, 21),
            /USING INDEX prompt_templates_project_created_idx/,
          ],
          ["ListPromptEvents (every project)", listEventsQuery(d, "*", 10, 100), /USING INTEGER PRIMARY KEY/],
          [
            "ListPromptEvents (one project)",
            listEventsQuery(d, "project-1", 10, 100),
            /USING (COVERING )?INDEX prompt_events_project_sequence_idx \(project_id=\? AND sequence>\?\)/,
          ],
        );
        for (const [name, query, expected] of cases) {
          const plan = await planOf(db, query);
          const text = plan.join("\n");
          for (const line of [expected].flat()) {
            expect(text, `${name}\n${query.toSQL().sql}\n${text}`).toMatch(line);
          }
          expect(text, `${name}\n${text}`).not.toMatch(/TEMP B-TREE/);
          expect(text, `${name}\n${text}`).not.toMatch(
            /^SCAN (prompts|prompt_tags|prompt_versions|prompt_templates|prompt_label_history|prompt_events)$/m,
          );
        }
      },
    );
  }
});
