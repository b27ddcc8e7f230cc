import { appendFileSync, cpSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import {
  appendAudit,
  ConstraintViolationError,
  createMigrator,
  type Database,
  MigrationError,
  readMigrationsFolder,
  verifyAuditChain,
} from "../src/index.js";
import { authors, books } from "./fixtures/schema.js";
import { migrationsDir, type TestSchema, tempDir, testDatabase } from "./helpers.js";

const ALL = ["0000_init", "0001_audit_triggers", "0002_reviews_and_pages", "0003_authors_name_length"];

async function schemaObjects(db: Database<TestSchema>) {
  return db.read(async (tx) => {
    const objects = await tx.all<{ type: string; name: string }>(
      sql`SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY type, name`,
    );
    const bookColumns = await tx.all<{ name: string }>(sql`SELECT name FROM pragma_table_info('books')`);
    const authorsSql = await tx.all<{ sql: string }>(
      sql`SELECT sql FROM sqlite_master WHERE name = 'authors'`,
    );
    return {
      names: objects.map((o) => `${o.type}:${o.name}`),
      bookColumns: bookColumns.map((c) => c.name),
      authorsSql: authorsSql[0]?.sql ?? "",
    };
  });
}

/** A copy of the fixture migrations that a test may edit. */
function copyOfMigrations(): string {
  const folder = join(tempDir(), "migrations");
  cpSync(migrationsDir, folder, { recursive: true });
  return folder;
}

describe("migrations", () => {
  it("reads drizzle-kit's journal and the down files", () => {
    const local = readMigrationsFolder(migrationsDir);
    expect(local.map((m) => m.tag)).toEqual(ALL);
    expect(local.every((m) => m.downSql !== undefined && m.hash.length === 64)).toBe(true);
  });

  it("up -> rows -> down -> up keeps the data of untouched tables and really removes/restores the rest", async () => {
    const { db } = await testDatabase({ migrated: false });
    const migrator = createMigrator(db, { migrationsFolder: migrationsDir });
    expect((await migrator.status()).map((s) => s.state)).toEqual([
      "pending",
      "pending",
      "pending",
      "pending",
    ]);

    expect(await migrator.up()).toEqual(ALL);
    expect(await migrator.up()).toEqual([]); // idempotent
    expect((await migrator.status()).map((s) => s.state)).toEqual([
      "applied",
      "applied",
      "applied",
      "applied",
    ]);
    const full = await schemaObjects(db);
    expect(full.names).toEqual(
      expect.arrayContaining(["table:reviews", "index:books_title_idx", "trigger:audit_log_no_delete"]),
    );
    expect(full.bookColumns).toContain("pages");
    expect(full.authorsSql).toContain("authors_name_length");

    await db.write(async (tx) => {
      await tx.insert(authors).values([
        { id: 1, name: "Ursula" },
        { id: 2, name: "Stanisław" },
      ]);
      await tx.insert(books).values([
        { id: 10, authorId: 1, title: "The Dispossessed", pages: 387 },
        { id: 11, authorId: 2, title: "Solaris", pages: 204 },
      ]);
      await tx.run(sql`INSERT INTO reviews (book_id, rating) VALUES (10, 5)`);
      await appendAudit(tx, { actor: "t", action: "create", resourceType: "book", resourceId: "10" });
    });

    // down 2: drops reviews, books.pages, books_title_idx, and rebuilds authors (parent of books, with
    // ON DELETE CASCADE) with its old CHECK — which must not cascade into books
    expect(await migrator.down(2)).toEqual(["0003_authors_name_length", "0002_reviews_and_pages"]);
    const reduced = await schemaObjects(db);
    expect(reduced.names).not.toContain("table:reviews");
    expect(reduced.names).not.toContain("index:books_title_idx");
    expect(reduced.bookColumns).not.toContain("pages");
    expect(reduced.authorsSql).toContain("authors_name_not_empty");
    expect((await migrator.status()).map((s) => s.state)).toEqual([
      "applied",
      "applied",
      "pending",
      "pending",
    ]);

    const kept = await db.read(async (tx) => ({
      authors: await tx.all(sql`SELECT id, name FROM authors ORDER BY id`),
      books: await tx.all(sql`SELECT id, author_id, title FROM books ORDER BY id`),
      fk: await tx.all(sql`PRAGMA foreign_key_check`),
    }));
    expect(kept).toEqual({
      authors: [
        { id: 1, name: "Ursula" },
        { id: 2, name: "Stanisław" },
      ],
      books: [
        { id: 10, author_id: 1, title: "The Dispossessed" },
        { id: 11, author_id: 2, title: "Solaris" },
      ],
      fk: [],
    });

    expect(await migrator.up()).toEqual(["0002_reviews_and_pages", "0003_authors_name_length"]);
    const restored = await schemaObjects(db);
    expect(restored).toEqual(full);
    const again = await db.read(async (tx) => ({
      books: await tx.select({ id: books.id, pages: books.pages }).from(books),
      reviews: await tx.all(sql`SELECT count(*) AS n FROM reviews`),
    }));
    expect(again).toEqual({
      books: [
        { id: 10, pages: null },
        { id: 11, pages: null },
      ],
      reviews: [{ n: 0 }],
    });
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true, count: 1 });
    // the rebuilt authors table enforces its new CHECK
    await expect(
      db.write(async (tx) => tx.insert(authors).values({ name: "x".repeat(101) })),
    ).rejects.toMatchObject({ kind: "check" });
  });

  it("down all the way leaves only the bookkeeping table, and down on an empty database does nothing", async () => {
    const { db } = await testDatabase({ migrated: false });
    const migrator = createMigrator(db, { migrationsFolder: migrationsDir });
    expect(await migrator.down()).toEqual([]);
    await migrator.up();
    expect(await migrator.down(10)).toEqual([...ALL].reverse());
    expect((await schemaObjects(db)).names).toEqual(["table:schema_migrations"]);
  });

  it("refuses to run when an applied migration was changed", async () => {
    const folder = copyOfMigrations();
    const { db } = await testDatabase({ migrated: false });
    await createMigrator(db, { migrationsFolder: folder }).up();
    appendFileSync(join(folder, "0002_reviews_and_pages.sql"), "\n-- an innocent-looking edit\n");
    const migrator = createMigrator(db, { migrationsFolder: folder });
    await expect(migrator.up()).rejects.toMatchObject({
      code: "MIGRATION_CHANGED",
      tag: "0002_reviews_and_pages",
    });
    expect((await migrator.status()).find((s) => s.tag === "0002_reviews_and_pages")?.state).toBe("changed");
  });

  it("refuses a pending migration without a down file, before applying anything", async () => {
    const folder = copyOfMigrations();
    rmSync(join(folder, "0003_authors_name_length.down.sql"));
    const { db } = await testDatabase({ migrated: false });
    const migrator = createMigrator(db, { migrationsFolder: folder });
    const failure = await migrator.up().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(MigrationError);
    expect(failure).toMatchObject({ code: "MIGRATION_DOWN_MISSING" });
    expect((await migrator.status()).every((s) => s.state === "pending")).toBe(true);
  });

  it("refuses a database with migrations this folder does not know", async () => {
    const { db } = await testDatabase(); // all four applied
    const folder = copyOfMigrations();
    const journalPath = join(folder, "meta", "_journal.json");
    const journal = JSON.parse(readFileSync(journalPath, "utf8")) as { entries: unknown[] };
    journal.entries = journal.entries.slice(0, 2);
    writeFileSync(journalPath, JSON.stringify(journal));
    await expect(createMigrator(db, { migrationsFolder: folder }).up()).rejects.toMatchObject({
      code: "MIGRATION_UNKNOWN",
    });
  });

  it("rolls back a migration that leaves dangling foreign keys (checked before commit)", async () => {
    const folder = copyOfMigrations();
    const journalPath = join(folder, "meta", "_journal.json");
    const journal = JSON.parse(readFileSync(journalPath, "utf8")) as { entries: Record<string, unknown>[] };
    journal.entries.push({ idx: 4, version: "6", when: 0, tag: "0004_bad", breakpoints: true });
    writeFileSync(journalPath, JSON.stringify(journal));
    // with enforcement off during migrations this DELETE neither fails nor cascades: the check must catch it
    writeFileSync(join(folder, "0004_bad.sql"), "DELETE FROM authors WHERE id = 1;");
    writeFileSync(join(folder, "0004_bad.down.sql"), "SELECT 1;");

    const { db } = await testDatabase();
    await db.write(async (tx) => {
      await tx.insert(authors).values({ id: 1, name: "a" });
      await tx.insert(books).values({ authorId: 1, title: "b" });
    });
    const failure = await createMigrator(db, { migrationsFolder: folder })
      .up()
      .catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ConstraintViolationError);
    expect(failure).toMatchObject({ kind: "foreign_key" });
    const state = await db.read(async (tx) => ({
      authors: await tx.all(sql`SELECT count(*) AS n FROM authors`),
      applied: await tx.all(sql`SELECT count(*) AS n FROM schema_migrations`),
    }));
    expect(state).toEqual({ authors: [{ n: 1 }], applied: [{ n: 4 }] });
    // and foreign keys are enforced again afterwards
    await expect(
      db.write(async (tx) => tx.insert(books).values({ authorId: 999, title: "orphan" })),
    ).rejects.toMatchObject({ kind: "foreign_key" });
  });
});
