import { ChatRole, PromptKind, VariableType } from "@autoforge/contracts/prompt/v1";
import type { Value } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { Code, expectCode, must, type PromptClient, startPromptService, tableCounts } from "./helpers.js";

const acme = { projects: { acme: "publisher" } } as const;
const str = (value: string): Value => ({ kind: { case: "stringValue", value } }) as Value;
const num = (value: number): Value => ({ kind: { case: "numberValue", value } }) as Value;

async function createText(c: PromptClient, name: string, content: string, variables: object[] = []) {
  return must(
    (await c.createPrompt({ project: "acme", name, title: name, content, variables: variables as never }))
      .prompt,
  );
}

describe("chat prompts", () => {
  it("create, new version, readable diff, render with typed variables", async () => {
    const svc = await startPromptService();
    const ada = await svc.client("ada", ["user"], acme);
    const connect = await svc.connectClient("ada", ["user"], acme);
    const p = must(
      (
        await ada.createPrompt({
          project: "acme",
          name: "support/chat",
          title: "Support chat",
          messages: [
            {
              role: ChatRole.SYSTEM,
              content: "You are a {{tone}} support agent. Answer in {{sentences}} sentences.",
            },
            { role: ChatRole.USER, content: "{{question}}", name: "customer" },
          ],
          variables: [
            { name: "tone", type: VariableType.ENUM, enumValues: ["friendly", "formal"], required: true },
            { name: "sentences", type: VariableType.NUMBER, defaultValue: num(3) },
            { name: "question", type: VariableType.STRING, required: true },
          ],
          modelConfig: { model: "gpt-4o", temperature: 0.2 },
        })
      ).prompt,
    );
    expect(p.kind).toBe(PromptKind.CHAT);
    expect(p.content).toBe("");
    expect(p.messages.map((m) => [m.role, m.name])).toEqual([
      [ChatRole.SYSTEM, ""],
      [ChatRole.USER, "customer"],
    ]);
    expect(p.variables.map((v) => v.name)).toEqual(["tone", "sentences", "question"]);

    const v2 = must(
      (
        await ada.updatePrompt({
          project: "acme",
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["messages", "model_config"] },
          messages: [
            { role: ChatRole.SYSTEM, content: "You are a {{tone}} support agent. Be brief." },
            { role: ChatRole.USER, content: "{{question}}", name: "customer" },
          ],
          modelConfig: { model: "gpt-4o", temperature: 0.7 },
        })
      ).prompt,
    );
    expect(v2.version).toBe(2);
    // the declarations carry over to the new version
    expect(v2.variables.map((v) => v.name)).toEqual(["tone", "sentences", "question"]);
    const { diff } = await ada.diffPromptVersions({ project: "acme", id: p.id, fromVersion: 1 });
    expect(diff).toContain("--- v1\n+++ v2");
    expect(diff).toContain("### system");
    expect(diff).toContain(
      "-You are a {{tone}} support agent. Answer in {{sentences}} sentences.\n+You are a {{tone}} support agent. Be brief.",
    );
    expect(diff).toContain('-  "temperature": 0.2\n+  "temperature": 0.7');
    expect(diff).not.toContain("-### user");

    for (const client of [ada, connect]) {
      const r = await client.renderPrompt({
        project: "acme",
        name: "support/chat",
        version: 1,
        variables: { tone: str("formal"), question: str("Where is my order {{id}}?") },
      });
      expect(r.kind).toBe(PromptKind.CHAT);
      expect(r.messages.map((m) => [m.role, m.content, m.name])).toEqual([
        [ChatRole.SYSTEM, "You are a formal support agent. Answer in 3 sentences.", ""],
        [ChatRole.USER, "Where is my order {{id}}?", "customer"],
      ]);
      expect(r.modelConfig).toEqual({ model: "gpt-4o", temperature: 0.2 });
    }
    // a missing, mistyped or undeclared variable is named
    await expectCode(
      ada.renderPrompt({ project: "acme", id: p.id, variables: { tone: str("formal") } }),
      Code.InvalidArgument,
      /^variables\.question: is required/,
    );
    await expectCode(
      ada.renderPrompt({ project: "acme", id: p.id, variables: { tone: str("rude"), question: str("q") } }),
      Code.InvalidArgument,
      /^variables\.tone: must be one of friendly, formal/,
    );
    await expectCode(
      ada.renderPrompt({ project: "acme", id: p.id, variables: { tone: num(1), question: str("q") } }),
      Code.InvalidArgument,
      /^variables\.tone/,
    );
    await expectCode(
      ada.renderPrompt({
        project: "acme",
        id: p.id,
        variables: { tone: str("formal"), question: str("q"), extra: str("x") },
      }),
      Code.InvalidArgument,
      /^variables\.extra/,
    );
    // a version or label that does not exist is NOT_FOUND (as GetPrompt), never INTERNAL
    await expectCode(ada.renderPrompt({ project: "acme", id: p.id, version: 9 }), Code.NotFound, /version 9/);
    await expectCode(
      ada.renderPrompt({ project: "acme", id: p.id, label: "nope" }),
      Code.NotFound,
      /label nope/,
    );
    // a chat prompt takes messages, not content; and the reverse
    await expectCode(
      ada.updatePrompt({
        project: "acme",
        id: p.id,
        etag: v2.etag,
        updateMask: { paths: ["content"] },
        content: "x",
      }),
      Code.InvalidArgument,
      /^content: /,
    );
  });

  it("refuses an undeclared {{var}} in a new version, naming it; nothing is written", async () => {
    const svc = await startPromptService();
    const ada = await svc.client("ada", ["user"], acme);
    const before = await tableCounts(svc.db);
    await expectCode(
      ada.createPrompt({
        project: "acme",
        name: "x",
        title: "x",
        content: "Hi {{name}}, {{surname}}",
        variables: [{ name: "name", type: VariableType.STRING }],
      }),
      Code.InvalidArgument,
      /^content: .*\{\{surname\}\}/,
    );
    await expectCode(
      ada.createPrompt({
        project: "acme",
        name: "y",
        title: "y",
        messages: [
          { role: ChatRole.SYSTEM, content: "ok" },
          { role: ChatRole.USER, content: "{{q}}" },
        ],
        variables: [{ name: "other", type: VariableType.STRING }],
      }),
      Code.InvalidArgument,
      /^messages\[1\]\.content: .*\{\{q\}\}/,
    );
    await expectCode(
      ada.createPrompt({ project: "acme", name: "z", title: "z", messages: [{ content: "no role" }] }),
      Code.InvalidArgument,
      /^messages\[0\]\.role/,
    );
    await expectCode(
      ada.createPrompt({
        project: "acme",
        name: "w",
        title: "w",
        content: "c",
        messages: [{ role: 1, content: "c" }],
      }),
      Code.InvalidArgument,
      /^content: set content .* or messages/,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
    // a version declaring nothing (clients from before declarations): each {{var}} is a required string
    const legacy = await createText(ada, "legacy", "Summarise {{text}}");
    expect(legacy.variables).toEqual([]);
    await expectCode(
      ada.renderPrompt({ project: "acme", id: legacy.id }),
      Code.InvalidArgument,
      /^variables\.text: is required/,
    );
    expect(
      (await ada.renderPrompt({ project: "acme", id: legacy.id, variables: { text: str("it") } })).text,
    ).toBe("Summarise it");
  });
});

