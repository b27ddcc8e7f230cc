import { AdminService, GetDatabaseStatsRequestSchema } from "@autoforge/contracts/admin/v1";
import type { CallContext } from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import { createAdminHandlers, createAdminService, createMaintenance } from "../src/index.js";
import { pollUntil, testDatabase } from "./helpers.js";

// What the services' AdminService tests (prompt-service audit-admin, evaluation-service migrations-admin) do not
// reach: how VACUUM queues, the consumers' lag, and the registration itself.

const ctx = { deadline: Date.now() + 60_000, signal: new AbortController().signal } as CallContext<never>;

describe("maintenance", () => {
  itWith(
    "localMaintenance",
    "VACUUM waits behind the in-flight write on the writer connection, then runs",
    async () => {
      const db = await testDatabase();
      const maintenance = createMaintenance(db);
      let release!: () => void;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const holding = db.write(async (tx) => {
        await tx.run("INSERT INTO notes (body) VALUES ('x')");
        await held;
      });
      const vacuum = maintenance.run(["vacuum"]);
      await pollUntil(() => db.writeQueueDepth === 1);
      release();
      await holding;
      expect(await vacuum).toMatchObject([{ task: "vacuum", ok: true }]);
      expect(maintenance.lastCompleted.has("vacuum")).toBe(true);
    },
  );
});

describe("AdminService", () => {
  it("GetDatabaseStats reports each consumer's lag when the service has consumers, none otherwise", async () => {
    const db = await testDatabase();
    const maintenance = createMaintenance(db);
    const req = create(GetDatabaseStatsRequestSchema);
    const withConsumers = createAdminHandlers({
      db,
      maintenance,
      consumers: async () => [
        { name: "feed", lastAppliedSequence: 3, lastSeenSequence: 5, updatedAt: 1_000 },
      ],
    });
    const stats = await withConsumers.getDatabaseStats(req, ctx);
    expect(stats.consumers).toMatchObject([
      { name: "feed", lastAppliedSequence: 3n, lastSeenSequence: 5n, lag: 2n },
    ]);
    expect(stats.objects?.find((o) => o.name === "notes")).toMatchObject({ type: "table", rowCount: 0n });
    const without = await createAdminHandlers({ db, maintenance }).getDatabaseStats(req, ctx);
    expect(without.consumers).toEqual([]);
  });

  it("registers every method for the admin role only, with its request validators", async () => {
    const db = await testDatabase();
    const registered = createAdminService({ db, maintenance: createMaintenance(db) });
    expect(registered.service).toBe(AdminService);
    for (const method of AdminService.methods)
      expect(registered.access(method)).toEqual({ kind: "operator", roles: ["admin"] });
    expect([...registered.validators.keys()].sort()).toEqual([
      "autoforge.admin.v1.ListAuditEventsRequest",
      "autoforge.admin.v1.RunMaintenanceRequest",
    ]);
  });
});
