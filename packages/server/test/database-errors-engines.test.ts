/**
 * Database errors as callers see them, on every engine: a kit server whose handler runs SQL in its unit of work
 * on a real `file:` database, a real sqld, and an embedded replica of one. The same refusal answers the same
 * status and ErrorInfo reason everywhere; an unreachable primary or a refused token is UNAVAILABLE, never
 * INTERNAL.
 */
import { join } from "node:path";
import { AdminService } from "@autoforge/contracts/admin/v1";
import { ErrorInfoSchema } from "@autoforge/contracts/google/rpc/error_details";
import { appendAudit, createDatabase, type Database, type Tx } from "@autoforge/db";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { sql } from "drizzle-orm";
import { expect, it, onTestFinished } from "vitest";
import { type SqldServer, sqldForTest } from "../../../test/support/sqld.js";
import { describeEngines, type EngineName, engineDatabase } from "../../db/test/engines.js";
import { tempDir } from "../../db/test/helpers.js";
import {
  access,
  type DatabaseBinding,
  defineService,
  type RegisteredService,
  type ServiceHandlers,
} from "../src/index.js";
import { bearer, startTestServer, type TestServer } from "./helpers.js";

/** RunMaintenance (a write unit) runs the `x-sql` header's statement; ListAuditEvents (a read unit) `SELECT 1`. */
function handlers(): ServiceHandlers<typeof AdminService, Tx> {
  return {
    async runMaintenance(_req, ctx) {
      const statement = ctx.requestHeaders.get("x-sql") ?? "";
      await ctx.unitOfWork(async (tx) => tx.run(sql.raw(statement)));
      return { results: [] };
    },
    async listAuditEvents(_req, ctx) {
      await ctx.unitOfWork(async (tx) => tx.all(sql`SELECT 1 AS one`));
      return { events: [] };
    },
    async verifyAuditChain() {
      return { ok: true };
    },
    async getDatabaseStats() {
      return {};
    },
  };
}

async function serverOn(db: Database<Record<string, unknown>>): Promise<TestServer> {
  const database: DatabaseBinding<Tx> = { db: db as unknown as Database, appendAudit };
  const t = await startTestServer({
    database: database as DatabaseBinding<unknown>,
    services: () => [
      defineService({
        service: AdminService,
        handlers: handlers(),
        access: { default: access.operator() },
      }) as RegisteredService,
    ],
  });
  onTestFinished(() => t.server.shutdown({ graceMs: 1_000 }));
  return t;
}

interface Answer {
  code: Code | "OK";
  reason: string | undefined;
}

async function call(t: TestServer, method: "write" | "read", statement = ""): Promise<Answer> {
  const client = createClient(
    AdminService,
    createConnectTransport({ baseUrl: `http://127.0.0.1:${t.connectPort}`, httpVersion: "1.1" }),
  );
  const headers = { ...(await bearer("root", ["admin"])), "x-sql": statement };
  try {
    if (method === "write") await client.runMaintenance({}, { headers, timeoutMs: 20_000 });
    else await client.listAuditEvents({}, { headers, timeoutMs: 20_000 });
    return { code: "OK", reason: undefined };
  } catch (e) {
    const err = ConnectError.from(e);
    return { code: err.code, reason: err.findDetails(ErrorInfoSchema)[0]?.reason };
  }
}

/** A database on `server` (directly, or as an embedded replica of it), closed when the test finishes. */
async function databaseOn(engine: "sqld" | "replica", server: SqldServer, authToken = server.authToken) {
  const db = await createDatabase({
    ...(engine === "sqld"
      ? { url: server.url }
      : { url: `file:${join(tempDir(), "replica.db")}`, syncUrl: server.url }),
    authToken,
    retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 },
  });
  onTestFinished(() => db.close());
  return db;
}

const refusals: { what: string; statement: string; code: Code; reason: string }[] = [
  {
    what: "a duplicate unique value",
    statement: "INSERT INTO books (author_id, title, isbn) VALUES (1, 'again', 'isbn-1')",
    code: Code.AlreadyExists,
    reason: "ALREADY_EXISTS",
  },
  {
    what: "a duplicate primary key",
    statement: "INSERT INTO authors (id, name) VALUES (1, 'again')",
    code: Code.AlreadyExists,
    reason: "ALREADY_EXISTS",
  },
  {
    what: "a reference to a missing row",
    statement: "INSERT INTO books (author_id, title) VALUES (999, 'orphan')",
    code: Code.FailedPrecondition,
    reason: "REFERENCED_RESOURCE_MISSING",
  },
  {
    what: "a CHECK",
    statement: "INSERT INTO authors (id, name) VALUES (2, '')",
    code: Code.InvalidArgument,
    reason: "CONSTRAINT_VIOLATED",
  },
  {
    what: "a NOT NULL column",
    statement: "INSERT INTO books (author_id, title) VALUES (1, NULL)",
    code: Code.InvalidArgument,
    reason: "REQUIRED_VALUE_MISSING",
  },
  {
    what: "a trigger's RAISE(ABORT)",
    statement: "DELETE FROM audit_log",
    code: Code.InvalidArgument,
    reason: "CHANGE_NOT_ALLOWED",
  },
];