describe("variables from a template", () => {
  it("a prompt made from a template declares the template's variables its body uses", async () => {
    const svc = await startPromptService();
    const ada = await svc.client("ada", ["user"], acme);
    const { template } = await ada.createPromptTemplate({
      project: "acme",
      name: "greet",
      body: "Hi {{who}} from {{team}}",
      variables: [
        { name: "who", type: VariableType.STRING, required: true },
        { name: "team", type: VariableType.STRING, defaultValue: str("support") },
      ],
    });
    const templateId = must(template).id;
    const open = must(
      (
        await ada.createPrompt({
          project: "acme",
          name: "open",
          title: "t",
          content: "Dear {{who}}",
          templateId,
        })
      ).prompt,
    );
    expect(open.variables.map((v) => [v.name, v.required])).toEqual([["who", true]]);
    expect(
      (await ada.renderPrompt({ project: "acme", id: open.id, variables: { who: str("Bo") } })).text,
    ).toBe("Dear Bo");
    // the template's rendered text uses none of them: nothing to fill at render
    const rendered = await ada.renderPromptTemplate({
      project: "acme",
      id: templateId,
      variables: { who: str("Bo") },
    });
    const fixed = must(
      (
        await ada.createPrompt({
          project: "acme",
          name: "fixed",
          title: "t",
          content: rendered.text,
          templateId,
        })
      ).prompt,
    );
    expect(fixed.variables).toEqual([]);
    expect((await ada.renderPrompt({ project: "acme", id: fixed.id })).text).toBe("Hi Bo from support");
    // a variable the template does not declare is refused
    await expectCode(
      ada.createPrompt({ project: "acme", name: "bad", title: "t", content: "{{nope}}", templateId }),
      Code.InvalidArgument,
      /^content: .*\{\{nope\}\}/,
    );
  });
});

