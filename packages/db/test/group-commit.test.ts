import { LibsqlError } from "@libsql/client";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import {
  appendAudit,
  ConstraintViolationError,
  type DatabaseRetryEvent,
  DeadlineExceededError,
  type Tx,
  type UnitOfWorkEvent,
  verifyAuditChain,
} from "../src/index.js";
import { authors, books } from "./fixtures/schema.js";
import { type Deferred, deferred, pollUntil, type TestSchema, testDatabase } from "./helpers.js";

type Db = Awaited<ReturnType<typeof testDatabase>>["db"];

const count = async (db: Db, table: string) =>
  db.read(async (tx) =>
    Number((await tx.get<{ n: number }>(sql.raw(`SELECT count(*) AS n FROM ${table}`)))?.n),
  );

const names = async (db: Db) =>
  (await db.read(async (tx) => tx.select().from(authors))).map((a) => a.name).sort();

/** Holds the writer with a unit of work until `release` resolves, so the next write units queue (one group). */
async function holdWriter(db: Db): Promise<{ release: Deferred; done: Promise<unknown> }> {
  const inside = deferred();
  const release = deferred();
  const done = db.write(async (tx) => {
    await tx.insert(authors).values({ name: "holder" });
    inside.resolve();
    await release.promise;
  });
  await inside.promise;
  return { release, done };
}

const busy = () => new LibsqlError("database is locked", "SQLITE_BUSY", "SQLITE_BUSY", 5);

