import { describe, expect, it } from "vitest";
import { Code, expectCode, must, startPromptService, tableCounts } from "./helpers.js";

const missing = "01900000-0000-7000-8000-000000000000";

async function promptWithVersions(svc: Awaited<ReturnType<typeof startPromptService>>, n: number) {
  let p = must((await svc.alice.createPrompt({ title: "t", content: "v1\n" })).prompt);
  for (let v = 2; v <= n; v++) {
    p = must(
      (
        await svc.alice.updatePrompt({
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["content"] },
          content: `v${v}\n`,
        })
      ).prompt,
    );
  }
  return p;
}

describe("ListPromptVersions", () => {
  it("pages through versions newest first", async () => {
    const svc = await startPromptService();
    const p = await promptWithVersions(svc, 5);
    const seen: number[] = [];
    let pageToken = "";
    do {
      const page = await svc.alice.listPromptVersions({ promptId: p.id, pageSize: 2, pageToken });
      seen.push(...page.versions.map((v) => v.version));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(seen).toEqual([5, 4, 3, 2, 1]);
  });

  it("NOT_FOUND for an unknown prompt; INVALID_ARGUMENT for a token of another prompt or a bad id", async () => {
    const svc = await startPromptService();
    const a = await promptWithVersions(svc, 3);
    const b = await promptWithVersions(svc, 3);
    const page = await svc.alice.listPromptVersions({ promptId: a.id, pageSize: 1 });
    await expectCode(
      svc.alice.listPromptVersions({ promptId: b.id, pageSize: 1, pageToken: page.nextPageToken }),
      Code.InvalidArgument,
      /^page_token/,
    );
    await expectCode(svc.alice.listPromptVersions({ promptId: missing }), Code.NotFound);
    await expectCode(svc.alice.listPromptVersions({ promptId: "x" }), Code.InvalidArgument, /^prompt_id/);
    await expectCode(
      svc.alice.listPromptVersions({ promptId: a.id, pageSize: 101 }),
      Code.InvalidArgument,
      /^page_size/,
    );
  });
});

describe("DiffPromptVersions", () => {
  it("returns the unified diff between two versions (to_version 0 = current)", async () => {
    const svc = await startPromptService();
    const p = await promptWithVersions(svc, 3);
    const d = await svc.alice.diffPromptVersions({ id: p.id, fromVersion: 1 });
    expect(d).toMatchObject({ fromVersion: 1, toVersion: 3 });
    expect(d.diff).toContain("--- v1");
    expect(d.diff).toContain("+++ v3");
    expect(d.diff).toContain("-v1\n+v3");
    const consecutive = await svc.alice.diffPromptVersions({ id: p.id, fromVersion: 2, toVersion: 3 });
    const stored = must((await svc.alice.listPromptVersions({ promptId: p.id, pageSize: 1 })).versions[0]);
    expect(consecutive.diff).toBe(stored.diff);
    expect((await svc.alice.diffPromptVersions({ id: p.id, fromVersion: 2, toVersion: 2 })).diff).toBe("");
  });

  it("NOT_FOUND for unknown versions or prompt; INVALID_ARGUMENT for from_version 0", async () => {
    const svc = await startPromptService();
    const p = await promptWithVersions(svc, 2);
    await expectCode(
      svc.alice.diffPromptVersions({ id: p.id, fromVersion: 7 }),
      Code.NotFound,
      /from_version/,
    );
    await expectCode(
      svc.alice.diffPromptVersions({ id: p.id, fromVersion: 1, toVersion: 9 }),
      Code.NotFound,
      /to_version/,
    );
    await expectCode(svc.alice.diffPromptVersions({ id: missing, fromVersion: 1 }), Code.NotFound);
    await expectCode(
      svc.alice.diffPromptVersions({ id: p.id, fromVersion: 0 }),
      Code.InvalidArgument,
      /^from_version/,
    );
  });
});

describe("SetPromptLabel / RemovePromptLabel", () => {
  it("points, moves back (rollback) and removes labels; each move changes the etag", async () => {
    const svc = await startPromptService();
    const p = await promptWithVersions(svc, 3);
    const s1 = must((await svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 3 })).prompt);
    expect(s1.labels).toEqual({ staging: 3, latest: 3 });
    expect(s1.etag).not.toBe(p.etag);
    const s2 = must((await svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 2 })).prompt);
    expect(s2.labels.staging).toBe(2);
    const same = must((await svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 2 })).prompt);
    expect(same.etag).toBe(s2.etag);
    expect((await svc.alice.getPrompt({ id: p.id, label: "staging" })).prompt?.content).toBe("v2\n");
    const r = must((await svc.alice.removePromptLabel({ id: p.id, label: "staging" })).prompt);
    expect(r.labels).toEqual({ latest: 3 });
    const again = must((await svc.alice.removePromptLabel({ id: p.id, label: "staging" })).prompt);
    expect(again.etag).toBe(r.etag);
  });

  it("production needs publisher or admin (PERMISSION_DENIED otherwise)", async () => {
    const svc = await startPromptService();
    const p = await promptWithVersions(svc, 2);
    const before = await tableCounts(svc.db);
    await expectCode(
      svc.alice.setPromptLabel({ id: p.id, label: "production", version: 1 }),
      Code.PermissionDenied,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
    const published = must(
      (await svc.alicePublisher.setPromptLabel({ id: p.id, label: "production", version: 1 })).prompt,
    );
    expect(published.labels.production).toBe(1);
    await expectCode(svc.alice.removePromptLabel({ id: p.id, label: "production" }), Code.PermissionDenied);
    const adminOwned = must((await svc.adminPrompts.createPrompt({ title: "a", content: "b" })).prompt);
    expect(
      (await svc.adminPrompts.setPromptLabel({ id: adminOwned.id, label: "production", version: 1 })).prompt
        ?.labels.production,
    ).toBe(1);
  });

  it("refuses latest, bad names, missing versions, unknown and deleted prompts", async () => {
    const svc = await startPromptService();
    const p = await promptWithVersions(svc, 2);
    await expectCode(
      svc.alice.setPromptLabel({ id: p.id, label: "latest", version: 1 }),
      Code.InvalidArgument,
      /latest/,
    );
    await expectCode(
      svc.alice.removePromptLabel({ id: p.id, label: "latest" }),
      Code.InvalidArgument,
      /latest/,
    );
    await expectCode(
      svc.alice.setPromptLabel({ id: p.id, label: "Bad Label", version: 1 }),
      Code.InvalidArgument,
      /^label/,
    );
    await expectCode(
      svc.alice.setPromptLabel({ id: p.id, label: "x".repeat(37), version: 1 }),
      Code.InvalidArgument,
      /^label/,
    );
    await expectCode(
      svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 0 }),
      Code.InvalidArgument,
      /^version/,
    );
    await expectCode(
      svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 3 }),
      Code.NotFound,
      /version 3/,
    );
    await expectCode(svc.alice.setPromptLabel({ id: missing, label: "staging", version: 1 }), Code.NotFound);
    await expectCode(svc.alice.removePromptLabel({ id: missing, label: "staging" }), Code.NotFound);
    await svc.alice.deletePrompt({ id: p.id });
    await expectCode(
      svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 1 }),
      Code.FailedPrecondition,
    );
  });
});
