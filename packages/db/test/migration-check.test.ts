import { createHash } from "node:crypto";
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import {
  checkMigrations,
  createDatabase,
  createMigrator,
  type Database,
  MigrationError,
} from "../src/index.js";
import { fixturesDir, migrationsDir, type TestSchema, tempDir, testDatabase } from "./helpers.js";

const brokenMigrationsDir = join(fixturesDir, "migrations-broken");

/** sha256 of the database file and of its WAL ("absent" when there is none): what "untouched" means. */
function fingerprint(path: string): { db: string; wal: string } {
  const hash = (file: string) =>
    existsSync(file) ? createHash("sha256").update(readFileSync(file)).digest("hex") : "absent";
  return { db: hash(path), wal: hash(`${path}-wal`) };
}

async function seed(db: Database<TestSchema>, withReview: boolean): Promise<void> {
  await db.write(async (tx) => {
    await tx.run(sql`INSERT INTO authors (id, name) VALUES (1, 'Ursula'), (2, 'Stanisław')`);
    await tx.run(sql`INSERT INTO books (id, author_id, title, price_cents) VALUES (10, 1, 'Lathe', 1200)`);
    await tx.run(sql`INSERT INTO books (id, author_id, title, price_cents) VALUES (11, 2, 'Solaris', 0)`);
    if (withReview) await tx.run(sql`INSERT INTO reviews (id, book_id, rating) VALUES (100, 10, 5)`);
  });
}

