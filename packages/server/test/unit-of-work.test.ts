import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AdminService } from "@autoforge/contracts/admin/v1";
import { appendAudit, createDatabase, type Database, type Tx } from "@autoforge/db";
import { Code } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  access,
  type DatabaseBinding,
  defineService,
  FailedPreconditionError,
  type RegisteredService,
  type ServiceHandlers,
} from "../src/index.js";
import {
  bearer,
  connectTransport,
  connectUnary,
  grpcClient,
  grpcUnary,
  startTestServer,
  type TestServer,
} from "./helpers.js";

// Test-only SQL with values we control; real handlers use Drizzle's parameterised queries.
const quote = (s: string) => `'${s.replaceAll("'", "''")}'`;

const schemaSql = `
CREATE TABLE audit_log (
  seq integer PRIMARY KEY AUTOINCREMENT NOT NULL, occurred_at integer NOT NULL, actor text NOT NULL,
  action text NOT NULL, resource_type text NOT NULL, resource_id text NOT NULL, request_id text,
  digest text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL
);
CREATE TABLE things (
  id text PRIMARY KEY NOT NULL,
  name text NOT NULL UNIQUE CONSTRAINT things_name_length CHECK (length(name) <= 10)
);`;

/**
 * AdminService handlers that exercise ctx.unitOfWork: RunMaintenance (IDEMPOTENT -> write) creates a "thing"
 * named by the `x-thing` header and audits it; ListAuditEvents (NO_SIDE_EFFECTS -> read) lists the audit log.
 */
function handlers(): ServiceHandlers<typeof AdminService, Tx> {
  return {
    async runMaintenance(_req, ctx) {
      const name = ctx.requestHeaders.get("x-thing") ?? "";
      const mode = ctx.requestHeaders.get("x-mode");
      const id = `thing-${name}`;
      await ctx.unitOfWork(async (tx, { audit }) => {
        await tx.run(`INSERT INTO things (id, name) VALUES (${quote(id)}, ${quote(name)})`);
        await audit({ action: "thing.create", resourceType: "thing", resourceId: id, after: { name } });
        if (mode === "fail-after-audit") throw new FailedPreconditionError("changed my mind");
      });
      if (mode === "twice") {
        // a second step: another thing, committed on its own (allowed only where the method is stepwise)
        await ctx.unitOfWork(async (tx, { audit }) => {
          await tx.run(`INSERT INTO things (id, name) VALUES (${quote(`${id}-2`)}, ${quote(`${name}-2`)})`);
          await audit({
            action: "thing.create",
            resourceType: "thing",
            resourceId: `${id}-2`,
            after: { name },
          });
        });
      }
      if (mode === "overlap") {
        await Promise.all([ctx.unitOfWork(async () => undefined), ctx.unitOfWork(async () => undefined)]);
      }
      return { results: [] };
    },
    async listAuditEvents(req, ctx) {
      const mode = ctx.requestHeaders.get("x-mode");
      const rows = await ctx.unitOfWork(async (tx, { audit }) => {
        if (mode === "audit-in-read") await audit({ action: "x", resourceType: "x", resourceId: "x" });
        if (mode === "write-in-read") await tx.run(`INSERT INTO things (id, name) VALUES ('r', 'r')`);
        return tx.all<{
          seq: number;
          actor: string;
          action: string;
          resource_id: string;
          request_id: string;
        }>(`SELECT seq, actor, action, resource_id, request_id FROM audit_log ORDER BY seq`);
      });
      return {
        events: rows
          .filter((r) => req.resourceId === "" || r.resource_id === req.resourceId)
          .map((r) => ({
            sequence: BigInt(r.seq),
            actor: r.actor,
            action: r.action,
            resourceId: r.resource_id,
            requestId: r.request_id,
          })),
      };
    },
    async verifyAuditChain() {
      return { ok: true };
    },
    async getDatabaseStats() {
      return {};
    },
  };
}

let dir: string;
let db: Database;
let t: TestServer;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "autoforge-server-"));
  db = await createDatabase({ url: `file:${join(dir, "test.db")}` });
  await db.write(async (_tx, uow) => uow.transaction.executeMultiple(schemaSql));
  const database: DatabaseBinding<Tx> = { db, appendAudit };
  t = await startTestServer({
    database: database as DatabaseBinding<unknown>,
    services: () => [
      defineService({
        service: AdminService,
        handlers: handlers(),
        access: { default: access.operator() },
      }) as RegisteredService,
    ],
  });
});
afterAll(async () => {
  await t.server.shutdown({ graceMs: 1_000 });
  await db.close();
  rmSync(dir, { recursive: true, force: true });
});

async function create(name: string, extra: Record<string, string> = {}) {
  const headers = { ...(await bearer("alice", ["admin"])), "x-thing": name, ...extra };
  return grpcUnary(grpcClient(AdminService, t.grpcPort), AdminService.method.runMaintenance, {}, headers);
}

