import { PromptStatus } from "@autoforge/contracts/prompt/v1";
import { describe, expect, it } from "vitest";
import { Code, expectCode, must, startPromptService, tableCounts } from "./helpers.js";

const missing = "01900000-0000-7000-8000-000000000000";

describe("CreatePrompt", () => {
  it("creates version 1 as a draft with tags merged and sorted, metadata and model_config", async () => {
    const svc = await startPromptService();
    const { prompt } = await svc.alice.createPrompt({
      title: "Summarise",
      content: "Summarise {{text}}\n",
      tags: ["b", "a", "b"],
      metadata: { team: "core", n: 1 },
      modelConfig: { provider: "openai", model: "gpt-4o", temperature: 0.2 },
    });
    expect(prompt).toMatchObject({
      ownerId: "alice",
      title: "Summarise",
      content: "Summarise {{text}}\n",
      version: 1,
      currentVersion: 1,
      status: PromptStatus.DRAFT,
      tags: ["a", "b"],
      labels: { latest: 1 },
      metadata: { team: "core", n: 1 },
      modelConfig: { provider: "openai", model: "gpt-4o", temperature: 0.2 },
      parentId: "",
      templateId: "",
    });
    expect(prompt?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);
    expect(prompt?.etag).not.toBe("");
    expect(prompt?.createTime).toBeDefined();
    expect(prompt?.deleteTime).toBeUndefined();
  });

  it("links a parent and a template of the same owner; unknown ones are NOT_FOUND", async () => {
    const svc = await startPromptService();
    const parent = must((await svc.alice.createPrompt({ title: "p", content: "x" })).prompt);
    const { template } = await svc.alice.createPromptTemplate({ name: "t", body: "b" });
    const child = must(
      (
        await svc.alice.createPrompt({
          title: "c",
          content: "y",
          parentId: parent.id,
          templateId: must(template).id,
        })
      ).prompt,
    );
    expect(child.parentId).toBe(parent.id);
    expect(child.templateId).toBe(must(template).id);
    await expectCode(
      svc.alice.createPrompt({ title: "c", content: "y", parentId: missing }),
      Code.NotFound,
      /parent_id/,
    );
    await expectCode(
      svc.alice.createPrompt({ title: "c", content: "y", templateId: missing }),
      Code.NotFound,
      /template_id/,
    );
    // another owner's parent/template is invisible
    await expectCode(
      svc.bob.createPrompt({ title: "c", content: "y", parentId: parent.id }),
      Code.NotFound,
      /parent_id/,
    );
    await expectCode(
      svc.bob.createPrompt({ title: "c", content: "y", templateId: must(template).id }),
      Code.NotFound,
      /template_id/,
    );
  });

  it("replays a retried request_id and refuses the key for another payload (ALREADY_EXISTS)", async () => {
    const svc = await startPromptService();
    const first = must(
      (await svc.alice.createPrompt({ title: "t", content: "c", requestId: "req-1" })).prompt,
    );
    const again = must(
      (await svc.alice.createPrompt({ title: "t", content: "c", requestId: "req-1" })).prompt,
    );
    expect(again).toEqual(first);
    await expectCode(
      svc.alice.createPrompt({ title: "other", content: "c", requestId: "req-1" }),
      Code.AlreadyExists,
      /request_id/,
    );
    // keys are per owner: bob's req-1 is his own
    const bobs = must((await svc.bob.createPrompt({ title: "t", content: "c", requestId: "req-1" })).prompt);
    expect(bobs.id).not.toBe(first.id);
    expect((await tableCounts(svc.db)).prompts).toBe(2);
  });

  it("refuses missing required fields with INVALID_ARGUMENT naming them", async () => {
    const svc = await startPromptService();
    await expectCode(svc.alice.createPrompt({ title: "", content: "c" }), Code.InvalidArgument, /^title/);
    await expectCode(svc.alice.createPrompt({ title: "t", content: "" }), Code.InvalidArgument, /^content/);
    expect((await tableCounts(svc.db)).prompts).toBe(0);
  });
});

