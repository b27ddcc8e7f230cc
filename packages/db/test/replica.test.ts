/**
 * Embedded replicas (#12, findings 1 and 2): the local copy survives primary restarts during writes, reads are
 * answered from it (also while the primary answers nothing), and a copy found corrupt at start is moved aside
 * and bootstrapped again from the primary.
 */
import { closeSync, existsSync, openSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { eq } from "drizzle-orm";
import Database from "libsql";
import { expect, it, onTestFinished } from "vitest";
import { pollUntil } from "../../../test/support/assertions.js";
import { describeWithSqld } from "../../../test/support/sqld.js";
import { createDatabase, type DatabaseOptions, type Database as Db, migrate } from "../src/index.js";
import * as schema from "./fixtures/schema.js";
import { authors, books } from "./fixtures/schema.js";
import { migrationsDir, type TestSchema, tempDir } from "./helpers.js";
import { type RestartablePrimary, restartablePrimary } from "./replica-primary.js";

interface Replica {
  db: Db<TestSchema>;
  path: string;
  options: DatabaseOptions<TestSchema>;
}

async function openReplica(
  primary: RestartablePrimary,
  extra: Partial<DatabaseOptions<TestSchema>> = {},
  dir: string = tempDir(),
): Promise<Replica> {
  const path = join(dir, "replica.db");
  const options: DatabaseOptions<TestSchema> = {
    url: `file:${path}`,
    syncUrl: primary.url,
    schema,
    // fast retries: the tests restart the primary under writes
    retry: { maxAttempts: 8, initialDelayMs: 20, maxDelayMs: 200 },
    ...extra,
  };
  const db = await createDatabase(options);
  onTestFinished(() => db.close());
  return { db, path, options };
}

/** `PRAGMA integrity_check` of a closed replica's file, on a connection of its own ("ok", or what is wrong). */
function integrityOf(path: string): string {
  const file = new Database(path);
  try {
    const rows = file.prepare("PRAGMA integrity_check").raw(true).all() as unknown[][];
    return rows.map((row) => String(row[0])).join("; ");
  } catch (err) {
    return String(err);
  } finally {
    file.close();
  }
}

async function until(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (condition()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describeWithSqld("embedded replica", () => {
  it("replica: primary restarted during writes x 5, then every acknowledged write readable through the replica and the file intact", async () => {
    const primary = await restartablePrimary();
    // a short sync interval: the periodic sync runs through every outage and restart
    const { db, path } = await openReplica(primary, { syncIntervalMs: 100 });
    await migrate(db, migrationsDir);

    const acknowledged: string[] = [];
    let running = true;
    let n = 0;
    const writer = (async () => {
      while (running) {
        const name = `author ${++n}`;
        try {
          // several pages per transaction (an author and five books), as a service's write units are
          await db.write(async (tx) => {
            const [author] = await tx.insert(authors).values({ name }).returning({ id: authors.id });
            for (let book = 0; book < 5; book++) {
              await tx
                .insert(books)
                .values({ authorId: author?.id ?? 0, title: `${name}, volume ${book} ${"x".repeat(150)}` });
            }
          });
          acknowledged.push(name);
        } catch {
          // the primary is down: not acknowledged, so nothing is owed
        }
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();

    for (let cycle = 0; cycle < 5; cycle++) {
      const before = acknowledged.length;
      await until(() => acknowledged.length >= before + 5, `writes before restart ${cycle + 1}`);
      // the primary dies in the middle of a write unit's transaction (its ROLLBACK cannot reach anyone)
      await db
        .write(async (tx) => {
          await tx.insert(authors).values({ name: `lost ${cycle}` });
          await primary.kill("SIGKILL");
          await tx.insert(authors).values({ name: `lost ${cycle} again` });
        })
        .catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 300));
      await primary.restart();
    }
    const afterLast = acknowledged.length;
    await until(() => acknowledged.length >= afterLast + 10, "writes after the last restart");
    // a few sync intervals with the primary up
    await new Promise((resolve) => setTimeout(resolve, 500));
    running = false;
    await writer;

    await db.sync();
    const names = new Set(
      (await db.read((tx) => tx.select({ name: authors.name }).from(authors))).map((row) => row.name),
    );
    expect(acknowledged.length).toBeGreaterThan(50);
    expect(acknowledged.filter((name) => !names.has(name))).toEqual([]);
    await db.close();
    expect(integrityOf(path)).toBe("ok");
  }, 120_000);

  it("reads are answered from the local file while the primary answers nothing (SIGSTOP), and the event loop keeps running", async () => {
    const primary = await restartablePrimary();
    const { db } = await openReplica(primary);
    await migrate(db, migrationsDir);
    await db.write((tx) => tx.insert(authors).values({ id: 1, name: "before the outage" }));

    primary.pause();
    // a write now waits for the primary; on the main thread its native call would freeze the event loop
    const stuckWrite = db.write((tx) => tx.insert(authors).values({ id: 2, name: "during" }));
    stuckWrite.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 100));
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    try {
      for (let i = 0; i < 20; i++) {
        const rows = await db.read((tx) => tx.select().from(authors).where(eq(authors.id, 1)), {
          deadline: Date.now() + 2_000,
        });
        expect(rows).toEqual([{ id: 1, name: "before the outage" }]);
      }
      const before = ticks;
      await until(() => ticks > before + 3, "timer ticks while a write waits for the stopped primary", 5_000);
    } finally {
      clearInterval(ticker);
      primary.resume();
    }
    await stuckWrite;
    expect(await db.read((tx) => tx.select().from(authors).where(eq(authors.id, 2)))).toEqual([
      { id: 2, name: "during" },
    ]);
  }, 60_000);

  it("reads see the replica's own acknowledged writes at once (read your writes)", async () => {
    const primary = await restartablePrimary();
    const { db } = await openReplica(primary);
    await migrate(db, migrationsDir);
    for (let id = 1; id <= 20; id++) {
      await db.write((tx) => tx.insert(authors).values({ id, name: `author ${id}` }));
      const rows = await db.read((tx) => tx.select().from(authors).where(eq(authors.id, id)));
      expect(rows).toEqual([{ id, name: `author ${id}` }]);
    }
  }, 60_000);

  it("reads see another writer's changes within the sync interval (default: 1 s), without a write of their own", async () => {
    const primary = await restartablePrimary();
    const { db } = await openReplica(primary);
    await migrate(db, migrationsDir);
    const elsewhere = await createDatabase({ url: primary.url, schema });
    onTestFinished(() => elsewhere.close());
    await elsewhere.write((tx) => tx.insert(authors).values({ id: 7, name: "written elsewhere" }));
    await pollUntil(
      async () => (await db.read((tx) => tx.select().from(authors).where(eq(authors.id, 7)))).length === 1,
      10_000,
      "the replica's reads to see the other writer's row",
    );
  }, 60_000);

  it("a second database on the same local copy is refused while the first is open (two replicators on one file corrupt it)", async () => {
    const primary = await restartablePrimary();
    const dir = tempDir();
    const first = await openReplica(primary, {}, dir);
    await expect(createDatabase(first.options)).rejects.toThrow(
      `${first.path} is already open as an embedded replica in this process`,
    );
    await first.db.close();
    // closed: the file may be opened again
    const again = await openReplica(primary, {}, dir);
    await migrate(again.db, migrationsDir);
    expect(await again.db.read((tx) => tx.select().from(authors))).toEqual([]);
  }, 60_000);

  it("a local copy encrypted with another key fails at start, naming the file, and stays where it is", async () => {
    const primary = await restartablePrimary();
    const dir = tempDir();
    const first = await openReplica(primary, { encryptionKey: "the-first-key" }, dir);
    await migrate(first.db, migrationsDir);
    await first.db.write((tx) => tx.insert(authors).values({ id: 1, name: "encrypted" }));
    await first.db.close();
    await expect(createDatabase({ ...first.options, encryptionKey: "another-key" })).rejects.toThrow(
      `cannot open ${first.path}: not a database, or encrypted with another (or no) encryption key`,
    );
    expect(readdirSync(dir).filter((entry) => entry.includes(".corrupt-"))).toEqual([]);
    const again = await openReplica(primary, { encryptionKey: "the-first-key" }, dir);
    expect(await again.db.read((tx) => tx.select().from(authors))).toEqual([{ id: 1, name: "encrypted" }]);
  }, 60_000);

  it("a local copy found corrupt at start is moved aside (and logged) and bootstrapped again from the primary", async () => {
    const primary = await restartablePrimary();
    const dir = tempDir();
    const first = await openReplica(primary, {}, dir);
    await migrate(first.db, migrationsDir);
    for (let id = 1; id <= 200; id++) {
      await first.db.write((tx) => tx.insert(authors).values({ id, name: `author ${id} ${"x".repeat(80)}` }));
    }
    await first.db.close();

    // everything into the main file, then garbage over every page but the first (the header stays, so the
    // file still opens)
    const file = new Database(first.path);
    file.exec("PRAGMA wal_checkpoint(TRUNCATE)");
    file.close();
    const pageSize = readFileSync(first.path).readUInt16BE(16);
    const size = readFileSync(first.path).length;
    const fd = openSync(first.path, "r+");
    try {
      writeSync(fd, Buffer.alloc(size - pageSize, 0x5a), 0, size - pageSize, pageSize);
    } finally {
      closeSync(fd);
    }
    expect(integrityOf(first.path)).not.toBe("ok");

    const errors: { obj: object; msg: string }[] = [];
    const logger = { error: (obj: object, msg: string) => errors.push({ obj, msg }) };
    const second = await openReplica(primary, { logger }, dir);
    const rows = await second.db.read((tx) => tx.select({ id: authors.id }).from(authors));
    expect(rows).toHaveLength(200);
    await second.db.write((tx) => tx.insert(authors).values({ id: 201, name: "after the rebuild" }));

    const aside = readdirSync(dir).filter((entry) => entry.startsWith("replica.db.corrupt-"));
    expect(aside.length).toBeGreaterThan(0);
    expect(errors).toHaveLength(1);
    expect(errors[0]?.msg).toMatch(/corrupt/);
    expect(errors[0]?.obj).toMatchObject({ path: first.path });
    const movedTo = String((errors[0]?.obj as { movedTo?: unknown } | undefined)?.movedTo);
    expect(existsSync(movedTo)).toBe(true);
    await second.db.close();
    expect(integrityOf(second.path)).toBe("ok");
  }, 60_000);
});
