import { MaintenanceTask } from "@autoforge/contracts/admin/v1";
import { expect, it } from "vitest";
import { describeWith } from "../../../test/support/engine.js";
import { Code, expectCode, must, type PromptClient, pollUntil, startPromptService } from "./helpers.js";

/** Runs `fn` over `items` with at most `limit` calls in flight. */
async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return out;
}

describeWith("localMaintenance", "maintenance under load (AdminService.RunMaintenance)", () => {
  it("a full run, VACUUM included, while 20 clients write and read: no client error; a second run is refused", async () => {
    const svc = await startPromptService();
    const users: PromptClient[] = await Promise.all(
      Array.from({ length: 20 }, (_, i) => svc.client(`load-${i}`, ["user"])),
    );
    const errors: unknown[] = [];
    const created = new Map<number, number>();
    let ops = 0;
    let stop = false;
    // each client: create, read back, update, list — until told to stop
    const clients = users.map(async (client, i) => {
      while (!stop) {
        try {
          const p = must((await client.createPrompt({ title: `p${ops}`, content: "x".repeat(500) })).prompt);
          created.set(i, (created.get(i) ?? 0) + 1);
          await client.getPrompt({ id: p.id });
          await client.updatePrompt({
            id: p.id,
            etag: p.etag,
            updateMask: { paths: ["content"] },
            content: "y",
          });
          await client.listPrompts({ pageSize: 5 });
          ops += 4;
        } catch (e) {
          errors.push(e);
          return;
        }
      }
    });

    await pollUntil(() => ops >= 100 || errors.length > 0);
    // Hold the writer a moment so the run is certainly in progress when the second request arrives.
    let release!: () => void;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const holding = svc.db.write(() => held);
    const full = svc.admin.runMaintenance({});
    await pollUntil(() => svc.app.maintenance.running);
    await expectCode(
      svc.admin.runMaintenance({ tasks: [MaintenanceTask.ANALYZE] }),
      Code.FailedPrecondition,
      /in progress/,
    );
    release();
    await holding;
    const opsAtRelease = ops;
    const results = (await full).results;
    // keep the clients going a little after the run too, then stop them
    await pollUntil(() => ops >= opsAtRelease + 100 || errors.length > 0);
    stop = true;
    await Promise.all(clients);

    expect(errors).toEqual([]);
    expect(results.map((r) => [MaintenanceTask[r.task], r.ok])).toEqual([
      ["ANALYZE", true],
      ["OPTIMIZE", true],
      ["VACUUM", true],
      ["REINDEX", true],
      ["INTEGRITY_CHECK", true],
    ]);
    // every committed create is there after the VACUUM
    for (const [i, client] of users.entries()) {
      let listed = 0;
      let pageToken = "";
      do {
        const page = await client.listPrompts({ pageSize: 100, pageToken });
        listed += page.prompts.length;
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      expect(listed).toBe(created.get(i) ?? 0);
    }
    // one audit row per completed task, by the admin who asked
    const audit = await svc.admin.listAuditEvents({ resourceType: "database", pageSize: 100 });
    expect(audit.events.map((e) => `${e.action} by ${e.actor}`)).toEqual([
      "maintenance.analyze by root",
      "maintenance.optimize by root",
      "maintenance.vacuum by root",
      "maintenance.reindex by root",
      "maintenance.integrity_check by root",
    ]);
    expect((await svc.admin.verifyAuditChain({})).ok).toBe(true);
  });

  it("VACUUM returns the pages of many purged prompts: GetDatabaseStats' freelist shrinks to 0", async () => {
    const svc = await startPromptService();
    const ids = await mapBounded(
      Array.from({ length: 150 }, (_, i) => i),
      10,
      async (i) =>
        must((await svc.alice.createPrompt({ title: `big ${i}`, content: "z".repeat(16_000) })).prompt).id,
    );
    await mapBounded(ids, 10, (id) => svc.alice.purgePrompt({ id }));

    const before = await svc.admin.getDatabaseStats({});
    expect(before.freelistCount).toBeGreaterThan(100n); // ~150 x 16 kB of versions were freed
    const run = await svc.admin.runMaintenance({ tasks: [MaintenanceTask.VACUUM] });
    expect(run.results[0]?.ok).toBe(true);
    const after = await svc.admin.getDatabaseStats({});
    expect(after.freelistCount).toBe(0n);
    expect(after.pageCount).toBeLessThan(before.pageCount - before.freelistCount / 2n);
    expect(Object.keys(after.lastMaintenanceTimes)).toEqual(["vacuum"]);
  });
});
