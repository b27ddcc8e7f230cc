import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { expect, it } from "vitest";
import {
  type CheckableDatabase,
  ConstraintViolationError,
  checkMigrations,
  createMigrator,
  type Database,
  MigrationError,
} from "../src/index.js";
import { describeEngines, engineDatabase } from "./engines.js";
import { authors, books } from "./fixtures/schema.js";
import { migrationsDir, type TestSchema, tempDir } from "./helpers.js";

/** The fixture migrations plus one more, `0004_<name>`, with the given up and down SQL. */
function migrationsWith(name: string, upSql: string, downSql = "SELECT 1;"): string {
  const folder = join(tempDir(), "migrations");
  cpSync(migrationsDir, folder, { recursive: true });
  const journalPath = join(folder, "meta", "_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8")) as { entries: Record<string, unknown>[] };
  journal.entries.push({ idx: 4, version: "6", when: 0, tag: `0004_${name}`, breakpoints: true });
  writeFileSync(journalPath, JSON.stringify(journal));
  writeFileSync(join(folder, `0004_${name}.sql`), upSql);
  writeFileSync(join(folder, `0004_${name}.down.sql`), downSql);
  return folder;
}

async function seed(db: Database<TestSchema>): Promise<void> {
  await db.write(async (tx) => {
    await tx.insert(authors).values([
      { id: 1, name: "Ursula" },
      { id: 2, name: "Stanisław" },
    ]);
    await tx.insert(books).values([
      { id: 10, authorId: 1, title: "The Dispossessed" },
      { id: 11, authorId: 2, title: "Solaris" },
    ]);
    await tx.run(sql`INSERT INTO reviews (id, book_id, rating) VALUES (100, 10, 5)`);
  });
}

const contents = (db: Database<TestSchema>) =>
  db.read(async (tx) => ({
    authors: await tx.all(sql`SELECT id FROM authors ORDER BY id`),
    books: await tx.all(sql`SELECT id, author_id FROM books ORDER BY id`),
    reviews: await tx.all(sql`SELECT id, book_id FROM reviews ORDER BY id`),
  }));

const seeded = {
  authors: [{ id: 1 }, { id: 2 }],
  books: [
    { id: 10, author_id: 1 },
    { id: 11, author_id: 2 },
  ],
  reviews: [{ id: 100, book_id: 10 }],
};

describeEngines("migrations", (engine) => {
  it("rebuilding a parent table (down, then up of 0003_authors_name_length) keeps its children's rows", async () => {
    const { db } = await engineDatabase(engine);
    await seed(db);
    const migrator = createMigrator(db, { migrationsFolder: migrationsDir });

    expect(await migrator.down(1)).toEqual(["0003_authors_name_length"]);
    expect(await contents(db)).toEqual(seeded);
    expect(await migrator.up()).toEqual(["0003_authors_name_length"]);
    expect(await contents(db)).toEqual(seeded);
    expect(await db.read((tx) => tx.all(sql`PRAGMA foreign_key_check`))).toEqual([]);

    // enforcement is back on for ordinary writes, cascades included (how a replica's error is classified is
    // another matter: it arrives without SQLite's code)
    await expect(
      db.write(async (tx) => tx.insert(books).values({ authorId: 999, title: "orphan" })),
    ).rejects.toThrow();
    expect((await contents(db)).books).toEqual(seeded.books);
    await db.write(async (tx) => tx.run(sql`DELETE FROM authors WHERE id = 2`));
    expect((await contents(db)).books).toEqual([{ id: 10, author_id: 1 }]);
  });

  it("a migration deleting parent rows is refused by the foreign-key check instead of cascading", async () => {
    const folder = migrationsWith("delete_author", "DELETE FROM authors WHERE id = 1;");
    const { db } = await engineDatabase(engine);
    await seed(db);

    const failure = await createMigrator(db, { migrationsFolder: folder })
      .up()
      .catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ConstraintViolationError);
    expect(failure).toMatchObject({ kind: "foreign_key" });
    expect(await contents(db)).toEqual(seeded);
    const applied = await db.read((tx) => tx.all(sql`SELECT count(*) AS n FROM schema_migrations`));
    expect(applied).toEqual([{ n: 4 }]);
  });

  it("the migration check (in place, as on a branch) reports such a migration unsafe, naming it", async () => {
    const folder = migrationsWith("delete_author", "DELETE FROM authors WHERE id = 1;");
    const { db } = await engineDatabase(engine);
    await seed(db);

    const report = await checkMigrations(db, { migrationsFolder: folder, inPlace: true });
    expect(report.safe).toBe(false);
    expect(report.pending).toEqual(["0004_delete_author"]);
    expect(report.problems[0]).toMatch(/^migrate up failed at 0004_delete_author: foreign key check failed/);
    expect(await contents(db)).toEqual(seeded);
  });
});