describe("GetPrompt", () => {
  it("shows the current version, a given version, or a label's version", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "t", content: "v1" })).prompt);
    const p2 = must(
      (
        await svc.alice.updatePrompt({
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["content"] },
          content: "v2",
        })
      ).prompt,
    );
    await svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 1 });
    expect((await svc.alice.getPrompt({ id: p.id })).prompt).toMatchObject({
      content: "v2",
      version: 2,
      currentVersion: 2,
    });
    expect((await svc.alice.getPrompt({ id: p.id, version: 1 })).prompt).toMatchObject({
      content: "v1",
      version: 1,
    });
    expect((await svc.alice.getPrompt({ id: p.id, label: "staging" })).prompt).toMatchObject({
      content: "v1",
      version: 1,
    });
    expect((await svc.alice.getPrompt({ id: p.id, label: "latest" })).prompt).toMatchObject({
      content: "v2",
      version: 2,
    });
    expect(p2.labels).toEqual({ latest: 2 });
  });

  it("answers NOT_FOUND for an unknown prompt, version or label; INVALID_ARGUMENT for both version and label", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "t", content: "v1" })).prompt);
    await expectCode(svc.alice.getPrompt({ id: missing }), Code.NotFound);
    await expectCode(svc.alice.getPrompt({ id: p.id, version: 9 }), Code.NotFound, /version 9/);
    await expectCode(
      svc.alice.getPrompt({ id: p.id, label: "production" }),
      Code.NotFound,
      /label production/,
    );
    await expectCode(
      svc.alice.getPrompt({ id: p.id, version: 1, label: "staging" }),
      Code.InvalidArgument,
      /^label/,
    );
    await expectCode(svc.alice.getPrompt({ id: "not-a-uuid" }), Code.InvalidArgument, /^id/);
  });
});

describe("ListPrompts", () => {
  it("lists the caller's prompts newest first, filtered, keyset-paginated", async () => {
    const svc = await startPromptService();
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const p = must(
        (
          await svc.alice.createPrompt({
            title: `p${i}`,
            content: "c",
            tags: i % 2 === 0 ? ["even"] : ["odd"],
          })
        ).prompt,
      );
      ids.push(p.id);
      if (i % 3 === 0) {
        await svc.alice.updatePrompt({
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["status"] },
          status: PromptStatus.ACTIVE,
        });
      }
    }
    await svc.bob.createPrompt({ title: "bob's", content: "c", tags: ["even"] });
    await svc.alice.deletePrompt({ id: must(ids[6]) });

    const all: string[] = [];
    let pageToken = "";
    do {
      const page = await svc.alice.listPrompts({ pageSize: 2, pageToken });
      all.push(...page.prompts.map((p) => p.id));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(all).toEqual(ids.slice(0, 6).reverse());

    const withDeleted = await svc.alice.listPrompts({ includeDeleted: true });
    expect(withDeleted.prompts.map((p) => p.id)).toEqual([...ids].reverse());
    expect(withDeleted.prompts[0]?.deleteTime).toBeDefined();

    const active = await svc.alice.listPrompts({ status: PromptStatus.ACTIVE });
    expect(active.prompts.map((p) => p.id)).toEqual([ids[3], ids[0]]);
    const activeAll = await svc.alice.listPrompts({ status: PromptStatus.ACTIVE, includeDeleted: true });
    expect(activeAll.prompts.map((p) => p.id)).toEqual([ids[6], ids[3], ids[0]]);

    const even = await svc.alice.listPrompts({ tag: "even", pageSize: 2 });
    expect(even.prompts.map((p) => p.id)).toEqual([ids[4], ids[2]]);
    const even2 = await svc.alice.listPrompts({ tag: "even", pageSize: 2, pageToken: even.nextPageToken });
    expect(even2.prompts.map((p) => p.id)).toEqual([ids[0]]);
    expect(even2.nextPageToken).toBe("");
    const evenActive = await svc.alice.listPrompts({
      tag: "even",
      status: PromptStatus.ACTIVE,
      includeDeleted: true,
    });
    expect(evenActive.prompts.map((p) => p.id)).toEqual([ids[6], ids[0]]);
  });

  it("refuses a page token reused with other filters, and bad page sizes", async () => {
    const svc = await startPromptService();
    for (let i = 0; i < 3; i++) await svc.alice.createPrompt({ title: `p${i}`, content: "c" });
    const page = await svc.alice.listPrompts({ pageSize: 1 });
    expect(page.nextPageToken).not.toBe("");
    await expectCode(
      svc.alice.listPrompts({ pageSize: 1, pageToken: page.nextPageToken, status: PromptStatus.DRAFT }),
      Code.InvalidArgument,
      /^page_token/,
    );
    await expectCode(
      svc.bob.listPrompts({ pageSize: 1, pageToken: page.nextPageToken }),
      Code.InvalidArgument,
      /^page_token/,
    );
    await expectCode(svc.alice.listPrompts({ pageToken: "garbage!" }), Code.InvalidArgument, /^page_token/);
    await expectCode(svc.alice.listPrompts({ pageSize: 10_000 }), Code.InvalidArgument, /^page_size/);
    await expectCode(svc.alice.listPrompts({ pageSize: -1 }), Code.InvalidArgument, /^page_size/);
    expect((await svc.alice.listPrompts({})).prompts).toHaveLength(3);
  });
});

