import { createMigrator } from "@autoforge/db";
import { describe, expect, it } from "vitest";
import { migrationsFolder } from "../src/db/migrations-folder.js";
import { must, openTestDatabase, startPromptService, tableCounts } from "./helpers.js";

async function triggerNames(db: Awaited<ReturnType<typeof openTestDatabase>>["db"]): Promise<string[]> {
  const rs = await db.client.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name");
  return rs.rows.map((r) => String(r.name));
}

describe("migrations", () => {
  it("apply up -> down -> up with rows intact; down to zero and up again works", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "keep me", content: "v1", tags: ["x"] })).prompt);
    await svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 1 });
    await svc.alice.createPromptTemplate({ name: "t", body: "b" });
    const rows = await tableCounts(svc.db);
    const migrator = createMigrator(svc.db, { migrationsFolder });
    expect((await migrator.status()).map((m) => [m.tag, m.state])).toEqual([
      ["0000_init", "applied"],
      ["0001_triggers", "applied"],
      ["0002_projects", "applied"],
    ]);
    const triggers = await triggerNames(svc.db);
    expect(triggers).toContain("prompt_versions_immutable");
    expect(triggers).toContain("audit_log_no_update");
    expect(triggers).toContain("prompts_name_format_insert");

    expect(await migrator.down(2)).toEqual(["0002_projects", "0001_triggers"]);
    expect(await triggerNames(svc.db)).toEqual([]);
    const { prompt_label_history: _h, project_settings: _s, ...kept } = rows;
    expect(await tableCounts(svc.db, Object.keys(kept))).toEqual(kept);
    expect(await migrator.up()).toEqual(["0001_triggers", "0002_projects"]);
    expect(await triggerNames(svc.db)).toEqual(triggers);
    expect(await tableCounts(svc.db, Object.keys(kept))).toEqual(kept);
    expect((await svc.alice.getPrompt({ id: p.id, label: "staging" })).prompt?.title).toBe("keep me");

    // all the way down and up again on the same file
    expect(await migrator.down(3)).toEqual(["0002_projects", "0001_triggers", "0000_init"]);
    const left = await svc.db.client.execute(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations', 'sqlite_sequence')",
    );
    expect(left.rows).toEqual([]);
    expect(await migrator.up()).toEqual(["0000_init", "0001_triggers", "0002_projects"]);
    expect((await tableCounts(svc.db)).prompts).toBe(0);
  });
});

