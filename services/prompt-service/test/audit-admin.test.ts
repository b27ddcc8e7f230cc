import { MaintenanceTask } from "@autoforge/contracts/admin/v1";
import { PromptStatus } from "@autoforge/contracts/prompt/v1";
import { FailedPreconditionError } from "@autoforge/server";
import { describe, expect, it } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import { Code, expectCode, must, startPromptService } from "./helpers.js";

describe("audit", () => {
  it("every committed mutation has exactly one audit row; no-ops and failures have none; the chain verifies", async () => {
    const svc = await startPromptService();
    const expected: [string, string][] = [];
    let p = must((await svc.alice.createPrompt({ title: "t", content: "v1" })).prompt);
    expected.push(["prompt.create", p.id]);
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
    expected.push(["prompt.update", p.id]);
    await svc.alice.updatePrompt({ id: p.id, etag: p.etag, updateMask: { paths: ["title"] }, title: "t" }); // no-op
    await expectCode(
      svc.alice.updatePrompt({ id: p.id, etag: "stale", updateMask: { paths: ["title"] }, title: "x" }),
      Code.Aborted,
    );
    await svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 1 });
    expected.push(["prompt.label.set", p.id]);
    await svc.alice.removePromptLabel({ id: p.id, label: "staging" });
    expected.push(["prompt.label.remove", p.id]);
    await svc.alice.deletePrompt({ id: p.id });
    expected.push(["prompt.delete", p.id]);
    await svc.alice.deletePrompt({ id: p.id }); // no-op
    await svc.alice.restorePrompt({ id: p.id });
    expected.push(["prompt.restore", p.id]);
    const t = must((await svc.alice.createPromptTemplate({ name: "n", body: "b", requestId: "r" })).template);
    expected.push(["template.create", t.id]);
    await svc.alice.createPromptTemplate({ name: "n", body: "b", requestId: "r" }); // replay
    await svc.alice.purgePrompt({ id: p.id });
    expected.push(["prompt.purge", p.id]);

    const { events } = await svc.admin.listAuditEvents({ pageSize: 100 });
    expect(events.map((e) => [e.action, e.resourceId])).toEqual(expected);
    expect(events.every((e) => e.actor === "alice" && e.requestId !== "" && e.hash.length === 64)).toBe(true);
    expect(events[0]?.prevHash).toBe("");
    expect(events[1]?.prevHash).toBe(events[0]?.hash);
    expect(events.map((e) => Number(e.sequence))).toEqual(expected.map((_, i) => i + 1));

    const verified = await svc.admin.verifyAuditChain({});
    expect(verified).toMatchObject({
      ok: true,
      checkedCount: BigInt(expected.length),
      firstBrokenSequence: 0n,
    });

    // the log is append-only even for raw SQL; a tampered row (triggers dropped) breaks the chain
    await expect(svc.db.client.execute("UPDATE audit_log SET actor = 'eve' WHERE seq = 3")).rejects.toThrow();
    await svc.db.client.execute("DROP TRIGGER audit_log_no_update");
    await svc.db.client.execute("UPDATE audit_log SET actor = 'eve' WHERE seq = 3");
    const broken = await svc.admin.verifyAuditChain({});
    expect(broken).toMatchObject({ ok: false, firstBrokenSequence: 3n });
    expect(broken.reason).toMatch(/hash/);
  });
});

