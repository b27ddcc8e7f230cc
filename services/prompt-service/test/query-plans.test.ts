import { randomUUID } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  activePromptsOfOwnerQuery,
  listEventsQuery,
  listPromptsQuery,
  listTemplatesQuery,
  listVersionsQuery,
  promptViewByLabelQuery,
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
      await tx.run(
        `INSERT INTO prompts (id, owner_id, title, status, created_at, updated_at, deleted_at)
         VALUES ('${id}', '${owner}', 't', '${statuses[i % 3]}', ${1000 + i}, ${1000 + i}, ${i % 7 === 0 ? 2000 + i : "NULL"})`,
      );
      await tx.run(
        `INSERT INTO prompt_versions (prompt_id, version, content, created_by, created_at) VALUES ('${id}', 1, 'c', '${owner}', ${1000 + i})`,
      );
      await tx.run(
        `INSERT INTO prompt_tags (prompt_id, tag, owner_id) VALUES ('${id}', 'tag${i % 4}', '${owner}')`,
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

describe("query plans", () => {
  for (const withStats of [false, true]) {
    it(`every list query uses an index and no temp B-tree (${withStats ? "with" : "without"} ANALYZE statistics)`, async () => {
      const { db } = await openTestDatabase();
      if (withStats) await seed(db);
      const d = db.drizzle();
      const cases: [string, Sqlish, RegExp | RegExp[]][] = [];
      for (const status of [undefined, "active"] as const) {
        for (const tag of [undefined, "tag1"]) {
          for (const includeDeleted of [false, true]) {
            for (const page of [undefined, after]) {
              const name = `ListPrompts status=${status ?? "-"} tag=${tag ?? "-"} include_deleted=${includeDeleted} ${page ? "page 2" : "page 1"}`;
              const expected =
                tag !== undefined
                  ? /prompt_tags USING (COVERING )?INDEX prompt_tags_owner_tag_idx/
                  : status === undefined
                    ? includeDeleted
                      ? /USING INDEX prompts_owner_created_idx/
                      : liveIndex(withStats, "prompts_owner_live_idx", "prompts_owner_created_idx")
                    : includeDeleted
                      ? /USING INDEX prompts_owner_status_created_idx/
                      : liveIndex(
                          withStats,
                          "prompts_owner_status_live_idx",
                          "prompts_owner_status_created_idx",
                        );
              cases.push([
                name,
                listPromptsQuery(d, {
                  ownerId: "owner-1",
                  status,
                  tag,
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
      cases.push(
        [
          "review pattern 1: active prompts of a user, newest first",
          activePromptsOfOwnerQuery(d, "owner-1", 20),
          liveIndex(withStats, "prompts_owner_status_live_idx", "prompts_owner_status_created_idx"),
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
          promptViewQuery(d, "owner-1", after.id, undefined),
          [promptById, versionByKey, ...tagsAndLabels],
        ],
        [
          "GetPrompt (version)",
          promptViewQuery(d, "owner-1", after.id, 2),
          [promptById, versionByKey, ...tagsAndLabels],
        ],
        [
          "GetPrompt (label)",
          promptViewByLabelQuery(d, "owner-1", after.id, "production"),
          [
            promptById,
            /SEARCH prompt_labels USING INDEX sqlite_autoindex_prompt_labels_1 \(prompt_id=\? AND label=\?\)/,
            versionByKey,
            ...tagsAndLabels,
          ],
        ],
        [
          "a version with its prompt's tags and labels (mutations' response)",
          versionViewQuery(d, after.id, 2),
          [versionByKey, ...tagsAndLabels],
        ],
        [
          "ListPromptTemplates page 1",
          listTemplatesQuery(d, "owner-1", undefined, 21),
          /USING INDEX prompt_templates_owner_created_idx/,
        ],
        [
          "ListPromptTemplates page 2",
          listTemplatesQuery(d, "owner-1", after, 21),
          /USING INDEX prompt_templates_owner_created_idx/,
        ],
        ["ListPromptEvents", listEventsQuery(d, 10, 100), /USING INTEGER PRIMARY KEY/],
      );
      for (const [name, query, expected] of cases) {
        const plan = await planOf(db, query);
        const text = plan.join("\n");
        for (const line of [expected].flat()) {
          expect(text, `${name}\n${query.toSQL().sql}\n${text}`).toMatch(line);
        }
        expect(text, `${name}\n${text}`).not.toMatch(/TEMP B-TREE/);
        expect(text, `${name}\n${text}`).not.toMatch(
          /^SCAN (prompts|prompt_tags|prompt_versions|prompt_templates)$/m,
        );
      }
    });
  }
});
