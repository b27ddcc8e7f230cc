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
    ]);
    const triggers = await triggerNames(svc.db);
    expect(triggers).toContain("prompt_versions_immutable");
    expect(triggers).toContain("audit_log_no_update");

    expect(await migrator.down(1)).toEqual(["0001_triggers"]);
    expect(await triggerNames(svc.db)).toEqual([]);
    expect(await tableCounts(svc.db)).toEqual(rows);
    expect(await migrator.up()).toEqual(["0001_triggers"]);
    expect(await triggerNames(svc.db)).toEqual(triggers);
    expect(await tableCounts(svc.db)).toEqual(rows);
    expect((await svc.alice.getPrompt({ id: p.id, label: "staging" })).prompt?.title).toBe("keep me");

    // all the way down and up again on the same file
    expect(await migrator.down(2)).toEqual(["0001_triggers", "0000_init"]);
    const left = await svc.db.client.execute(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations', 'sqlite_sequence')",
    );
    expect(left.rows).toEqual([]);
    expect(await migrator.up()).toEqual(["0000_init", "0001_triggers"]);
    expect((await tableCounts(svc.db)).prompts).toBe(0);
  });
});

describe("schema rules enforced by the database itself", () => {
  const id = "01900000-0000-7000-8000-000000000001";
  const now = 1_700_000_000_000;
  const prompt = (over: Record<string, string> = {}) => {
    const cols = {
      id: `'${id}'`,
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
      ["tag of 51", `INSERT INTO prompt_tags VALUES ('${id}', '${"x".repeat(51)}', 'o')`],
      ["tag with a space", `INSERT INTO prompt_tags VALUES ('${id}', 'a b', 'o')`],
      ["tag of another owner", `INSERT INTO prompt_tags VALUES ('${id}', 'ok', 'someone-else')`],
      ["current_version without a version row", `UPDATE prompts SET current_version = 2 WHERE id = '${id}'`],
      ["owner change", `UPDATE prompts SET owner_id = 'thief' WHERE id = '${id}'`],
      [
        "event type",
        `INSERT INTO prompt_events (event_id, type, prompt_id, owner_id, version, occurred_at) VALUES ('e', 'bogus', '${id}', 'o', 1, ${now})`,
      ],
      [
        "label event without label",
        `INSERT INTO prompt_events (event_id, type, prompt_id, owner_id, version, occurred_at) VALUES ('e', 'label_set', '${id}', 'o', 1, ${now})`,
      ],
    ];
    for (const [name, sql] of refusedChildren) await refuse(name, sql);

    await exec(`INSERT INTO prompt_labels VALUES ('${id}', 'staging', 1, 'o', ${now})`);
    await exec(`INSERT INTO prompt_tags VALUES ('${id}', 'ok', 'o')`);
    await exec(
      `INSERT INTO prompt_events (event_id, type, prompt_id, owner_id, version, occurred_at) VALUES ('e1', 'created', '${id}', 'o', 1, ${now})`,
    );
    await refuse(
      "duplicate event_id",
      `INSERT INTO prompt_events (event_id, type, prompt_id, owner_id, version, occurred_at) VALUES ('e1', 'updated', '${id}', 'o', 1, ${now})`,
    );
    await refuse("delete an event", "DELETE FROM prompt_events");
    await refuse("rewrite an event", "UPDATE prompt_events SET version = 2");
    await exec(
      `INSERT INTO prompt_templates (id, owner_id, name, body, created_at, updated_at) VALUES ('t1', 'o', 'n', 'b', ${now}, ${now})`,
    );
    await refuse(
      "template name taken by the same owner",
      `INSERT INTO prompt_templates (id, owner_id, name, body, created_at, updated_at) VALUES ('t2', 'o', 'n', 'b', ${now}, ${now})`,
    );
    await exec(
      `INSERT INTO prompts (id, owner_id, title, created_at, updated_at) VALUES ('p2', 'o', 't', ${now}, ${now})`,
    );
    await refuse(
      "first version with a diff",
      `INSERT INTO prompt_versions (prompt_id, version, content, created_by, created_at, diff) VALUES ('p2', 1, 'c', 'o', ${now}, 'x')`,
    );
    await exec(
      `INSERT INTO prompt_templates (id, owner_id, name, body, created_at, updated_at) VALUES ('t3', 'other', 'n', 'b', ${now}, ${now})`,
    );
    await expect(exec(`UPDATE prompts SET template_id = 't3' WHERE id = '${id}'`)).resolves.toBeDefined(); // FK only; owners are checked on insert

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
