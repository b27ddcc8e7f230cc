import { PromptStatus } from "@autoforge/contracts/prompt/v1";
import { describe, expect, it } from "vitest";
import { Code, expectCode, must, type PromptClient, startPromptService, tableCounts } from "./helpers.js";

describe("tenancy", () => {
  it("every RPC on another owner's prompt or template answers NOT_FOUND and changes nothing", async () => {
    const svc = await startPromptService();
    let p = must(
      (await svc.alice.createPrompt({ title: "alice's", content: "v1", tags: ["secret"] })).prompt,
    );
    p = must(
      (
        await svc.alice.updatePrompt({
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["content"] },
          content: "v2",
        })
      ).prompt,
    );
    p = must((await svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 1 })).prompt);
    const deleted = must((await svc.alice.createPrompt({ title: "deleted", content: "x" })).prompt);
    await svc.alice.deletePrompt({ id: deleted.id });
    const t = must((await svc.alice.createPromptTemplate({ name: "alice-template", body: "b" })).template);

    const before = await tableCounts(svc.db);
    const alicesPrompt = (await svc.alice.getPrompt({ id: p.id })).prompt;

    const cases: [string, (c: PromptClient) => Promise<unknown>][] = [
      ["GetPrompt", (c) => c.getPrompt({ id: p.id })],
      ["GetPrompt by label", (c) => c.getPrompt({ id: p.id, label: "staging" })],
      [
        "UpdatePrompt",
        (c) => c.updatePrompt({ id: p.id, etag: p.etag, updateMask: { paths: ["title"] }, title: "mine" }),
      ],
      ["DeletePrompt", (c) => c.deletePrompt({ id: p.id })],
      ["DeletePrompt with etag", (c) => c.deletePrompt({ id: p.id, etag: p.etag })],
      ["RestorePrompt", (c) => c.restorePrompt({ id: deleted.id })],
      ["PurgePrompt", (c) => c.purgePrompt({ id: p.id })],
      ["ListPromptVersions", (c) => c.listPromptVersions({ promptId: p.id })],
      ["DiffPromptVersions", (c) => c.diffPromptVersions({ id: p.id, fromVersion: 1 })],
      ["SetPromptLabel", (c) => c.setPromptLabel({ id: p.id, label: "staging", version: 2 })],
      ["RemovePromptLabel", (c) => c.removePromptLabel({ id: p.id, label: "staging" })],
      ["CreatePrompt with parent_id", (c) => c.createPrompt({ title: "x", content: "y", parentId: p.id })],
      [
        "CreatePrompt with template_id",
        (c) => c.createPrompt({ title: "x", content: "y", templateId: t.id }),
      ],
      ["GetPromptTemplate", (c) => c.getPromptTemplate({ id: t.id })],
      ["RenderPromptTemplate by id", (c) => c.renderPromptTemplate({ id: t.id })],
      ["RenderPromptTemplate by name", (c) => c.renderPromptTemplate({ name: "alice-template" })],
    ];
    for (const [name, call] of cases) {
      for (const [who, client] of [
        ["bob", svc.bob],
        ["a publisher", await svc.client("mallory", ["user", "publisher"])],
        ["an admin", svc.adminPrompts],
      ] as const) {
        await expectCode(call(client), Code.NotFound).catch((e: unknown) => {
          throw new Error(`${name} as ${who}: ${String(e)}`);
        });
      }
    }
    // lists never show another owner's rows
    expect((await svc.bob.listPrompts({ includeDeleted: true })).prompts).toEqual([]);
    expect((await svc.bob.listPrompts({ tag: "secret", includeDeleted: true })).prompts).toEqual([]);
    expect((await svc.bob.listPrompts({ status: PromptStatus.DRAFT })).prompts).toEqual([]);
    expect((await svc.bob.listPromptTemplates({})).templates).toEqual([]);

    expect(await tableCounts(svc.db)).toEqual(before);
    expect((await svc.alice.getPrompt({ id: p.id })).prompt).toEqual(alicesPrompt);
    // bob may reuse alice's template name: names are per owner
    expect(
      (await svc.bob.createPromptTemplate({ name: "alice-template", body: "mine" })).template?.ownerId,
    ).toBe("bob");
  });

  it("a user token on the event feed is PERMISSION_DENIED; AdminService needs admin", async () => {
    const svc = await startPromptService();
    await expectCode(svc.bob.listPromptEvents({}), Code.PermissionDenied);
    await expectCode(svc.adminAsUser.verifyAuditChain({}), Code.PermissionDenied);
    await expectCode(svc.adminAsUser.listAuditEvents({}), Code.PermissionDenied);
    await expectCode(svc.adminAsUser.runMaintenance({}), Code.PermissionDenied);
    await expectCode(svc.adminAsUser.getDatabaseStats({}), Code.PermissionDenied);
  });
});
