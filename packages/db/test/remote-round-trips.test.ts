import { sql } from "drizzle-orm";
import { expect, it, onTestFinished } from "vitest";
import { type CountingProxy, startCountingProxy } from "../../../test/support/counting-proxy.js";
import { describeWithSqld, sqldForTest } from "../../../test/support/sqld.js";
import { createDatabase, type Database } from "../src/index.js";

/** A database on a fresh sqld, reached through a counting proxy, with tables `t` and `head`. */
async function countedDatabase(): Promise<{ db: Database; proxy: CountingProxy; url: string }> {
  const sqld = await sqldForTest();
  const proxy = await startCountingProxy(sqld.url);
  onTestFinished(() => proxy.close());
  const db = await createDatabase({ url: proxy.url });
  onTestFinished(() => db.close());
  await db.client.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  await db.client.execute("CREATE TABLE head (n INTEGER NOT NULL)");
  await db.client.execute("INSERT INTO head (n) VALUES (0)");
  return { db, proxy, url: proxy.url };
}

async function requestsOf<T>(
  proxy: CountingProxy,
  run: () => Promise<T>,
): Promise<{ result: T; count: number }> {
  proxy.reset();
  const result = await run();
  return { result, count: proxy.requests.length };
}

const ids = async (db: Database) =>
  (await db.client.execute("SELECT id FROM t ORDER BY id")).rows.map((r) => Number(r.id));

async function failure(run: Promise<unknown>): Promise<{ code?: unknown; message?: unknown }> {
  try {
    await run;
  } catch (err) {
    return err as { code?: unknown };
  }
  throw new Error("expected the unit of work to fail");
}

describeWithSqld("write units of work on sqld: held-back INSERTs", () => {
  it("ask sqld for uncompressed answers (a gunzip per response cost more CPU than the query)", async () => {
    const { db, proxy } = await countedDatabase();
    const { count } = await requestsOf(proxy, () =>
      db.write(async (tx) => {
        await tx.run(sql`INSERT INTO t (id, v) VALUES (1, 'x')`);
      }),
    );
    await db.read(async (tx) => tx.all(sql`SELECT v FROM t`));
    expect(count).toBeGreaterThan(0);
    expect(new Set(proxy.requests.map((r) => r.acceptEncoding))).toEqual(new Set(["identity"]));
  });

  it("send a unit's INSERTs with its COMMIT, in one request", async () => {
    const { db, proxy } = await countedDatabase();
    const { count } = await requestsOf(proxy, () =>
      db.write(async (tx) => {
        await tx.run(sql`INSERT INTO t (id, v) VALUES (1, 'a')`);
        await tx.run(sql`INSERT INTO t (id, v) VALUES (2, 'b')`);
      }),
    );
    expect(count).toBe(1);
    expect(await ids(db)).toEqual([1, 2]);
  });

  it("roll the whole unit back when a held-back INSERT fails at COMMIT", async () => {
    const { db } = await countedDatabase();
    await db.write(async (tx) => tx.run(sql`INSERT INTO t (id, v) VALUES (1, 'a')`));
    const err = await failure(
      db.write(async (tx) => {
        await tx.run(sql`INSERT INTO t (id, v) VALUES (5, 'e')`);
        await tx.run(sql`INSERT INTO t (id, v) VALUES (1, 'again')`);
        await tx.run(sql`INSERT INTO t (id, v) VALUES (6, 'f')`);
      }),
    );
    expect(String(err.code)).toMatch(/CONSTRAINT/);
    expect(await ids(db)).toEqual([1]);
  });

  it("fail the unit when the failure of a held-back INSERT is caught by the unit, committing nothing of it", async () => {
    const { db } = await countedDatabase();
    await db.write(async (tx) => tx.run(sql`INSERT INTO t (id, v) VALUES (1, 'a')`));
    const err = await failure(
      db.write(async (tx) => {
        await tx.run(sql`INSERT INTO t (id, v) VALUES (1, 'again')`);
        await tx.run(sql`INSERT INTO t (id, v) VALUES (7, 'g')`);
        // the duplicate comes back from this read; a unit that swallows it must still not commit
        await tx.all(sql`SELECT count(*) FROM t`).catch(() => undefined);
        await tx.run(sql`INSERT INTO t (id, v) VALUES (8, 'h')`);
      }),
    );
    expect(String(err.code)).toMatch(/CONSTRAINT/);
    expect(await ids(db)).toEqual([1]);
  });

  it("let later reads see held-back INSERTs; an UPDATE's count is exact, a held-back INSERT's refused", async () => {
    const { db } = await countedDatabase();
    const seen = await db.write(async (tx) => {
      const inserted = await tx.run(sql`INSERT INTO t (id, v) VALUES (3, 'c')`);
      expect(() => inserted.rowsAffected).toThrow(/held back/);
      const updated = await tx.run(sql`UPDATE t SET v = 'cc' WHERE id = 3`);
      return { updated: updated.rowsAffected, rows: await tx.all<{ v: string }>(sql`SELECT v FROM t`) };
    });
    expect(seen).toEqual({ updated: 1, rows: [{ v: "cc" }] });
  });
});

