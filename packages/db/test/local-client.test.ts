import { join } from "node:path";
import { type Client, createClient, type InStatement, LibsqlError } from "@libsql/client";
import Database from "libsql";
import { afterEach, describe, expect, it, vi } from "vitest";
import { createLocalClient } from "../src/local-client.js";
import { tempDir } from "./helpers.js";

const open: Client[] = [];
afterEach(() => {
  for (const client of open.splice(0)) client.close();
});

/**
 * @libsql/client and our statement-caching client, each on a file of its own (`sameFile`: on one file).
 * The cache is kept small so that the tests also run through evictions.
 */
function pair(sameFile = false): { upstream: Client; local: Client } {
  const dir = tempDir();
  const upstream = createClient({ url: `file:${join(dir, "upstream.db")}` });
  const local = createLocalClient({
    path: join(dir, sameFile ? "upstream.db" : "local.db"),
    timeout: 5_000,
    concurrency: 2,
    statementCacheSize: 4,
  });
  open.push(upstream, local);
  return { upstream, local };
}

/** Everything a caller can observe of a result: named and indexed access, enumerable keys, JSON. */
function observe(result: Awaited<ReturnType<Client["execute"]>>) {
  return {
    columns: result.columns,
    columnTypes: result.columnTypes,
    rowsAffected: result.rowsAffected,
    lastInsertRowid: result.lastInsertRowid,
    rows: result.rows.map((row) => ({
      keys: Object.keys(row),
      named: { ...row },
      indexed: Array.prototype.slice.call(row),
      length: row.length,
    })),
    json: JSON.stringify(result.toJSON()),
  };
}

async function errorOf(run: () => Promise<unknown>) {
  try {
    await run();
  } catch (err) {
    const e = err as LibsqlError;
    return { type: e.constructor.name, code: e.code, extendedCode: e.extendedCode, rawCode: e.rawCode };
  }
  throw new Error("expected an error");
}