/**
 * `db` as an engine that cannot switch foreign keys off for a migration would be: its write units ignore
 * `foreignKeys: "check-at-commit"` and run with enforcement on.
 */
function withForeignKeysOn(db: Database<TestSchema>): CheckableDatabase {
  return {
    mode: db.mode,
    read: (fn, options) => db.read(fn, options),
    write: (fn, options) => db.write(fn, { ...options, foreignKeys: "immediate" }),
    exclusive: (fn, options) => db.exclusive(fn, options),
  };
}

describeEngines("where foreign keys stayed on during a migration", (engine) => {
  it("a rebuild of a referenced table is refused before it runs, naming the migration and the table", async () => {
    const { db } = await engineDatabase(engine);
    await seed(db);
    const migrator = createMigrator(withForeignKeysOn(db), { migrationsFolder: migrationsDir });

    const failure = await migrator.down(1).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(MigrationError);
    expect(failure).toMatchObject({ code: "MIGRATION_UNSAFE_ON_ENGINE", tag: "0003_authors_name_length" });
    expect(String((failure as Error).message)).toMatch(/drops table authors, which books reference/);
    expect(await contents(db)).toEqual(seeded);
    expect((await migrator.status()).map((m) => m.state)).toEqual([
      "applied",
      "applied",
      "applied",
      "applied",
    ]);
  });

  it("dropping a table that nothing references still runs", async () => {
    const folder = migrationsWith("drop_reviews", "DROP TABLE `reviews`;");
    const { db } = await engineDatabase(engine);
    await seed(db);
    const migrator = createMigrator(withForeignKeysOn(db), { migrationsFolder: folder });
    expect(await migrator.up()).toEqual(["0004_drop_reviews"]);
    const left = await db.read((tx) => tx.all(sql`SELECT name FROM sqlite_master WHERE name = 'reviews'`));
    expect(left).toEqual([]);
    expect(await db.read((tx) => tx.all(sql`SELECT id FROM books ORDER BY id`))).toEqual([
      { id: 10 },
      { id: 11 },
    ]);
  });

  it("the migration check reports such a rebuild unsafe", async () => {
    const folder = migrationsWith(
      "rebuild_books",
      [
        "CREATE TABLE `__new_books` (`id` integer PRIMARY KEY NOT NULL, `author_id` integer NOT NULL REFERENCES `authors`(`id`) ON DELETE cascade, `title` text NOT NULL, `isbn` text, `price_cents` integer DEFAULT 0 NOT NULL, `pages` integer);",
        "INSERT INTO `__new_books` SELECT `id`, `author_id`, `title`, `isbn`, `price_cents`, `pages` FROM `books`;",
        "DROP TABLE `books`;",
        "ALTER TABLE `__new_books` RENAME TO `books`;",
      ].join("\n--> statement-breakpoint\n"),
    );
    const { db } = await engineDatabase(engine);
    await seed(db);

    const report = await checkMigrations(withForeignKeysOn(db), { migrationsFolder: folder, inPlace: true });
    expect(report.safe).toBe(false);
    expect(report.problems[0]).toMatch(
      /^migrate up failed at 0004_rebuild_books: migration 0004_rebuild_books drops table books, which reviews reference/,
    );
    expect(await contents(db)).toEqual(seeded);
  });
});