describe("group commit of queued write units of work", () => {
  itWith(
    "groupCommit",
    "runs queued units in one transaction, in order, each seeing the earlier ones' writes; a failing unit rolls back alone",
    async () => {
      const events: UnitOfWorkEvent[] = [];
      const { db } = await testDatabase({ onUnitOfWork: (event) => events.push(event) });
      const holder = await holdWriter(db);
      const log: string[] = [];

      const audited = (name: string) => async (tx: Tx<TestSchema>) => {
        const [row] = await tx.insert(authors).values({ name }).returning();
        await appendAudit(tx, { actor: "test", action: "create", resourceType: "author", resourceId: name });
        log.push(`ran ${name}`);
        return row?.id;
      };
      const a = db.write(audited("a"));
      const b = db.write(async (tx, ctx) => {
        // sees a's uncommitted row: same transaction, after a
        const seen = await tx.select().from(authors);
        log.push(`b saw ${seen.map((r) => r.name).join(",")}`);
        return audited("b")(tx).then((id) => ({ id, transaction: ctx.transaction }));
      });
      const failure = new Error("c failed after writing");
      const c = db.write(async (tx) => {
        await audited("c")(tx);
        throw failure;
      });
      // a unique violation: the statement fails, the unit rolls back to its savepoint, the group goes on
      const d = db.write(async (tx) => {
        await audited("d")(tx);
        await tx.insert(books).values({ authorId: 1, title: "x", isbn: "dup" });
        await tx.insert(books).values({ authorId: 1, title: "y", isbn: "dup" });
      });
      const e = db.write(async (tx, ctx) => ({ id: await audited("e")(tx), transaction: ctx.transaction }));
      const settled: string[] = [];
      for (const [name, p] of Object.entries({ a, b, c, d, e })) {
        p.then(
          () => settled.push(name),
          () => settled.push(name),
        );
      }
      await pollUntil(() => db.writeQueueDepth === 5);
      events.length = 0;

      holder.release.resolve();
      await holder.done;
      const [resultA, resultB, resultE] = await Promise.all([a, b, e]);
      await expect(c).rejects.toBe(failure);
      await expect(d).rejects.toBeInstanceOf(ConstraintViolationError);

      expect(log).toEqual(["ran a", "b saw holder,a", "ran b", "ran c", "ran d", "ran e"]);
      // one transaction for the five queued units (not the holder's)
      expect(resultB.transaction).toBe(resultE.transaction);
      expect(new Set([resultA, resultB.id, resultE.id]).size).toBe(3);
      // nobody settled before the whole group committed
      expect(settled.sort()).toEqual(["a", "b", "c", "d", "e"]);
      expect(await names(db)).toEqual(["a", "b", "e", "holder"]);
      expect(await count(db, "books")).toBe(0);
      expect(await count(db, "audit_log")).toBe(3);
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true, count: 3 });
      // one event per unit, with its own outcome
      expect(events.filter((ev) => ev.kind === "write").map((ev) => ev.outcome)).toEqual([
        "commit", // the holder
        "commit",
        "commit",
        "rollback",
        "rollback",
        "commit",
      ]);
    },
  );

  itWith(
    "groupCommit",
    "settles a grouped unit only after COMMIT: a failing COMMIT fails every unit of the group",
    async () => {
      const { db } = await testDatabase();
      const holder = await holdWriter(db);
      const ran: string[] = [];
      const innocent = db.write(async (tx) => {
        await tx.insert(authors).values({ name: "innocent" });
        ran.push("innocent");
      });
      // a deferred foreign key violation only shows at COMMIT
      const culprit = db.write(async (tx) => {
        await tx.run(sql`PRAGMA defer_foreign_keys=ON`);
        await tx.insert(books).values({ authorId: 999, title: "orphan" });
        ran.push("culprit");
      });
      await pollUntil(() => db.writeQueueDepth === 2);
      holder.release.resolve();
      await holder.done;

      const results = await Promise.allSettled([innocent, culprit]);
      expect(ran).toEqual(["innocent", "culprit"]);
      for (const result of results) {
        expect(result.status).toBe("rejected");
        expect((result as PromiseRejectedResult).reason).toMatchObject({ kind: "foreign_key" });
      }
      expect(await names(db)).toEqual(["holder"]);
      expect(await count(db, "books")).toBe(0);
      // the writer is healthy afterwards
      await db.write((tx) => tx.insert(authors).values({ name: "after" }));
      expect(await names(db)).toEqual(["after", "holder"]);
    },
  );

  itWith(
    "groupCommit",
    "retries the whole group after a transient error: every unit commits exactly once",
    async () => {
      const retries: DatabaseRetryEvent[] = [];
      const { db } = await testDatabase({
        onRetry: (event) => retries.push(event),
        retry: { initialDelayMs: 1, maxDelayMs: 5 },
      });
      const holder = await holdWriter(db);
      const attempts: Record<string, number[]> = { a: [], b: [], c: [] };
      const unit = (name: string) =>
        db.write(async (tx, ctx) => {
          attempts[name]?.push(ctx.attempt);
          await tx.insert(authors).values({ name });
          await appendAudit(tx, {
            actor: "test",
            action: "create",
            resourceType: "author",
            resourceId: name,
          });
          if (name === "b" && ctx.attempt === 1) throw busy();
        });
      const all = Promise.all([unit("a"), unit("b"), unit("c")]);
      await pollUntil(() => db.writeQueueDepth === 3);
      holder.release.resolve();
      await holder.done;
      await all;

      // a ran and was rolled back with the group, c never ran in the failed group: both retried
      expect(attempts).toEqual({ a: [1, 2], b: [1, 2], c: [2] });
      expect(retries.map((r) => [r.kind, r.attempt, r.error.reason])).toEqual([
        ["write", 1, "busy"],
        ["write", 1, "busy"],
        ["write", 1, "busy"],
      ]);
      expect(await names(db)).toEqual(["a", "b", "c", "holder"]);
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true, count: 3 });
    },
  );

  it("skips a grouped unit whose deadline passed while the units before it ran", async () => {
    const { db } = await testDatabase();
    const holder = await holdWriter(db);
    const slowInside = deferred();
    const slowRelease = deferred();
    const slow = db.write(async (tx) => {
      await tx.insert(authors).values({ name: "slow" });
      slowInside.resolve();
      await slowRelease.promise;
    });
    let ran = false;
    const late = db.write(
      async () => {
        ran = true;
      },
      { deadline: Date.now() + 200 },
    );
    await pollUntil(() => db.writeQueueDepth === 2);
    holder.release.resolve();
    await slowInside.promise; // late is now in the running group, behind slow
    await new Promise((resolve) => setTimeout(resolve, 250));
    slowRelease.resolve();
    await expect(late).rejects.toBeInstanceOf(DeadlineExceededError);
    await slow;
    expect(ran).toBe(false);
    expect(await names(db)).toEqual(["holder", "slow"]);
  });

  itWith("localMaintenance", "runs check-at-commit units and exclusive() alone, in queue order", async () => {
    const { db } = await testDatabase();
    const holder = await holdWriter(db);
    const order: string[] = [];
    const write = (name: string) =>
      db.write(async (tx, ctx) => {
        order.push(name);
        await tx.insert(authors).values({ name });
        return ctx.transaction;
      });
    const w1 = write("w1");
    const migration = db.write(
      async (tx, ctx) => {
        order.push("migration");
        // foreign keys were switched off before BEGIN: only possible in a transaction of its own
        const fk = await tx.get<{ foreign_keys: number }>(sql`PRAGMA foreign_keys`);
        expect(Number(fk?.foreign_keys)).toBe(0);
        return ctx.transaction;
      },
      { foreignKeys: "check-at-commit" },
    );
    const w2 = write("w2");
    const vacuum = db.exclusive(async (client) => {
      order.push("exclusive");
      await client.execute("VACUUM"); // refused inside a transaction
    });
    const w3 = write("w3");
    const w4 = write("w4");
    await pollUntil(() => db.writeQueueDepth === 6);
    holder.release.resolve();
    await holder.done;
    const [t1, tm, t2, , t3, t4] = await Promise.all([w1, migration, w2, vacuum, w3, w4]);
    expect(order).toEqual(["w1", "migration", "w2", "exclusive", "w3", "w4"]);
    expect(new Set([t1, tm, t2, t3]).size).toBe(4);
    expect(t3).toBe(t4); // grouped
  });

  it("still refuses nested units of work inside a grouped unit", async () => {
    const { db } = await testDatabase();
    const holder = await holdWriter(db);
    const nestedWrite = db.write(async () => db.write(async () => 1));
    const nestedRead = db.write(async () => db.read(async () => 1));
    const fine = db.write(async (tx) => tx.insert(authors).values({ name: "fine" }));
    await pollUntil(() => db.writeQueueDepth === 3);
    holder.release.resolve();
    await expect(nestedWrite).rejects.toThrow(/inside another one/);
    await expect(nestedRead).rejects.toThrow(/inside another one/);
    await fine;
    expect(await names(db)).toEqual(["fine", "holder"]);
  });
});