describe("UpdatePrompt", () => {
  it("appends a version with a diff for content, keeps version for title/status/tags/metadata", async () => {
    const svc = await startPromptService();
    const p = must(
      (await svc.alice.createPrompt({ title: "t", content: "line1\nline2\n", modelConfig: { model: "a" } }))
        .prompt,
    );
    const u1 = must(
      (
        await svc.alice.updatePrompt({
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["title", "status", "tags", "metadata"] },
          title: "new title",
          status: PromptStatus.ACTIVE,
          tags: ["x"],
          metadata: { k: "v" },
        })
      ).prompt,
    );
    expect(u1).toMatchObject({
      title: "new title",
      status: PromptStatus.ACTIVE,
      tags: ["x"],
      metadata: { k: "v" },
      currentVersion: 1,
    });
    expect(u1.etag).not.toBe(p.etag);

    const u2 = must(
      (
        await svc.alice.updatePrompt({
          id: p.id,
          etag: u1.etag,
          updateMask: { paths: ["content"] },
          content: "line1\nLINE2\n",
          changeNote: "shout",
        })
      ).prompt,
    );
    expect(u2).toMatchObject({
      currentVersion: 2,
      version: 2,
      content: "line1\nLINE2\n",
      modelConfig: { model: "a" },
    });
    const u3 = must(
      (
        await svc.alice.updatePrompt({
          id: p.id,
          etag: u2.etag,
          updateMask: { paths: ["model_config"] },
          modelConfig: { model: "b" },
        })
      ).prompt,
    );
    expect(u3).toMatchObject({ currentVersion: 3, modelConfig: { model: "b" }, content: "line1\nLINE2\n" });

    const versions = (await svc.alice.listPromptVersions({ promptId: p.id })).versions;
    expect(versions.map((v) => v.version)).toEqual([3, 2, 1]);
    expect(versions[1]).toMatchObject({ changeNote: "shout", createdBy: "alice" });
    expect(versions[1]?.diff).toContain("-line2\n+LINE2");
    // a version that changed only model_config shows it in its diff (the canonical form ends with the settings)
    expect(versions[0]?.diff).toContain('-  "model": "a"\n+  "model": "b"');
    expect(versions[0]?.diff).not.toContain("line1");
    expect(versions[2]?.diff).toBe("");
  });

  it("returns the prompt unchanged (same etag, no event) when nothing changes", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "t", content: "c" })).prompt);
    const before = await tableCounts(svc.db);
    const same = must(
      (
        await svc.alice.updatePrompt({
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["title", "content"] },
          title: "t",
          content: "c",
        })
      ).prompt,
    );
    expect(same.etag).toBe(p.etag);
    expect(await tableCounts(svc.db)).toEqual(before);
  });

  it("answers ABORTED for a stale etag, FAILED_PRECONDITION for a deleted prompt, INVALID_ARGUMENT for a bad mask", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "t", content: "c" })).prompt);
    await svc.alice.updatePrompt({ id: p.id, etag: p.etag, updateMask: { paths: ["title"] }, title: "t2" });
    await expectCode(
      svc.alice.updatePrompt({ id: p.id, etag: p.etag, updateMask: { paths: ["title"] }, title: "t3" }),
      Code.Aborted,
      /etag/,
    );
    const fresh = must((await svc.alice.getPrompt({ id: p.id })).prompt);
    await expectCode(
      svc.alice.updatePrompt({ id: p.id, etag: fresh.etag, updateMask: { paths: ["owner_id"] } }),
      Code.InvalidArgument,
      /^update_mask/,
    );
    await expectCode(
      svc.alice.updatePrompt({ id: p.id, etag: fresh.etag }),
      Code.InvalidArgument,
      /^update_mask/,
    );
    await expectCode(
      svc.alice.updatePrompt({ id: p.id, etag: "", updateMask: { paths: ["title"] }, title: "x" }),
      Code.InvalidArgument,
      /^etag/,
    );
    await expectCode(
      svc.alice.updatePrompt({
        id: p.id,
        etag: fresh.etag,
        updateMask: { paths: ["status"] },
        status: PromptStatus.UNSPECIFIED,
      }),
      Code.InvalidArgument,
      /^status/,
    );
    await expectCode(
      svc.alice.updatePrompt({ id: p.id, etag: fresh.etag, updateMask: { paths: ["title"] }, title: "" }),
      Code.InvalidArgument,
      /^title/,
    );
    await expectCode(
      svc.alice.updatePrompt({ id: p.id, etag: fresh.etag, updateMask: { paths: ["content"] }, content: "" }),
      Code.InvalidArgument,
      /^content/,
    );
    const deleted = must((await svc.alice.deletePrompt({ id: p.id })).prompt);
    await expectCode(
      svc.alice.updatePrompt({ id: p.id, etag: deleted.etag, updateMask: { paths: ["title"] }, title: "t4" }),
      Code.FailedPrecondition,
      /restore/,
    );
    await expectCode(
      svc.alice.updatePrompt({ id: missing, etag: "x", updateMask: { paths: ["title"] }, title: "t" }),
      Code.NotFound,
    );
  });
});