describeEngines("database errors through the server kit", (engine: EngineName) => {
  it("each refusal of the database has the same status and reason on every engine", async () => {
    const { db } = await engineDatabase(engine);
    await db.write(async (tx) => {
      await tx.run(sql`INSERT INTO authors (id, name) VALUES (1, 'a')`);
      await tx.run(sql`INSERT INTO books (author_id, title, isbn) VALUES (1, 'b', 'isbn-1')`);
      await appendAudit(tx, { actor: "t", action: "create", resourceType: "author", resourceId: "1" });
    });
    const t = await serverOn(db as unknown as Database<Record<string, unknown>>);
    for (const r of refusals) {
      expect({ what: r.what, ...(await call(t, "write", r.statement)) }).toEqual({
        what: r.what,
        code: r.code,
        reason: r.reason,
      });
    }
  });

  if (engine === "file") return;

  it("a stopped primary: writes are UNAVAILABLE (DATABASE_UNAVAILABLE), never INTERNAL", async () => {
    const server = await sqldForTest({ auth: true });
    const db = await databaseOn(engine, server);
    await db.write(async (_tx, unit) => unit.transaction.executeMultiple("CREATE TABLE t (x INTEGER)"));
    const t = await serverOn(db);
    expect(await call(t, "write", "INSERT INTO t VALUES (1)")).toEqual({ code: "OK", reason: undefined });
    await server.stop();
    const during = await call(t, "write", "INSERT INTO t VALUES (2)");
    expect(during).toEqual({ code: Code.Unavailable, reason: "DATABASE_UNAVAILABLE" });
    if (engine === "sqld") {
      expect(await call(t, "read")).toEqual({ code: Code.Unavailable, reason: "DATABASE_UNAVAILABLE" });
    }
    expect(t.lines.some((l) => l.msg === "unexpected error")).toBe(false);
  });

  if (engine !== "sqld") return;

  it("a result over sqld's response size limit: RESOURCE_EXHAUSTED (DATABASE_RESULT_TOO_LARGE), not INTERNAL", async () => {
    const server = await sqldForTest({ auth: true });
    const db = await databaseOn(engine, server);
    // twelve 1 MB values: 12 MB, over sqld's default --max-response-size of 10 MB
    await db.write(async (_tx, unit) =>
      unit.transaction.executeMultiple(`CREATE TABLE big (x TEXT);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 12)
        INSERT INTO big SELECT hex(zeroblob(500000)) FROM n;`),
    );
    const t = await serverOn(db);
    expect(await call(t, "write", "SELECT x FROM big")).toEqual({
      code: Code.ResourceExhausted,
      reason: "DATABASE_RESULT_TOO_LARGE",
    });
    expect(await call(t, "write", "SELECT x FROM big LIMIT 5")).toEqual({ code: "OK", reason: undefined });
    expect(t.lines.some((l) => l.msg === "unexpected error")).toBe(false);
  });

  it("an expired database token: UNAVAILABLE (DATABASE_UNAVAILABLE), its cause logged, readiness NOT_SERVING", async () => {
    const server = await sqldForTest({ auth: true });
    const db = await databaseOn(engine, server, server.token({ expiresInSeconds: -3600 }));
    const t = await serverOn(db);
    expect(await call(t, "write", "CREATE TABLE t (x INTEGER)")).toEqual({
      code: Code.Unavailable,
      reason: "DATABASE_UNAVAILABLE",
    });
    expect(await call(t, "read")).toEqual({ code: Code.Unavailable, reason: "DATABASE_UNAVAILABLE" });
    const logged = t.lines.filter((l) => l.level >= 50 && JSON.stringify(l).includes("HTTP 401"));
    expect(logged.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(logged[0])).toContain("DATABASE_AUTH_TOKEN is missing, invalid or expired");
    // not ready either: load balancers take the instance out until the token works
    const readyz = await fetch(`http://127.0.0.1:${t.connectPort}/readyz`);
    expect(readyz.status).toBe(503);
    const notReady = t.lines.filter((l) => l.msg.startsWith("not ready"));
    expect(notReady).toHaveLength(1);
    expect(JSON.stringify(notReady[0])).toContain("HTTP 401");
  });
});