describe("AdminService", () => {
  it("ListAuditEvents filters and pages; a token reused with other filters is INVALID_ARGUMENT", async () => {
    const svc = await startPromptService();
    const a = must((await svc.alice.createPrompt({ title: "a", content: "c" })).prompt);
    await svc.bob.createPrompt({ title: "b", content: "c" });
    await svc.alice.updatePrompt({
      id: a.id,
      etag: a.etag,
      updateMask: { paths: ["status"] },
      status: PromptStatus.ACTIVE,
    });
    const first = await svc.admin.listAuditEvents({ pageSize: 1, actor: "alice" });
    expect(first.events.map((e) => e.action)).toEqual(["prompt.create"]);
    const second = await svc.admin.listAuditEvents({
      pageSize: 1,
      actor: "alice",
      pageToken: first.nextPageToken,
    });
    expect(second.events.map((e) => e.action)).toEqual(["prompt.update"]);
    expect(second.nextPageToken).toBe("");
    const byResource = await svc.admin.listAuditEvents({ resourceType: "prompt", resourceId: a.id });
    expect(byResource.events).toHaveLength(2);
    await expectCode(
      svc.admin.listAuditEvents({ pageToken: first.nextPageToken }),
      Code.InvalidArgument,
      /^page_token/,
    );
    await expectCode(svc.admin.listAuditEvents({ pageSize: 101 }), Code.InvalidArgument, /^page_size/);
  });

  itWith(
    "localMaintenance",
    "RunMaintenance runs every task (or the ones asked), and refuses a concurrent run",
    async () => {
      const svc = await startPromptService();
      await svc.alice.createPrompt({ title: "a", content: "c" });
      const all = await svc.admin.runMaintenance({});
      expect(all.results.map((r) => [r.task, r.ok])).toEqual([
        [MaintenanceTask.ANALYZE, true],
        [MaintenanceTask.OPTIMIZE, true],
        [MaintenanceTask.VACUUM, true],
        [MaintenanceTask.REINDEX, true],
        [MaintenanceTask.INTEGRITY_CHECK, true],
      ]);
      expect(all.results[4]?.detail).toMatch(/ok/);
      const some = await svc.admin.runMaintenance({
        tasks: [MaintenanceTask.INTEGRITY_CHECK, MaintenanceTask.ANALYZE],
      });
      expect(some.results.map((r) => r.task)).toEqual([
        MaintenanceTask.INTEGRITY_CHECK,
        MaintenanceTask.ANALYZE,
      ]);
      await expectCode(
        svc.admin.runMaintenance({ tasks: [99 as MaintenanceTask] }),
        Code.InvalidArgument,
        /^tasks/,
      );

      // hold the writer so a run (its ANALYZE queues behind) stays in progress, then ask for a second one
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const holding = svc.db.write(() => held);
      const running = svc.app.maintenance.run(["analyze"]);
      await expectCode(
        svc.admin.runMaintenance({ tasks: [MaintenanceTask.INTEGRITY_CHECK] }),
        Code.FailedPrecondition,
        /in progress/,
      );
      await expect(svc.app.maintenance.run(["analyze"])).rejects.toBeInstanceOf(FailedPreconditionError);
      release();
      await holding;
      expect((await running)[0]?.ok).toBe(true);
      expect((await svc.admin.runMaintenance({ tasks: [MaintenanceTask.OPTIMIZE] })).results[0]?.ok).toBe(
        true,
      );
    },
  );

  itWith(
    "localMaintenance",
    "GetDatabaseStats reports pages, journal mode, tables with row counts, and maintenance times",
    async () => {
      const svc = await startPromptService();
      await svc.alice.createPrompt({ title: "a", content: "c" });
      await svc.admin.runMaintenance({ tasks: [MaintenanceTask.ANALYZE] });
      const stats = await svc.admin.getDatabaseStats({});
      expect(stats.pageSize).toBeGreaterThan(0n);
      expect(stats.sizeBytes).toBe(stats.pageSize * stats.pageCount);
      expect(stats.journalMode).toBe("wal");
      const prompts = stats.objects.find((o) => o.name === "prompts");
      expect(prompts).toMatchObject({ type: "table", rowCount: 1n });
      expect(stats.objects.some((o) => o.name === "prompts_project_live_idx" && o.type === "index")).toBe(
        true,
      );
      expect(Object.keys(stats.lastMaintenanceTimes)).toEqual(["analyze"]);
    },
  );
});