describe("schema rules enforced by the database itself", () => {
  const id = "01900000-0000-7000-8000-000000000001";
  const now = 1_700_000_000_000;
  const prompt = (over: Record<string, string> = {}) => {
    const cols = {
      id: `'${id}'`,
      project_id: "'p'",
      name: "'n1'",
      owner_id: "'o'",
      title: "'t'",
      status: "'draft'",
      created_at: `${now}`,
      updated_at: `${now}`,
      ...over,
    };
    return `INSERT INTO prompts (${Object.keys(cols).join(",")}) VALUES (${Object.values(cols).join(",")})`;
  };
  const version = (v: number, extra = "") =>
    `INSERT INTO prompt_versions (prompt_id, version, content, created_by, created_at${extra ? ", diff" : ""}) VALUES ('${id}', ${v}, 'c', 'o', ${now}${extra ? `, '${extra}'` : ""})`;

  it("CHECK, UNIQUE, FK and trigger rules refuse bad rows", async () => {
    const { db } = await openTestDatabase();
    const exec = (sql: string) => db.client.execute(sql);
    const refuse = (name: string, sql: string) =>
      expect(exec(sql), name).rejects.toMatchObject({ code: expect.stringMatching(/^SQLITE_CONSTRAINT/) });
    const refused: [string, string][] = [
      ["empty title", prompt({ title: "''" })],
      ["256-character title", prompt({ title: `'${"x".repeat(256)}'` })],
      ["unknown status", prompt({ status: "'bogus'" })],
      ["current_version 0", prompt({ current_version: "0" })],
      ["metadata not JSON", prompt({ metadata: "'{oops'" })],
      ["metadata not an object", prompt({ metadata: "'[1]'" })],
      ["own parent", prompt({ parent_id: `'${id}'` })],
      ["unknown parent", prompt({ parent_id: "'nope'" })],
      ["deleted before created", prompt({ deleted_at: `${now - 1}` })],
      ["no project", prompt({ project_id: "''" })],
      ["name with capitals", prompt({ name: "'Checkout'" })],
      ["name starting with a dot", prompt({ name: "'.x'" })],
      ["name of 129 characters", prompt({ name: `'${"a".repeat(129)}'` })],
      ["unknown kind", prompt({ kind: "'audio'" })],
    ];
    for (const [name, sql] of refused) await refuse(name, sql);

    await exec(prompt());
    await exec(version(1));
    const refusedChildren: [string, string][] = [
      [
        "version 0",
        `INSERT INTO prompt_versions (prompt_id, version, content, created_by, created_at) VALUES ('${id}', 0, 'c', 'o', ${now})`,
      ],
      ["duplicate version", version(1)],
      ["version gap", version(3)],
      ["rewrite a version", `UPDATE prompt_versions SET content = 'changed' WHERE prompt_id = '${id}'`],
      ["label to a missing version", `INSERT INTO prompt_labels VALUES ('${id}', 'staging', 9, 'o', ${now})`],
      ["label latest", `INSERT INTO prompt_labels VALUES ('${id}', 'latest', 1, 'o', ${now})`],
      ["label uppercase", `INSERT INTO prompt_labels VALUES ('${id}', 'Prod', 1, 'o', ${now})`],
      ["tag of 51", `INSERT INTO prompt_tags VALUES ('${id}', '${"x".repeat(51)}', 'p')`],
      ["tag with a space", `INSERT INTO prompt_tags VALUES ('${id}', 'a b', 'p')`],
      ["tag of another project", `INSERT INTO prompt_tags VALUES ('${id}', 'ok', 'someone-else')`],
      ["current_version without a version row", `UPDATE prompts SET current_version = 2 WHERE id = '${id}'`],
      ["owner change", `UPDATE prompts SET owner_id = 'thief' WHERE id = '${id}'`],
      ["project change", `UPDATE prompts SET project_id = 'other' WHERE id = '${id}'`],
      ["kind change", `UPDATE prompts SET kind = 'chat' WHERE id = '${id}'`],
      ["rename to a bad name", `UPDATE prompts SET name = 'Bad Name' WHERE id = '${id}'`],
      [
        "messages on a text prompt",
        `INSERT INTO prompt_versions (prompt_id, version, content, messages, created_by, created_at) VALUES ('${id}', 2, '', '[{"role":"user","content":"x"}]', 'o', ${now})`,
      ],
      [
        "variables not an array",
        `INSERT INTO prompt_versions (prompt_id, version, content, variables, created_by, created_at) VALUES ('${id}', 2, 'c', '{}', 'o', ${now})`,
      ],
      [
        "a label move that moves nothing",
        `INSERT INTO prompt_label_history (prompt_id, label, from_version, to_version, actor, occurred_at) VALUES ('${id}', 'x', 1, 1, 'o', ${now})`,
      ],
      [
        "protected labels not an array",
        `INSERT INTO project_settings VALUES ('p', '"production"', 'o', ${now})`,
      ],
      [
        "event type",
        `INSERT INTO prompt_events (event_id, type, prompt_id, project_id, owner_id, version, occurred_at) VALUES ('e', 'bogus', '${id}', 'p', 'o', 1, ${now})`,
      ],
      [
        "label event without label",
        `INSERT INTO prompt_events (event_id, type, prompt_id, project_id, owner_id, version, occurred_at) VALUES ('e', 'label_set', '${id}', 'p', 'o', 1, ${now})`,
      ],
    ];
    for (const [name, sql] of refusedChildren) await refuse(name, sql);

    await exec(`INSERT INTO prompt_labels VALUES ('${id}', 'staging', 1, 'o', ${now})`);
    await exec(`INSERT INTO prompt_tags VALUES ('${id}', 'ok', 'p')`);
    await exec(
      `INSERT INTO prompt_events (event_id, type, prompt_id, project_id, owner_id, version, occurred_at) VALUES ('e1', 'created', '${id}', 'p', 'o', 1, ${now})`,
    );
    await refuse(
      "duplicate event_id",
      `INSERT INTO prompt_events (event_id, type, prompt_id, project_id, owner_id, version, occurred_at) VALUES ('e1', 'updated', '${id}', 'p', 'o', 1, ${now})`,
    );
    await refuse("delete an event", "DELETE FROM prompt_events");
    await refuse("rewrite an event", "UPDATE prompt_events SET version = 2");
    await exec(
      `INSERT INTO prompt_label_history (prompt_id, label, from_version, to_version, actor, occurred_at) VALUES ('${id}', 'staging', NULL, 1, 'o', ${now})`,
    );
    await refuse("rewrite label history", "UPDATE prompt_label_history SET actor = 'x'");
    await exec(
      `INSERT INTO prompt_templates (id, project_id, owner_id, name, body, created_at, updated_at) VALUES ('t1', 'p', 'o', 'n', 'b', ${now}, ${now})`,
    );
    await refuse(
      "template name taken in the same project",
      `INSERT INTO prompt_templates (id, project_id, owner_id, name, body, created_at, updated_at) VALUES ('t2', 'p', 'o2', 'n', 'b', ${now}, ${now})`,
    );
    await exec(
      `INSERT INTO prompts (id, project_id, name, owner_id, title, created_at, updated_at) VALUES ('p2', 'p', 'n2', 'o', 't', ${now}, ${now})`,
    );
    await refuse(
      "a name taken in the same project",
      `INSERT INTO prompts (id, project_id, name, owner_id, title, created_at, updated_at) VALUES ('p3', 'p', 'n2', 'o2', 't', ${now}, ${now})`,
    );
    await exec(
      `INSERT INTO prompts (id, project_id, name, owner_id, title, created_at, updated_at) VALUES ('p4', 'q', 'n2', 'o', 't', ${now}, ${now})`,
    ); // the same name in another project
    await exec(`DELETE FROM prompts WHERE id = 'p4'`);
    await refuse(
      "first version with a diff",
      `INSERT INTO prompt_versions (prompt_id, version, content, created_by, created_at, diff) VALUES ('p2', 1, 'c', 'o', ${now}, 'x')`,
    );
    await exec(
      `INSERT INTO prompt_templates (id, project_id, owner_id, name, body, created_at, updated_at) VALUES ('t3', 'other', 'o', 'n', 'b', ${now}, ${now})`,
    );
    await expect(exec(`UPDATE prompts SET template_id = 't3' WHERE id = '${id}'`)).resolves.toBeDefined(); // FK only; projects are checked on insert

    // purge = hard delete: versions, labels, tags go with the prompt; the event stays
    await exec(`DELETE FROM prompts WHERE id = '${id}'`);
    const counts = await tableCounts(db);
    expect([
      counts.prompts,
      counts.prompt_versions,
      counts.prompt_labels,
      counts.prompt_tags,
      counts.prompt_events,
    ]).toEqual([1, 0, 0, 0, 1]);
  });
});