describe("composition", () => {
  it("includes by label, version and default; returns every version used; the includes' own variables", async () => {
    const svc = await startPromptService();
    const ada = await svc.client("ada", ["user"], acme);
    const tone = await createText(ada, "shared/tone", "Be {{style}}.", [
      { name: "style", type: VariableType.STRING, defaultValue: str("kind") },
    ]);
    await ada.setPromptLabel({ project: "acme", id: tone.id, label: "production", version: 1 });
    await ada.updatePrompt({
      project: "acme",
      id: tone.id,
      etag: must((await ada.getPrompt({ project: "acme", id: tone.id })).prompt).etag,
      updateMask: { paths: ["content"] },
      content: "Be {{style}}, always.",
    });
    await createText(ada, "shared/footer", "-- {{team}}", [
      { name: "team", type: VariableType.STRING, required: true },
    ]);
    const root = await createText(
      ada,
      "support/answer",
      "{{> shared/tone@production}} Answer: {{answer}}\n{{> shared/tone@2}}\n{{> shared/footer}}",
      [{ name: "answer", type: VariableType.STRING, required: true }],
    );
    const r = await ada.renderPrompt({
      project: "acme",
      id: root.id,
      variables: { answer: str("{{> shared/footer}}"), team: str("Support"), style: str("calm") },
    });
    expect(r.text).toBe("Be calm. Answer: {{> shared/footer}}\nBe calm, always.\n-- Support");
    expect(r.resolved.map((u) => [u.name, u.version, u.label])).toEqual([
      ["support/answer", 1, ""],
      ["shared/tone", 1, "production"],
      ["shared/tone", 2, ""],
      ["shared/footer", 1, ""],
    ]);
    expect(r.resolved[1]?.promptId).toBe(tone.id);
    // an include that names nothing is FAILED_PRECONDITION naming it
    const broken = await createText(ada, "broken", "{{> shared/missing@production}}");
    await expectCode(
      ada.renderPrompt({ project: "acme", id: broken.id }),
      Code.FailedPrecondition,
      /shared\/missing/,
    );
    // includes never cross projects: another project's prompt of the same name is not found
    const bea = await svc.client("bea", ["user"], { projects: { other: "editor" } });
    await bea.createPrompt({ project: "other", name: "shared/secret", title: "s", content: "secret" });
    const probe = await createText(ada, "probe", "{{> shared/secret}}");
    await expectCode(
      ada.renderPrompt({ project: "acme", id: probe.id }),
      Code.FailedPrecondition,
      /not found/,
    );
  });

  it("refuses a cycle (naming it) and nesting past the depth limit", async () => {
    const svc = await startPromptService();
    const ada = await svc.client("ada", ["user"], acme);
    await createText(ada, "cycle/a", "A {{> cycle/b@latest}}");
    await createText(ada, "cycle/b", "B {{> cycle/a}}");
    await expectCode(
      ada.renderPrompt({ project: "acme", name: "cycle/a" }),
      Code.FailedPrecondition,
      /include cycle: cycle\/a.* -> cycle\/b@latest -> cycle\/a/,
    );
    await createText(ada, "self", "me {{> self}}");
    await expectCode(ada.renderPrompt({ project: "acme", name: "self" }), Code.FailedPrecondition, /cycle/);
    // depth: d0 includes d1 ... d6 (6 levels of includes; the limit is 5)
    for (let i = 6; i >= 0; i--)
      await createText(ada, `deep/d${i}`, i === 6 ? "end" : `{{> deep/d${i + 1}}}`);
    await expectCode(
      ada.renderPrompt({ project: "acme", name: "deep/d0" }),
      Code.FailedPrecondition,
      /deeper than 5/,
    );
    expect((await ada.renderPrompt({ project: "acme", name: "deep/d1" })).text).toBe("end");
  });
});