describe("DeletePrompt / RestorePrompt / PurgePrompt", () => {
  it("soft-deletes, restores and purges; repeated delete/restore return the prompt unchanged", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "t", content: "c", tags: ["a"] })).prompt);
    await svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 1 });
    const d = must((await svc.alice.deletePrompt({ id: p.id })).prompt);
    expect(d.deleteTime).toBeDefined();
    const d2 = must((await svc.alice.deletePrompt({ id: p.id })).prompt);
    expect(d2.etag).toBe(d.etag);
    expect((await svc.alice.getPrompt({ id: p.id })).prompt?.deleteTime).toBeDefined();
    const r = must((await svc.alice.restorePrompt({ id: p.id })).prompt);
    expect(r.deleteTime).toBeUndefined();
    expect((await svc.alice.restorePrompt({ id: p.id })).prompt?.etag).toBe(r.etag);

    expect((await svc.alice.purgePrompt({ id: p.id })).id).toBe(p.id);
    await expectCode(svc.alice.getPrompt({ id: p.id }), Code.NotFound);
    await expectCode(svc.alice.purgePrompt({ id: p.id }), Code.NotFound);
    const counts = await tableCounts(svc.db);
    expect([counts.prompts, counts.prompt_versions, counts.prompt_labels, counts.prompt_tags]).toEqual([
      0, 0, 0, 0,
    ]);
  });

  it("purging a parent keeps the derived prompt (parent_id becomes empty)", async () => {
    const svc = await startPromptService();
    const parent = must((await svc.alice.createPrompt({ title: "p", content: "x" })).prompt);
    const child = must(
      (await svc.alice.createPrompt({ title: "c", content: "y", parentId: parent.id })).prompt,
    );
    await svc.alice.purgePrompt({ id: parent.id });
    expect((await svc.alice.getPrompt({ id: child.id })).prompt?.parentId).toBe("");
  });

  it("DeletePrompt checks an etag when given (ABORTED); unknown ids are NOT_FOUND", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "t", content: "c" })).prompt);
    await svc.alice.updatePrompt({ id: p.id, etag: p.etag, updateMask: { paths: ["title"] }, title: "t2" });
    await expectCode(svc.alice.deletePrompt({ id: p.id, etag: p.etag }), Code.Aborted);
    await expectCode(svc.alice.deletePrompt({ id: missing }), Code.NotFound);
    await expectCode(svc.alice.restorePrompt({ id: missing }), Code.NotFound);
    await expectCode(svc.alice.purgePrompt({ id: "nope" }), Code.InvalidArgument, /^id/);
  });
});