describeWithSqld("write units of work on sqld: read-ahead", () => {
  /** A unit like an audited write: reads `head`, inserts into `t`, appends the next `head` value. */
  const advance = (db: Database, id: number) =>
    db.write(async (tx) => {
      await tx.all(sql`SELECT ${id} AS first`);
      await tx.run(sql`INSERT INTO t (id, v) VALUES (${id}, 'x')`);
      const [row] = await tx.all<{ n: number }>(sql.raw("SELECT max(n) AS n FROM head"));
      const next = Number(row?.n) + 1;
      await tx.run(sql`INSERT INTO head (n) VALUES (${next})`);
      return next;
    });

  it("answer a learned argument-free read from the unit's first request: two requests in all", async () => {
    const { db, proxy } = await countedDatabase();
    expect(await advance(db, 1)).toBe(1);
    const { result, count } = await requestsOf(proxy, () => advance(db, 2));
    expect(result).toBe(2);
    expect(count).toBe(2);
    expect(proxy.requests[0]?.sql).toContain("SELECT max(n) AS n FROM head");
  });

  it("run the unit again when what it read ahead changed before it read it (its own write in between)", async () => {
    const { db } = await countedDatabase();
    expect(await advance(db, 1)).toBe(1);
    // this unit changes `head` after the read-ahead and before its read: the early answer (1) is stale
    const next = await db.write(async (tx) => {
      await tx.all(sql`SELECT 0 AS first`);
      await tx.run(sql`UPDATE head SET n = n + 10`);
      const [row] = await tx.all<{ n: number }>(sql.raw("SELECT max(n) AS n FROM head"));
      const n = Number(row?.n) + 1;
      await tx.run(sql`INSERT INTO head (n) VALUES (${n})`);
      return n;
    });
    expect(next).toBe(12);
    const rows = (await db.client.execute("SELECT n FROM head ORDER BY n")).rows.map((r) => Number(r.n));
    expect(rows).toEqual([10, 11, 12]);
  });

  it("go on when a learned read fails (its table dropped), and forget it", async () => {
    const { db, proxy } = await countedDatabase();
    await db.client.execute("CREATE TABLE gone (n INTEGER)");
    await db.write(async (tx) => {
      await tx.all(sql`SELECT 1 AS first`);
      await tx.all(sql.raw("SELECT count(*) AS n FROM gone"));
    });
    await db.client.execute("DROP TABLE gone");
    expect(await advance(db, 1)).toBe(1);
    proxy.reset();
    expect(await advance(db, 2)).toBe(2);
    expect(proxy.requests.flatMap((r) => r.sql).join("\n")).not.toContain("FROM gone");
  });

  it("read the ordinary way a learned read that now answers more than one row", async () => {
    const { db, proxy } = await countedDatabase();
    const unit = () =>
      db.write(async (tx) => {
        await tx.all(sql`SELECT 1 AS first`);
        const rows = await tx.all<{ n: number }>(sql.raw("SELECT n FROM head ORDER BY n"));
        await tx.run(sql`INSERT INTO t (id, v) VALUES (${rows.length}, 'x')`);
        return rows.map((r) => Number(r.n));
      });
    expect(await unit()).toEqual([0]);
    await db.client.execute("INSERT INTO head (n) VALUES (5)");
    const { result, count } = await requestsOf(proxy, unit);
    expect(result).toEqual([0, 5]);
    expect(count).toBe(3);
  });

  it("never read ahead again a statement that missed once (its answer moves within units)", async () => {
    const { db, proxy } = await countedDatabase();
    const unit = (id: number) =>
      db.write(async (tx) => {
        await tx.all(sql`SELECT 1 AS first`);
        await tx.run(sql`INSERT INTO t (id, v) VALUES (${id}, 'x')`);
        const [row] = await tx.all<{ n: number }>(sql.raw("SELECT count(*) AS n FROM t"));
        return Number(row?.n);
      });
    expect(await unit(1)).toBe(1); // learned
    expect(await unit(2)).toBe(2); // read ahead before its INSERT: missed, run again
    const { result, count } = await requestsOf(proxy, () => unit(3));
    expect(result).toBe(3);
    expect(count).toBe(3);
    proxy.reset();
    expect(await unit(4)).toBe(4);
    expect(proxy.requests.flatMap((r) => r.sql).join("\n")).not.toContain("read-ahead changed");
  });

  it("stop reading ahead what units no longer use", async () => {
    const { db, proxy } = await countedDatabase();
    await db.write(async (tx) => {
      await tx.all(sql`SELECT 1 AS first`);
      await tx.all(sql.raw("SELECT count(*) AS n FROM t"));
    });
    for (let i = 1; i <= 8; i++) await advance(db, i);
    proxy.reset();
    await advance(db, 9);
    expect(proxy.requests.flatMap((r) => r.sql).join("\n")).not.toContain("count(*) AS n FROM t");
  });

  it("see a change another process committed between two units", async () => {
    const { db, url } = await countedDatabase();
    const other = await createDatabase({ url });
    onTestFinished(() => other.close());
    expect(await advance(db, 1)).toBe(1);
    expect(await advance(other, 2)).toBe(2);
    expect(await advance(db, 3)).toBe(3);
    expect(await advance(other, 4)).toBe(4);
  });
});