describe("read units of work on the read-only pool", () => {
  it("keeps refusing writes after the read pool was replaced (transient error), while db.client stays writable", async () => {
    const retries: DatabaseRetryEvent[] = [];
    const { db } = await testDatabase({
      onRetry: (event) => retries.push(event),
      retry: { initialDelayMs: 1, maxDelayMs: 5 },
    });
    const seen = await db.read(async (tx, ctx) => {
      if (ctx.attempt === 1) throw busy(); // makes the database replace the read pool
      return Number((await tx.get<{ n: number }>(sql`SELECT count(*) AS n FROM authors`))?.n);
    });
    expect(seen).toBe(0);
    expect(retries.map((r) => r.kind)).toEqual(["read"]);
    // every connection of the fresh pool is read-only (16 concurrent units hold 16 connections)
    const results = await Promise.allSettled(
      Array.from({ length: 16 }, (_, i) =>
        db.read(async (tx) => {
          await new Promise((resolve) => setImmediate(resolve));
          await tx.run(sql`INSERT INTO authors (name) VALUES (${`sneaky ${i}`})`);
        }),
      ),
    );
    for (const result of results) {
      expect(result).toMatchObject({ status: "rejected", reason: { cause: { code: "SQLITE_READONLY" } } });
    }
    await db.client.execute("INSERT INTO authors (name) VALUES ('tooling')");
    expect(await names(db)).toEqual(["tooling"]);
  });
});