describe("checkMigrations (dry run on a VACUUM INTO copy)", () => {
  it("checks an encrypted database on a copy encrypted with the same key", async () => {
    const encryptionKey = "migration-check-key-0123456789abcdef";
    const path = join(tempDir(), "encrypted.db");
    const db = await createDatabase({ url: `file:${path}`, encryptionKey });
    try {
      const migrator = createMigrator(db, { migrationsFolder: migrationsDir });
      await migrator.up();
      await migrator.down(2);
      await seed(db as unknown as Database<TestSchema>, false);
      const before = fingerprint(path);
      const report = await checkMigrations(db, { migrationsFolder: migrationsDir, encryptionKey });
      expect(report).toEqual({
        safe: true,
        pending: ["0002_reviews_and_pages", "0003_authors_name_length"],
        problems: [],
      });
      expect(fingerprint(path)).toEqual(before);
      // without the key the copy cannot be opened, and the check says so instead of passing
      const keyless = await checkMigrations(db, { migrationsFolder: migrationsDir });
      expect(keyless.safe).toBe(false);
    } finally {
      await db.close();
    }
  });

  itWith(
    "vacuumInto",
    "applies the pending migrations to a copy, reports them safe, and leaves the live file byte-identical",
    async () => {
      const { db, path } = await testDatabase();
      const migrator = createMigrator(db, { migrationsFolder: migrationsDir });
      expect(await migrator.down(2)).toEqual(["0003_authors_name_length", "0002_reviews_and_pages"]);
      await seed(db, false);
      const scratch = tempDir();

      const before = fingerprint(path);
      expect(before.wal).not.toBe("absent"); // the live database is in WAL mode with uncheckpointed pages
      const report = await checkMigrations(db, {
        migrationsFolder: migrationsDir,
        invariants: [
          { name: "every book has an author", sql: "SELECT id FROM books WHERE author_id IS NULL" },
        ],
        tempDir: scratch,
      });

      expect(report).toEqual({
        safe: true,
        pending: ["0002_reviews_and_pages", "0003_authors_name_length"],
        problems: [],
      });
      expect(fingerprint(path)).toEqual(before);
      expect(readdirSync(scratch)).toEqual([]); // the copy is deleted
      expect((await migrator.status()).map((s) => s.state)).toEqual([
        "applied",
        "applied",
        "pending",
        "pending",
      ]);
    },
  );

  itWith(
    "vacuumInto",
    "reports a migration that orphans rows of real data as unsafe, naming it; the live database is untouched",
    async () => {
      const { db, path } = await testDatabase();
      await seed(db, true);
      const before = fingerprint(path);

      const report = await checkMigrations(db, { migrationsFolder: brokenMigrationsDir });

      expect(report.safe).toBe(false);
      expect(report.pending).toEqual(["0004_renumber_reviews"]);
      expect(report.problems).toHaveLength(1);
      expect(report.problems[0]).toMatch(
        /^migrate up failed at 0004_renumber_reviews: foreign key check failed/,
      );
      expect(fingerprint(path)).toEqual(before);
      const live = createMigrator(db, { migrationsFolder: brokenMigrationsDir });
      expect((await live.status()).at(-1)).toEqual({
        idx: 4,
        tag: "0004_renumber_reviews",
        state: "pending",
      });
      expect(await db.read((tx) => tx.all(sql`SELECT id, book_id FROM reviews`))).toEqual([
        { id: 100, book_id: 10 },
      ]);
    },
  );

  itWith(
    "vacuumInto",
    "the same broken migration passes on an empty database: only a copy of the real data shows the mistake",
    async () => {
      const { db } = await testDatabase();
      const report = await checkMigrations(db, { migrationsFolder: brokenMigrationsDir });
      expect(report).toEqual({ safe: true, pending: ["0004_renumber_reviews"], problems: [] });
    },
  );

  itWith(
    "vacuumInto",
    "reports violated invariants by name (also with nothing pending), and invariants that cannot run",
    async () => {
      const { db, path } = await testDatabase();
      await seed(db, false);
      const before = fingerprint(path);

      const report = await checkMigrations(db, {
        migrationsFolder: migrationsDir,
        invariants: [
          { name: "books are not free", sql: "SELECT id, title FROM books WHERE price_cents = 0" },
          {
            name: "every author has a book",
            sql: "SELECT a.id FROM authors a WHERE NOT EXISTS (SELECT 1 FROM books b WHERE b.author_id = a.id)",
          },
          { name: "refers to a missing table", sql: "SELECT * FROM no_such_table" },
        ],
      });

      expect(report.safe).toBe(false);
      expect(report.pending).toEqual([]);
      expect(report.problems).toEqual([
        'invariant "books are not free" violated by 1 row(s): {"id":11,"title":"Solaris"}',
        expect.stringMatching(/^invariant "refers to a missing table" could not run: .*no such table/),
      ]);
      expect(fingerprint(path)).toEqual(before);
    },
  );

  itWith(
    "vacuumInto",
    "reports a down migration that does not run when the pending migrations are reverted on the copy",
    async () => {
      const { db } = await testDatabase({ migrated: false });
      const folder = join(tempDir(), "migrations");
      cpSync(migrationsDir, folder, { recursive: true });
      writeFileSync(join(folder, "0003_authors_name_length.down.sql"), "DROP TABLE no_such_table;");

      const report = await checkMigrations(db, { migrationsFolder: folder });
      expect(report.safe).toBe(false);
      expect(report.pending).toHaveLength(4);
      expect(report.problems).toEqual([
        expect.stringMatching(/^reverting the pending migrations \(down 4\).*no such table/),
      ]);
      // and the live database still has no tables at all
      expect(await db.read((tx) => tx.all(sql`SELECT name FROM sqlite_master`))).toEqual([]);
    },
  );

  it("inPlace migrates and checks the database itself (for a disposable Turso branch)", async () => {
    const { db } = await testDatabase();
    await seed(db, true);
    const branch = await checkMigrations(db, { migrationsFolder: brokenMigrationsDir, inPlace: true });
    expect(branch).toMatchObject({ safe: false, pending: ["0004_renumber_reviews"] });
    const fresh = await testDatabase({ migrated: false });
    const report = await checkMigrations(fresh.db, { migrationsFolder: migrationsDir, inPlace: true });
    expect(report).toEqual({ safe: true, pending: expect.arrayContaining(["0000_init"]), problems: [] });
    expect(
      (await createMigrator(fresh.db, { migrationsFolder: migrationsDir }).status()).map((s) => s.state),
    ).toEqual(["applied", "applied", "applied", "applied"]);
  });

  it("refuses a remote database and points to Turso branches", async () => {
    const remote = await createDatabase({ url: "http://127.0.0.1:9" }); // no connection is made
    try {
      const failure = await checkMigrations(remote, { migrationsFolder: migrationsDir }).catch(
        (e: unknown) => e,
      );
      expect(failure).toBeInstanceOf(MigrationError);
      expect(failure).toMatchObject({ code: "MIGRATION_CHECK_UNSUPPORTED" });
      expect((failure as Error).message).toContain(
        "turso db create <name>-migration-check --from-db <name>), run `migrate check --in-place`",
      );
    } finally {
      await remote.close();
    }
  });
});