describe("labels: compare-and-swap and history", () => {
  it("20 concurrent SetPromptLabel production with the same expected_version: 1 OK, 19 ABORTED", async () => {
    const svc = await startPromptService();
    const ada = await svc.client("ada", ["user"], acme);
    let p = await createText(ada, "cas", "v1");
    for (let v = 2; v <= 21; v++) {
      p = must(
        (
          await ada.updatePrompt({
            project: "acme",
            id: p.id,
            etag: p.etag,
            updateMask: { paths: ["content"] },
            content: `v${v}`,
          })
        ).prompt,
      );
    }
    await ada.setPromptLabel({
      project: "acme",
      id: p.id,
      label: "production",
      version: 1,
      expectedVersion: 0,
    });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        ada.setPromptLabel({
          project: "acme",
          id: p.id,
          label: "production",
          version: i + 2,
          expectedVersion: 1,
          reason: `release ${i + 2}`,
        }),
      ),
    );
    const ok = outcomes.filter((o) => o.status === "fulfilled");
    const refused = outcomes.flatMap((o) =>
      o.status === "rejected" ? [o.reason as Error & { code: number }] : [],
    );
    expect(ok).toHaveLength(1);
    expect(refused.map((e) => e.code)).toEqual(Array(19).fill(Code.Aborted));
    const winner = must(
      (await ada.getPrompt({ project: "acme", id: p.id, label: "production" })).prompt,
    ).version;
    expect(refused[0]?.message).toContain(`points to version ${winner}, expected at version 1`);
    // expected 0 = must be absent; a mismatch on remove is ABORTED too
    await expectCode(
      ada.setPromptLabel({ project: "acme", id: p.id, label: "production", version: 3, expectedVersion: 0 }),
      Code.Aborted,
    );
    await expectCode(
      ada.removePromptLabel({ project: "acme", id: p.id, label: "production", expectedVersion: 1 }),
      Code.Aborted,
    );
    const bea = await svc.client("bea", ["user"], { projects: { acme: "publisher" } });
    await bea.setPromptLabel({
      project: "acme",
      id: p.id,
      label: "production",
      version: 1,
      expectedVersion: winner,
    });
    await ada.setPromptLabel({ project: "acme", id: p.id, label: "staging", version: 5 });
    await bea.removePromptLabel({ project: "acme", id: p.id, label: "production", reason: "rollback done" });

    const history = (await ada.listPromptLabelHistory({ project: "acme", promptId: p.id })).moves;
    expect(history.map((m) => [m.label, m.fromVersion, m.toVersion, m.actor, m.reason])).toEqual([
      ["production", 1, 0, "bea", "rollback done"],
      ["staging", 0, 5, "ada", ""],
      ["production", winner, 1, "bea", ""],
      ["production", 1, winner, "ada", `release ${winner}`],
      ["production", 0, 1, "ada", ""],
    ]);
    // one label, paged
    const first = await ada.listPromptLabelHistory({
      project: "acme",
      promptId: p.id,
      label: "production",
      pageSize: 2,
    });
    const second = await ada.listPromptLabelHistory({
      project: "acme",
      promptId: p.id,
      label: "production",
      pageSize: 2,
      pageToken: first.nextPageToken,
    });
    expect([...first.moves, ...second.moves].map((m) => m.toVersion)).toEqual([0, 1, winner, 1]);
    expect(second.nextPageToken).toBe("");
  });

  it("protected labels are set per project; a no-op move writes no history", async () => {
    const svc = await startPromptService();
    const admin = await svc.client("root", ["user"], { projects: { acme: "admin" } });
    const editor = await svc.client("ed", ["user"], { projects: { acme: "editor" } });
    const p = await createText(admin, "guarded", "v1");
    await expectCode(
      editor.setPromptLabel({ project: "acme", id: p.id, label: "production", version: 1 }),
      Code.PermissionDenied,
      /protected label `production`/,
    );
    expect((await editor.getProjectSettings({ project: "acme" })).settings?.protectedLabels).toEqual([
      "production",
    ]);
    const updated = await admin.updateProjectSettings({
      project: "acme",
      updateMask: { paths: ["protected_labels"] },
      protectedLabels: ["prod-eu", "prod-us"],
    });
    expect(updated.settings?.protectedLabels).toEqual(["prod-eu", "prod-us"]);
    await editor.setPromptLabel({ project: "acme", id: p.id, label: "production", version: 1 });
    await expectCode(
      editor.setPromptLabel({ project: "acme", id: p.id, label: "prod-eu", version: 1 }),
      Code.PermissionDenied,
    );
    await expectCode(
      editor.updateProjectSettings({ project: "acme", updateMask: { paths: ["protected_labels"] } }),
      Code.PermissionDenied,
    );
    await expectCode(
      admin.updateProjectSettings({
        project: "acme",
        updateMask: { paths: ["protected_labels"] },
        protectedLabels: ["latest"],
      }),
      Code.InvalidArgument,
      /^protected_labels\[0\]/,
    );
    const before = (await admin.listPromptLabelHistory({ project: "acme", promptId: p.id })).moves.length;
    await editor.setPromptLabel({ project: "acme", id: p.id, label: "production", version: 1 });
    expect((await admin.listPromptLabelHistory({ project: "acme", promptId: p.id })).moves).toHaveLength(
      before,
    );
  });
});
