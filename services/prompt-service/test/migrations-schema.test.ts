import { createMigrator, verifyAuditChain } from "@autoforge/db";
import { describe, expect, it } from "vitest";
import { migrationsFolder } from "../src/db/migrations-folder.js";
import { Code, expectCode, must, openTestDatabase, startPromptService, tableCounts } from "./helpers.js";

async function triggerNames(db: Awaited<ReturnType<typeof openTestDatabase>>["db"]): Promise<string[]> {
  const rs = await db.client.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' ORDER BY name");
  return rs.rows.map((r) => String(r.name));
}

async function settingsColumns(db: Awaited<ReturnType<typeof openTestDatabase>>["db"]): Promise<string[]> {
  const rs = await db.client.execute("SELECT name FROM pragma_table_info('project_settings')");
  return rs.rows.map((r) => String(r.name));
}

async function auditColumns(db: Awaited<ReturnType<typeof openTestDatabase>>["db"]): Promise<string[]> {
  const rs = await db.client.execute("SELECT name FROM pragma_table_info('audit_log')");
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
      ["0003_audit_key_id", "applied"],
      ["0004_gated_labels", "applied"],
    ]);
    const triggers = await triggerNames(svc.db);
    expect(triggers).toContain("prompt_versions_immutable");
    expect(triggers).toContain("audit_log_no_update");
    expect(triggers).toContain("prompts_name_format_insert");
    expect(triggers).toContain("project_settings_gated_labels_insert");
    expect(triggers).toContain("project_settings_gated_labels_update");

    expect(await migrator.down(1)).toEqual(["0004_gated_labels"]);
    expect(await settingsColumns(svc.db)).not.toContain("gated_labels");
    expect(await triggerNames(svc.db)).not.toContain("project_settings_gated_labels_insert");
    expect(await tableCounts(svc.db)).toEqual(rows);
    expect(await migrator.down(1)).toEqual(["0003_audit_key_id"]);
    expect(await auditColumns(svc.db)).not.toContain("key_id");
    expect(await tableCounts(svc.db)).toEqual(rows);
    expect(await migrator.down(2)).toEqual(["0002_projects", "0001_triggers"]);
    expect(await triggerNames(svc.db)).toEqual([]);
    const { prompt_label_history: _h, project_settings: _s, ...kept } = rows;
    expect(await tableCounts(svc.db, Object.keys(kept))).toEqual(kept);
    expect(await migrator.up()).toEqual([
      "0001_triggers",
      "0002_projects",
      "0003_audit_key_id",
      "0004_gated_labels",
    ]);
    expect(await auditColumns(svc.db)).toContain("key_id");
    expect(await verifyAuditChain(svc.db)).toMatchObject({ ok: true, count: rows.audit_log });
    expect(await triggerNames(svc.db)).toEqual(triggers);
    expect(await tableCounts(svc.db, Object.keys(kept))).toEqual(kept);
    expect((await svc.alice.getPrompt({ id: p.id, label: "staging" })).prompt?.title).toBe("keep me");

    // all the way down and up again on the same file
    expect(await migrator.down(5)).toEqual([
      "0004_gated_labels",
      "0003_audit_key_id",
      "0002_projects",
      "0001_triggers",
      "0000_init",
    ]);
    const left = await svc.db.client.execute(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations', 'sqlite_sequence')",
    );
    expect(left.rows).toEqual([]);
    expect(await migrator.up()).toEqual([
      "0000_init",
      "0001_triggers",
      "0002_projects",
      "0003_audit_key_id",
      "0004_gated_labels",
    ]);
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
        `INSERT INTO project_settings (project_id, protected_labels, updated_by, updated_at) VALUES ('p', '"production"', 'o', ${now})`,
      ],
      [
        "gated labels not an array",
        `INSERT INTO project_settings (project_id, gated_labels, updated_by, updated_at) VALUES ('p', '"production"', 'o', ${now})`,
      ],
      [
        "gated labels not JSON",
        `INSERT INTO project_settings (project_id, gated_labels, updated_by, updated_at) VALUES ('p', '[oops', 'o', ${now})`,
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
    await exec(`INSERT INTO project_settings (project_id, updated_by, updated_at) VALUES ('p', 'o', ${now})`);
    await refuse("gated labels set to an object", `UPDATE project_settings SET gated_labels = '{}'`);
    await exec(`UPDATE project_settings SET gated_labels = '["production"]'`);
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

describe("0002_projects moves every existing row into its owner's personal project", () => {
  const now = 1_700_000_000_000;
  const ids = {
    alice1: "01900000-0000-7000-8000-0000000000a1",
    alice2: "01900000-0000-7000-8000-0000000000a2",
    bob1: "01900000-0000-7000-8000-0000000000b1",
    template: "01900000-0000-7000-8000-0000000000c1",
  };
  /** Rows as the first release wrote them (owner-scoped), on the schema before 0002. */
  const oldRows = [
    `INSERT INTO prompt_templates (id, owner_id, name, body, variables, created_at, updated_at) VALUES ('${ids.template}', 'alice', 'greet', 'Hi {{who}}', '[{"name":"who","type":"string","required":true,"enumValues":[],"description":""}]', ${now}, ${now})`,
    `INSERT INTO prompts (id, owner_id, title, status, current_version, template_id, created_at, updated_at) VALUES ('${ids.alice1}', 'alice', 'first', 'active', 2, '${ids.template}', ${now}, ${now})`,
    `INSERT INTO prompt_versions (prompt_id, version, content, created_by, created_at) VALUES ('${ids.alice1}', 1, 'one {{x}}', 'alice', ${now})`,
    `INSERT INTO prompt_versions (prompt_id, version, content, diff, created_by, created_at) VALUES ('${ids.alice1}', 2, 'two {{x}}', 'd', 'alice', ${now})`,
    `INSERT INTO prompt_labels VALUES ('${ids.alice1}', 'production', 1, 'alice', ${now})`,
    `INSERT INTO prompt_tags VALUES ('${ids.alice1}', 'support', 'alice')`,
    `INSERT INTO prompts (id, owner_id, title, created_at, updated_at) VALUES ('${ids.alice2}', 'alice', 'second', ${now + 1}, ${now + 1})`,
    `INSERT INTO prompt_versions (prompt_id, version, content, created_by, created_at) VALUES ('${ids.alice2}', 1, 'c', 'alice', ${now + 1})`,
    `INSERT INTO prompts (id, owner_id, title, created_at, updated_at) VALUES ('${ids.bob1}', 'bob', 'bob''s', ${now + 2}, ${now + 2})`,
    `INSERT INTO prompt_versions (prompt_id, version, content, created_by, created_at) VALUES ('${ids.bob1}', 1, 'c', 'bob', ${now + 2})`,
    `INSERT INTO prompt_tags VALUES ('${ids.bob1}', 'support', 'bob')`,
    `INSERT INTO prompt_events (event_id, type, prompt_id, owner_id, version, occurred_at) VALUES ('e1', 'created', '${ids.alice1}', 'alice', 1, ${now})`,
    `INSERT INTO prompt_events (event_id, type, prompt_id, owner_id, version, occurred_at) VALUES ('e2', 'created', '${ids.bob1}', 'bob', 1, ${now})`,
  ];

  it("up -> down -> up on a database with rows: each row reachable by its old owner's token, and only by it", async () => {
    const svc = await startPromptService();
    const migrator = createMigrator(svc.db, { migrationsFolder });
    expect(await migrator.down(3)).toEqual(["0004_gated_labels", "0003_audit_key_id", "0002_projects"]);
    for (const sql of oldRows) await svc.db.client.execute(sql);

    const reachable = async () => {
      const got = must((await svc.alice.getPrompt({ id: ids.alice1 })).prompt);
      expect(got).toMatchObject({
        project: "user:alice",
        name: ids.alice1,
        version: 2,
        content: "two {{x}}",
      });
      expect(got.labels).toEqual({ production: 1, latest: 2 });
      expect((await svc.alice.getPrompt({ id: ids.alice1, label: "production" })).prompt?.content).toBe(
        "one {{x}}",
      );
      expect((await svc.alice.getPrompt({ name: ids.alice1 })).prompt?.version).toBe(1); // by name: production
      const old = new Set(Object.values(ids));
      const listed = (await svc.alice.listPrompts({})).prompts.map((p) => p.id).filter((id) => old.has(id));
      expect(listed).toEqual([ids.alice2, ids.alice1]);
      expect((await svc.alice.listPrompts({ tag: "support" })).prompts.map((p) => p.id)).toEqual([
        ids.alice1,
      ]);
      expect((await svc.bob.listPrompts({ tag: "support" })).prompts.map((p) => p.id)).toEqual([ids.bob1]);
      const rendered = await svc.alice.renderPrompt({
        id: ids.alice1,
        variables: { x: { kind: { case: "stringValue", value: "!" } } },
      });
      expect(rendered.text).toBe("two !");
      expect((await svc.alice.getPromptTemplate({ id: ids.template })).template?.project).toBe("user:alice");
      expect(
        (
          await svc.alice.renderPromptTemplate({
            name: "greet",
            variables: { who: { kind: { case: "stringValue", value: "Bo" } } },
          })
        ).text,
      ).toBe("Hi Bo");
      await expectCode(svc.bob.getPrompt({ id: ids.alice1 }), Code.NotFound);
      await expectCode(svc.alice.getPrompt({ id: ids.bob1 }), Code.NotFound);
      await expectCode(svc.bob.getPromptTemplate({ id: ids.template }), Code.NotFound);
      const events = (await svc.service.listPromptEvents({})).events.slice(0, 2);
      expect(events.map((e) => [e.promptId, e.project, e.name])).toEqual([
        [ids.alice1, "user:alice", ids.alice1],
        [ids.bob1, "user:bob", ids.bob1],
      ]);
    };

    expect(await migrator.up()).toEqual(["0002_projects", "0003_audit_key_id", "0004_gated_labels"]);
    await reachable();
    // alice writes in the new schema: a new version and a label, and a team prompt of hers
    const p = must((await svc.alice.getPrompt({ id: ids.alice2 })).prompt);
    await svc.alice.updatePrompt({
      id: p.id,
      etag: p.etag,
      updateMask: { paths: ["content"] },
      content: "c2",
    });
    const team = await svc.client("alice", ["user"], { projects: { acme: "editor" } });
    const t = must(
      (await team.createPrompt({ project: "acme", name: "team", title: "t", content: "c" })).prompt,
    );
    const rows = await tableCounts(svc.db, ["prompts", "prompt_versions", "prompt_labels", "prompt_tags"]);

    expect(await migrator.down(3)).toEqual(["0004_gated_labels", "0003_audit_key_id", "0002_projects"]);
    expect(await tableCounts(svc.db, Object.keys(rows))).toEqual(rows);
    const owners = await svc.db.client.execute("SELECT id, owner_id FROM prompts ORDER BY id");
    expect(owners.rows.map((r) => [r.id, r.owner_id])).toEqual(
      [
        [ids.alice1, "alice"],
        [ids.alice2, "alice"],
        [ids.bob1, "bob"],
        [t.id, "alice"],
      ].sort((a, b) => String(a[0]).localeCompare(String(b[0]))),
    );

    expect(await migrator.up()).toEqual(["0002_projects", "0003_audit_key_id", "0004_gated_labels"]);
    await reachable();
    expect((await svc.alice.getPrompt({ id: ids.alice2 })).prompt?.content).toBe("c2");
    // down folds team projects into their creators' personal projects (docs/projects.md, "Migration")
    expect((await svc.alice.getPrompt({ id: t.id })).prompt?.project).toBe("user:alice");
  });
});

describe("0004_gated_labels", () => {
  it("up -> down -> up on a database with projects and settings: protected labels and labels kept, gated dropped", async () => {
    const svc = await startPromptService();
    const acme = await svc.client("ada", ["user"], { projects: { acme: "admin", beta: "admin" } });
    const p = must(
      (await acme.createPrompt({ project: "acme", name: "checkout", title: "t", content: "v1" })).prompt,
    );
    await acme.setPromptLabel({ project: "acme", id: p.id, label: "production", version: 1 });
    await acme.updateProjectSettings({
      project: "acme",
      updateMask: { paths: ["protected_labels", "gated_labels"] },
      protectedLabels: ["prod-eu"],
      gatedLabels: ["production"],
    });
    await acme.updateProjectSettings({
      project: "beta",
      updateMask: { paths: ["protected_labels"] },
      protectedLabels: ["stable"],
    });
    const aliceAdmin = await svc.client("alice", ["admin"]);
    await aliceAdmin.updateProjectSettings({
      updateMask: { paths: ["gated_labels"] },
      gatedLabels: ["canary", "release"],
    });
    const settingsRows = async () =>
      (
        await svc.db.client.execute(
          "SELECT project_id, protected_labels, updated_by, updated_at FROM project_settings ORDER BY project_id",
        )
      ).rows.map((r) => ({ ...r }));
    const before = await settingsRows();
    expect(before.map((r) => [r.project_id, r.protected_labels])).toEqual([
      ["acme", '["prod-eu"]'],
      ["beta", '["stable"]'],
      ["user:alice", '["production"]'],
    ]);
    const rows = await tableCounts(svc.db);
    const migrator = createMigrator(svc.db, { migrationsFolder });

    expect(await migrator.down(1)).toEqual(["0004_gated_labels"]);
    expect(await settingsColumns(svc.db)).toEqual([
      "project_id",
      "protected_labels",
      "updated_by",
      "updated_at",
    ]);
    expect(await settingsRows()).toEqual(before);
    expect(await tableCounts(svc.db)).toEqual(rows);
    // the earlier schema takes rows as it always did
    await svc.db.client.execute(
      "INSERT INTO project_settings (project_id, protected_labels, updated_by, updated_at) VALUES ('gamma', '[]', 'ada', 1)",
    );

    expect(await migrator.up()).toEqual(["0004_gated_labels"]);
    const gated = await svc.db.client.execute(
      "SELECT project_id, gated_labels FROM project_settings ORDER BY 1",
    );
    expect(gated.rows.map((r) => [r.project_id, r.gated_labels])).toEqual([
      ["acme", "[]"],
      ["beta", "[]"],
      ["gamma", "[]"],
      ["user:alice", "[]"],
    ]);
    expect((await acme.getProjectSettings({ project: "acme" })).settings).toMatchObject({
      protectedLabels: ["prod-eu"],
      gatedLabels: [],
    });
    expect((await acme.getPrompt({ project: "acme", id: p.id })).prompt?.labels).toEqual({
      production: 1,
      latest: 1,
    });
    // and the project can gate again
    await acme.updateProjectSettings({
      project: "acme",
      updateMask: { paths: ["gated_labels"] },
      gatedLabels: ["production"],
    });
    await expectCode(
      acme.setPromptLabel({ project: "acme", id: p.id, label: "production", version: 1 }),
      Code.PermissionDenied,
    );
  });
});