async function auditFor(resourceId: string, mode?: string) {
  const headers = {
    ...(await bearer("alice", ["admin"])),
    ...(mode === undefined ? {} : { "x-mode": mode }),
  };
  return connectUnary(
    connectTransport("connect", t.connectPort),
    AdminService,
    AdminService.method.listAuditEvents,
    { resourceId },
    headers,
  );
}

describe("ctx.unitOfWork on a real database", () => {
  it("a write commits with its audit row: actor = principal, request id from the call", async () => {
    expect(await create("one", { "x-request-id": "rid-one" })).toMatchObject({ ok: true });
    const listed = await auditFor("thing-one");
    expect(listed).toMatchObject({
      ok: true,
      value: {
        events: [{ actor: "alice", action: "thing.create", resourceId: "thing-one", requestId: "rid-one" }],
      },
    });
  });

  it("a handler error rolls back the change and its audit row", async () => {
    expect(await create("two", { "x-mode": "fail-after-audit" })).toEqual({
      ok: false,
      code: Code.FailedPrecondition,
      message: "changed my mind",
    });
    expect(await auditFor("thing-two")).toMatchObject({ ok: true, value: { events: [] } });
    // Nothing was left behind: the same name can be created now.
    expect(await create("two")).toMatchObject({ ok: true });
  });

  it("constraint violations map end to end: UNIQUE -> ALREADY_EXISTS, CHECK -> INVALID_ARGUMENT", async () => {
    expect(await create("three")).toMatchObject({ ok: true });
    expect(await create("three")).toMatchObject({ ok: false, code: Code.AlreadyExists });
    expect(await create("far-too-long-a-name")).toMatchObject({ ok: false, code: Code.InvalidArgument });
  });

  it("NO_SIDE_EFFECTS methods get a read unit of work: writing or auditing there fails", async () => {
    expect(await auditFor("", "write-in-read")).toMatchObject({ ok: false, code: Code.Internal });
    expect(await auditFor("", "audit-in-read")).toMatchObject({ ok: false, code: Code.Internal });
  });

  it("a second unitOfWork in one call is refused (INTERNAL, logged)", async () => {
    expect(await create("four", { "x-mode": "twice" })).toMatchObject({ ok: false, code: Code.Internal });
    expect(
      t.lines.some((l) => l.msg === "unexpected error" && JSON.stringify(l).includes("at most once")),
    ).toBe(true);
  });
});

describe("stepwise methods", () => {
  let stepwise: TestServer;
  beforeAll(async () => {
    stepwise = await startTestServer({
      database: { db, appendAudit } as DatabaseBinding<unknown>,
      services: () => [
        defineService({
          service: AdminService,
          handlers: handlers(),
          access: { default: access.operator() },
          stepwise: ["runMaintenance"],
        }) as RegisteredService,
      ],
    });
  });
  afterAll(() => stepwise.server.shutdown({ graceMs: 1_000 }));

  const call = async (name: string, mode: string) =>
    grpcUnary(
      grpcClient(AdminService, stepwise.grpcPort),
      AdminService.method.runMaintenance,
      {},
      {
        ...(await bearer("alice", ["admin"])),
        "x-thing": name,
        "x-mode": mode,
      },
    );
  const things = async (prefix: string) =>
    (await db.client.execute(`SELECT id FROM things WHERE id LIKE 'thing-${prefix}%' ORDER BY id`)).rows.map(
      (r) => String(r.id),
    );

  it("run several units of work one after another, each committed with its audit row", async () => {
    expect(await call("st", "twice")).toMatchObject({ ok: true });
    expect(await things("st")).toEqual(["thing-st", "thing-st-2"]);
    const audited = await db.client.execute(
      "SELECT resource_id FROM audit_log WHERE resource_id LIKE 'thing-st%' ORDER BY seq",
    );
    expect(audited.rows.map((r) => String(r.resource_id))).toEqual(["thing-st", "thing-st-2"]);
  });

  it("never two at once (INTERNAL), and the other methods still run one", async () => {
    expect(await call("ov", "overlap")).toMatchObject({ ok: false, code: Code.Internal });
    expect(await create("five", { "x-mode": "twice" })).toMatchObject({ ok: false, code: Code.Internal });
    // (its first unit committed; the second was refused before it ran)
    expect(await things("five")).toEqual(["thing-five"]);
  });

  it("are unary methods of the service: defineService refuses anything else", () => {
    const define = (stepwiseNames: string[]) => () =>
      defineService({
        service: AdminService,
        handlers: handlers(),
        access: { default: access.operator() },
        stepwise: stepwiseNames as ["runMaintenance"],
      });
    expect(define(["noSuchMethod"])).toThrow(/not a unary method/);
  });
});