describe("createLocalClient (prepared-statement cache)", () => {
  it("returns exactly what @libsql/client returns, on first and on cached executions", async () => {
    const { upstream, local } = pair();
    const schema = `
      CREATE TABLE a (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL, data BLOB, n INTEGER);
      CREATE TABLE b (id INTEGER PRIMARY KEY, a_id INTEGER NOT NULL REFERENCES a(id), name TEXT);
    `;
    await upstream.executeMultiple(schema);
    await local.executeMultiple(schema);
    const statements: InStatement[] = [
      {
        sql: "INSERT INTO a (name, score, data, n) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET n = n + 1",
        args: ["x", 1.5, new Uint8Array([1, 2, 3]).buffer, 7],
      },
      {
        sql: "INSERT INTO a (name, score, data, n) VALUES (:name, $score, @data, :n) ON CONFLICT DO NOTHING",
        args: { name: "y", score: null, data: null, n: true },
      },
      { sql: "INSERT INTO b (a_id, name) VALUES (1, 'bx'), (2, 'by')", args: [] },
      { sql: "SELECT * FROM a ORDER BY id", args: [] },
      // duplicate column names: the first wins by name, both by index
      {
        sql: "SELECT a.id, b.id, a.name, b.name AS name FROM a JOIN b ON b.a_id = a.id ORDER BY a.id",
        args: [],
      },
      { sql: 'SELECT 1, 2 AS "0", \'x\' AS "5", 3 AS length, 4 AS __proto__, 5 AS "07"', args: [] },
      { sql: "SELECT count(*) AS n, sum(score) AS total FROM a WHERE id > ?", args: [0n] },
      { sql: "SELECT name FROM a WHERE id = ?", args: [999] },
      { sql: "UPDATE a SET n = n + 1 WHERE id >= ?", args: [1] },
      { sql: "INSERT INTO b (a_id, name) VALUES (?, ?) RETURNING id, name", args: [1, "ret"] },
      { sql: "PRAGMA journal_mode", args: [] },
    ];
    for (let round = 0; round < 2; round++) {
      for (const stmt of statements) {
        expect(observe(await local.execute(stmt))).toEqual(observe(await upstream.execute(stmt)));
      }
    }
    const blob = (await local.execute("SELECT data FROM a WHERE name = 'x'")).rows[0]?.data;
    expect(blob).toBeInstanceOf(ArrayBuffer);
    expect([...new Uint8Array(blob as ArrayBuffer)]).toEqual([1, 2, 3]);
  });

  it("throws the same errors, and a failed statement does not break the next one", async () => {
    const { upstream, local } = pair();
    for (const client of [upstream, local]) {
      await client.execute(
        "CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER NOT NULL UNIQUE CHECK (v >= 0))",
      );
      await client.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: [1] });
    }
    for (const args of [[1], [-1], [null]]) {
      const stmt = { sql: "INSERT INTO t (v) VALUES (?)", args };
      expect(await errorOf(() => local.execute(stmt))).toEqual(await errorOf(() => upstream.execute(stmt)));
    }
    expect(await errorOf(() => local.execute("SELEC 1"))).toEqual(
      await errorOf(() => upstream.execute("SELEC 1")),
    );
    await local.execute({ sql: "INSERT INTO t (v) VALUES (?)", args: [2] });
    expect((await local.execute("SELECT count(*) AS n FROM t")).rows[0]?.n).toBe(2);
    // values that cannot be represented are refused, as upstream does
    await expect(local.execute({ sql: "SELECT ?", args: [Number.NaN] })).rejects.toThrow(RangeError);
    await expect(local.execute("SELECT 9007199254740993")).rejects.toThrow(RangeError);
  });

  it("sees schema changes through cached statements, on its own and on other connections", async () => {
    const { upstream, local } = pair(true);
    await local.execute("CREATE TABLE t (a INTEGER)");
    await local.execute("INSERT INTO t VALUES (1)");
    expect(Object.keys((await local.execute("SELECT * FROM t")).rows[0] ?? {})).toEqual(["a"]);
    await upstream.execute("ALTER TABLE t ADD COLUMN b TEXT DEFAULT 'x'");
    const after = await local.execute("SELECT * FROM t");
    expect(after.columns).toEqual(["a", "b"]);
    expect({ ...after.rows[0] }).toEqual({ a: 1, b: "x" });
  });

  it("keeps transactions on one connection, with the Transaction semantics of @libsql/client", async () => {
    const { local } = pair();
    await local.execute("CREATE TABLE t (v INTEGER)");
    const tx = await local.transaction("write");
    await tx.execute({ sql: "INSERT INTO t VALUES (?)", args: [1] });
    await tx.batch([{ sql: "INSERT INTO t VALUES (?)", args: [2] }, "INSERT INTO t VALUES (3)"]);
    expect(tx.closed).toBe(false);
    await tx.rollback();
    expect(tx.closed).toBe(true);
    await expect(tx.execute("SELECT 1")).rejects.toMatchObject({ code: "TRANSACTION_CLOSED" });
    expect((await local.execute("SELECT count(*) AS n FROM t")).rows[0]?.n).toBe(0);

    const committed = await local.transaction("write");
    await committed.execute("INSERT INTO t VALUES (4)");
    await committed.commit();
    expect((await local.execute("SELECT count(*) AS n FROM t")).rows[0]?.n).toBe(1);

    // a failing batch rolls back and names the failing statement
    await expect(
      local.batch(["INSERT INTO t VALUES (5)", "INSERT INTO missing VALUES (6)"], "write"),
    ).rejects.toMatchObject({ statementIndex: 1 });
    expect((await local.execute("SELECT count(*) AS n FROM t")).rows[0]?.n).toBe(1);

    // the read-only guard the kit relies on
    const read = await local.transaction("read");
    await read.execute("PRAGMA query_only=ON");
    await expect(read.execute("INSERT INTO t VALUES (7)")).rejects.toBeInstanceOf(LibsqlError);
    await read.execute("PRAGMA query_only=OFF");
    read.close();
    local.close();
    await expect(local.execute("SELECT 1")).rejects.toMatchObject({ code: "CLIENT_CLOSED" });
    await local.reconnect();
    expect((await local.execute("SELECT count(*) AS n FROM t")).rows[0]?.n).toBe(1);
  });

  it("bounds the cache: more distinct statements than it holds still all run correctly", async () => {
    const { local } = pair();
    await local.execute("CREATE TABLE t (v INTEGER)");
    for (let i = 0; i < 20; i++)
      await local.execute({ sql: `INSERT INTO t VALUES (? + ${i % 7})`, args: [i] });
    const sums = [];
    for (let i = 0; i < 10; i++) {
      sums.push((await local.execute(`SELECT sum(v) + ${i} AS s FROM t`)).rows[0]?.s);
    }
    const base = 190 + [...Array(20).keys()].reduce((acc, i) => acc + (i % 7), 0);
    expect(sums).toEqual([...Array(10).keys()].map((i) => base + i));
  });

  it("prepares a statement once per connection and reuses it", async () => {
    const { local } = pair();
    await local.execute("CREATE TABLE t (v INTEGER)");
    const prepare = vi.spyOn(Database.prototype, "prepare");
    try {
      for (let i = 0; i < 50; i++) {
        await local.execute({ sql: "INSERT INTO t VALUES (?)", args: [i] });
        await local.execute({ sql: "SELECT count(*) AS n FROM t WHERE v <= ?", args: [i] });
      }
      // two statements, each on at most both of the pool's connections
      expect(prepare.mock.calls.length).toBeGreaterThanOrEqual(2);
      expect(prepare.mock.calls.length).toBeLessThanOrEqual(4);
    } finally {
      prepare.mockRestore();
    }
    expect((await local.execute("SELECT count(*) AS n FROM t")).rows[0]?.n).toBe(50);
  });

  it("fails fast on a file it cannot open", () => {
    const dir = tempDir();
    expect(() => createLocalClient({ path: dir, timeout: 100, concurrency: 1 })).toThrow();
  });
});