describeWithSqld("read units of work on sqld", () => {
  it("cost one request for one statement, and keep refusing a write", async () => {
    const { db, proxy } = await countedDatabase();
    const { result, count } = await requestsOf(proxy, () =>
      db.read(async (tx) => tx.all<{ n: number }>(sql`SELECT n FROM head`)),
    );
    expect(result).toEqual([{ n: 0 }]);
    expect(count).toBe(1);
    const err = await failure(db.read(async (tx) => tx.run(sql`INSERT INTO t (id, v) VALUES (9, 'no')`)));
    expect(JSON.stringify(err) + String(err) + String((err as { cause?: unknown }).cause)).toMatch(
      /READONLY/,
    );
    expect(await ids(db)).toEqual([]);
  });

  it("cost a request per statement and one more for a read of several", async () => {
    const { db, proxy } = await countedDatabase();
    const twoReads = () =>
      db.read(async (tx) => [await tx.all(sql`SELECT n FROM head`), await tx.all(sql`SELECT id FROM t`)]);
    await twoReads(); // learns that units starting this way read more than once
    const { result, count } = await requestsOf(proxy, twoReads);
    expect(result).toEqual([[{ n: 0 }], []]);
    expect(count).toBe(3);
  });

  it("run a read of several statements in one transaction: one snapshot", async () => {
    const { db, url } = await countedDatabase();
    const other = await createDatabase({ url });
    onTestFinished(() => other.close());
    let written = 0;
    for (let round = 0; round < 2; round++) {
      const seen = await db.read(async (tx) => {
        const before = await tx.all<{ n: number }>(sql`SELECT count(*) AS n FROM t`);
        // committed by another connection between the two statements: not visible in this snapshot
        written++;
        await other.write(async (w) => w.run(sql`INSERT INTO t (id, v) VALUES (${written}, 'o')`));
        const after = await tx.all<{ n: number }>(sql`SELECT count(*) AS n FROM t`);
        return [Number(before[0]?.n), Number(after[0]?.n)];
      });
      expect(seen[0]).toBe(seen[1]);
    }
  });
});
