import type { MigrationInvariant } from "@autoforge/db";

/**
 * Rules of prompt-service's data that `migrate check` verifies on a migrated copy of the database. Each query
 * names the rows that break the rule: it must return none. Triggers enforce most of these on every write, but
 * a migration runs below them (a table rebuild drops and recreates triggers, a data fix-up may run before they
 * exist), so the check looks at the data itself.
 */
export const promptInvariants: readonly MigrationInvariant[] = [
  {
    name: "every prompt has its current version row",
    sql: `SELECT p.id, p.current_version FROM prompts p
          WHERE NOT EXISTS (SELECT 1 FROM prompt_versions v WHERE v.prompt_id = p.id AND v.version = p.current_version)`,
  },
  {
    name: "no version is newer than its prompt's current version",
    sql: `SELECT v.prompt_id, v.version, p.current_version FROM prompt_versions v
          JOIN prompts p ON p.id = v.prompt_id WHERE v.version > p.current_version`,
  },
  {
    name: "versions are contiguous from 1",
    // (prompt_id, version) is the primary key, so min = 1 and count = max means 1..max without a gap
    sql: `SELECT prompt_id, min(version) AS first, max(version) AS newest, count(*) AS versions
          FROM prompt_versions GROUP BY prompt_id HAVING min(version) <> 1 OR count(*) <> max(version)`,
  },
  {
    name: "every label points to an existing version",
    sql: `SELECT l.prompt_id, l.label, l.version FROM prompt_labels l
          WHERE NOT EXISTS (SELECT 1 FROM prompt_versions v WHERE v.prompt_id = l.prompt_id AND v.version = l.version)`,
  },
  {
    name: "tags carry their prompt's project",
    sql: `SELECT t.prompt_id, t.tag FROM prompt_tags t JOIN prompts p ON p.id = t.prompt_id
          WHERE t.project_id <> p.project_id`,
  },
  {
    name: "a derived prompt and its parent are in the same project",
    sql: `SELECT c.id, c.parent_id FROM prompts c JOIN prompts p ON p.id = c.parent_id WHERE c.project_id <> p.project_id`,
  },
  {
    name: "a prompt and its template are in the same project",
    sql: `SELECT p.id, p.template_id FROM prompts p JOIN prompt_templates t ON t.id = p.template_id
          WHERE p.project_id <> t.project_id`,
  },
  {
    name: "every prompt has a project and a valid name",
    sql: `SELECT id, project_id, name FROM prompts WHERE project_id = '' OR NOT (length(name) BETWEEN 1 AND 128
          AND name GLOB '[a-z0-9]*' AND name NOT GLOB '*[^a-z0-9._/-]*')`,
  },
  {
    name: "every version has its prompt's kind (messages exactly for chat prompts)",
    sql: `SELECT v.prompt_id, v.version FROM prompt_versions v JOIN prompts p ON p.id = v.prompt_id
          WHERE (v.messages IS NULL) <> (p.kind = 'text')`,
  },
];
