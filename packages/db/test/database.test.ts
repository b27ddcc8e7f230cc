import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { eq, sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import { appendAudit, createDatabase, type DatabaseRetryEvent, type UnitOfWorkEvent } from "../src/index.js";
import { authors, books } from "./fixtures/schema.js";
import { deferred, pollUntil, tempDir, testDatabase } from "./helpers.js";

const countRows = (rows: { n: number }[]) => Number(rows[0]?.n ?? -1);

describe("createDatabase", () => {
  itWith(
    ["localFile", "wal"],
    "creates the parent directory and puts a file database in WAL mode",
    async () => {
      const { db, path } = await testDatabase({ migrated: false });
      expect(existsSync(path)).toBe(true);
      expect(db.mode).toBe("file");
      const mode = await db.client.execute("PRAGMA journal_mode");
      expect(mode.rows[0]?.journal_mode).toBe("wal");
    },
  );

  it("rejects unsupported URLs with a clear error", async () => {
    await expect(createDatabase({ url: "postgres://localhost/x" })).rejects.toThrow(
      /unsupported database URL scheme/,
    );
    await expect(createDatabase({ url: ":memory:" })).rejects.toThrow(/unsupported/);
    await expect(createDatabase({ url: "file::memory:" })).rejects.toThrow(/in-memory/);
    await expect(
      createDatabase({ url: "libsql://example.invalid", syncUrl: "libsql://x.invalid" }),
    ).rejects.toThrow(/embedded replica/);
  });

  it("encrypts a file database at rest with encryptionKey", async () => {
    const dir = tempDir();
    const path = join(dir, "secret.db");
    const url = `file:${path}`;
    const encryptionKey = "a-test-key-that-is-long-enough-0123";
    const marker = "PLAINTEXT-MARKER-4f1c";
    const db = await createDatabase({ url, encryptionKey });
    await db.write(async (tx) => {
      await tx.run(sql`CREATE TABLE notes (body TEXT NOT NULL)`);
      await tx.run(sql`INSERT INTO notes (body) VALUES (${marker})`);
    });
    await db.close();

    const onDisk = [path, `${path}-wal`]
      .filter((file) => existsSync(file))
      .map((file) => readFileSync(file).toString("latin1"))
      .join("");
    expect(onDisk.length).toBeGreaterThan(0);
    expect(onDisk).not.toContain(marker);

    const reopened = await createDatabase({ url, encryptionKey });
    const rows = await reopened.read(async (tx) => tx.all<{ body: string }>(sql`SELECT body FROM notes`));
    expect(rows).toEqual([{ body: marker }]);
    await reopened.close();

    await expect(createDatabase({ url })).rejects.toThrow(/encrypted with another \(or no\) encryption key/);
  });

  it("accepts a remote URL without connecting until used", async () => {
    const db = await createDatabase({ url: "http://127.0.0.1:1", authToken: "t" });
    expect(db.mode).toBe("remote");
    await db.close();
  });
});

describe("units of work", () => {
  it("commits 50 concurrent write units of work on one file without a single SQLITE_BUSY", async () => {
    const retries: DatabaseRetryEvent[] = [];
    const { db } = await testDatabase({ onRetry: (event) => retries.push(event) });

    let maxQueue = 0;
    const writes = Array.from({ length: 50 }, (_, i) =>
      db.write(async (tx) => {
        const [author] = await tx
          .insert(authors)
          .values({ name: `author ${i}` })
          .returning();
        // yield to the event loop inside the transaction, as a real handler would
        await new Promise((resolve) => setImmediate(resolve));
        maxQueue = Math.max(maxQueue, db.writeQueueDepth);
        await tx.insert(books).values({ authorId: author?.id ?? -1, title: `book ${i}` });
        await appendAudit(tx, {
          actor: "test",
          action: "create",
          resourceType: "author",
          resourceId: String(i),
        });
        return author?.id;
      }),
    );
    const ids = await Promise.all(writes);

    expect(new Set(ids).size).toBe(50);
    expect(retries).toEqual([]);
    expect(maxQueue).toBeGreaterThan(0); // they really were concurrent, and queued
    expect(db.writeQueueDepth).toBe(0);
    const counts = await db.read(async (tx) => ({
      authors: countRows(await tx.all(sql`SELECT count(*) AS n FROM authors`)),
      books: countRows(await tx.all(sql`SELECT count(*) AS n FROM books`)),
      audit: countRows(await tx.all(sql`SELECT count(*) AS n FROM audit_log`)),
    }));
    expect(counts).toEqual({ authors: 50, books: 50, audit: 50 });
  });

  it("runs a read unit of work while a write unit of work holds the write lock", async () => {
    const { db } = await testDatabase();
    const inside = deferred();
    const release = deferred();
    const writing = db.write(async (tx) => {
      await tx.insert(authors).values({ name: "uncommitted" });
      inside.resolve();
      await release.promise;
    });
    await inside.promise;

    // a second writer queues behind the first...
    const queued = db.write(async (tx) => tx.insert(authors).values({ name: "second" }));
    await pollUntil(() => db.writeQueueDepth === 1);

    // ...but a reader does not: it completes while the writer is still open (it would hang otherwise)
    const seen = await db.read(async (tx) => countRows(await tx.all(sql`SELECT count(*) AS n FROM authors`)));
    expect(seen).toBe(0); // a snapshot without the uncommitted row

    release.resolve();
    await Promise.all([writing, queued]);
    const after = await db.read(async (tx) => tx.select().from(authors));
    expect(after.map((a) => a.name).sort()).toEqual(["second", "uncommitted"]);
  });

  it("rolls back everything, audit row included, when the unit of work throws", async () => {
    const { db } = await testDatabase();
    const failure = new Error("handler failed after writing");
    await expect(
      db.write(async (tx) => {
        await tx.insert(authors).values({ id: 1, name: "ghost" });
        await appendAudit(tx, { actor: "test", action: "create", resourceType: "author", resourceId: "1" });
        throw failure;
      }),
    ).rejects.toBe(failure);

    const left = await db.read(async (tx) => ({
      authors: countRows(await tx.all(sql`SELECT count(*) AS n FROM authors`)),
      audit: countRows(await tx.all(sql`SELECT count(*) AS n FROM audit_log`)),
    }));
    expect(left).toEqual({ authors: 0, audit: 0 });
    // and the writer is free again
    await db.write(async (tx) => tx.insert(authors).values({ id: 1, name: "real" }));
  });

  it("gives the unit of work a typed Drizzle handle that also runs raw SQL", async () => {
    const { db } = await testDatabase();
    await db.write(async (tx) => {
      await tx.run(sql`INSERT INTO authors (id, name) VALUES (7, 'raw')`);
      await tx.insert(books).values({ authorId: 7, title: "typed", pages: 100 });
    });
    const result = await db.read(async (tx) => ({
      relational: await tx.query.books.findFirst({ where: eq(books.authorId, 7) }),
      raw: await tx.all<{ name: string }>(sql`SELECT name FROM ${authors} WHERE ${authors.id} = 7`),
    }));
    expect(result.relational?.title).toBe("typed");
    expect(result.raw).toEqual([{ name: "raw" }]);
  });

  it("refuses writes inside a read unit of work, and nested units of work", async () => {
    const { db } = await testDatabase();
    await expect(
      db.read(async (tx) => tx.run(sql`INSERT INTO authors (name) VALUES ('sneaky')`)),
    ).rejects.toMatchObject({ cause: { code: "SQLITE_READONLY" } });
    await expect(db.write(async () => db.write(async () => 1))).rejects.toThrow(/inside another one/);
    // read units have a pool of their own: the tooling client (`db.client`) is still writable
    await db.client.execute("CREATE TABLE scratch (x)");
    expect(await db.read(async (tx) => countRows(await tx.all(sql`SELECT count(*) AS n FROM authors`)))).toBe(
      0,
    );
  });

  it("stops waiting for the writer when the signal aborts", async () => {
    const { db } = await testDatabase();
    const release = deferred();
    const inside = deferred();
    const holding = db.write(async () => {
      inside.resolve();
      await release.promise;
    });
    await inside.promise;
    const controller = new AbortController();
    let ran = false;
    const waiting = db.write(
      async () => {
        ran = true;
      },
      { signal: controller.signal },
    );
    await pollUntil(() => db.writeQueueDepth === 1);
    controller.abort(new Error("client went away"));
    await expect(waiting).rejects.toThrow("client went away");
    expect(db.writeQueueDepth).toBe(0);
    release.resolve();
    await holding;
    expect(ran).toBe(false);
  });

  itWith(
    "localMaintenance",
    "exclusive() runs VACUUM on the writer connection, queued with the write units of work",
    async () => {
      const { db } = await testDatabase();
      const order: string[] = [];
      const release = deferred();
      const inside = deferred();
      const writing = db.write(async (tx) => {
        inside.resolve();
        await release.promise;
        await tx.insert(authors).values({ name: "before vacuum" });
        order.push("write");
      });
      await inside.promise;
      const vacuum = db.exclusive(async (client) => {
        await client.execute("VACUUM"); // refused by SQLite inside a transaction
        order.push("vacuum");
      });
      await pollUntil(() => db.writeQueueDepth === 1);
      release.resolve();
      await Promise.all([writing, vacuum]);
      expect(order).toEqual(["write", "vacuum"]);
    },
  );

  it("reports every attempt of a read or write unit of work to onUnitOfWork, with its outcome", async () => {
    const events: UnitOfWorkEvent[] = [];
    const { db } = await testDatabase({ onUnitOfWork: (event) => events.push(event) });
    events.length = 0; // the fixture migrations ran as write units
    await db.write((tx) => tx.insert(authors).values({ name: "a" }));
    await db.read((tx) => tx.all(sql`SELECT * FROM authors`));
    await expect(
      db.write(async () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    await db.exclusive((client) => client.execute("SELECT 1")); // not a transaction: not reported
    expect(events.map(({ kind, outcome, attempt }) => [kind, outcome, attempt])).toEqual([
      ["write", "commit", 1],
      ["read", "commit", 1],
      ["write", "rollback", 1],
    ]);
    expect(events.every((e) => e.durationMs >= 0)).toBe(true);
  });

  it("close() waits for running units of work and then refuses new ones", async () => {
    const dir = tempDir();
    const db = await createDatabase({ url: `file:${join(dir, "close.db")}` });
    await db.write(async (_tx, ctx) => ctx.transaction.execute("CREATE TABLE t (x)"));
    const release = deferred();
    const inside = deferred();
    const running = db.write(async (tx) => {
      inside.resolve();
      await release.promise;
      await tx.run(sql`INSERT INTO t VALUES (1)`);
    });
    await inside.promise;
    const closing = db.close();
    release.resolve();
    await running;
    await closing;
    await expect(db.read(async () => 1)).rejects.toMatchObject({ code: "DATABASE_CLOSED" });
    const check = createClient({ url: `file:${join(dir, "close.db")}` });
    expect((await check.execute("SELECT count(*) AS n FROM t")).rows[0]?.n).toBe(1);
    check.close();
  });
});
