import { asc, sql } from "drizzle-orm";
import { integer, sqliteTable, text } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import { ConstraintViolationError, classifyDatabaseError, insertRows } from "../src/index.js";
import { authors, books } from "./fixtures/schema.js";
import { testDatabase } from "./helpers.js";

describe("insertRows", () => {
  it("writes exactly what drizzle's insert writes, in chunks, inside the unit of work", async () => {
    const { db } = await testDatabase();
    await db.write((tx) => tx.insert(authors).values({ id: 1, name: "a" }));
    const rows = Array.from({ length: 23 }, (_, i) => ({
      id: i + 1,
      authorId: 1,
      title: `t'"${i}`,
      isbn: i % 2 === 0 ? null : `isbn-${i}`,
      pages: i,
    }));
    // rows without `pages` (NULL) and without `priceCents` (its SQL default)
    const withoutPages = rows.filter((r) => r.id % 3 === 0).map(({ pages: _, ...rest }) => rest);
    const withPages = rows.filter((r) => r.id % 3 !== 0);
    // reference: drizzle's own insert into a second database
    const { db: reference } = await testDatabase();
    await reference.write(async (tx) => {
      await tx.insert(authors).values({ id: 1, name: "a" });
      await tx.insert(books).values([...withPages, ...withoutPages]);
    });
    await db.write(async (tx) => {
      await insertRows(tx, books, withPages, 5);
      await insertRows(tx, books, withoutPages, 5);
    });
    const read = (d: typeof db) => d.read((tx) => tx.select().from(books).orderBy(asc(books.id)));
    expect(await read(db)).toEqual(await read(reference));
    expect((await read(db)).find((b) => b.id === 1)?.priceCents).toBe(0); // SQL default
  });

  it("fails as a whole with the usual constraint error, and the unit writes nothing", async () => {
    const { db } = await testDatabase();
    await db.write((tx) => tx.insert(authors).values({ id: 1, name: "a" }));
    const attempt = db.write(async (tx) => {
      await insertRows(tx, books, [
        { id: 1, authorId: 1, title: "ok", priceCents: 5 },
        { id: 2, authorId: 1, title: "bad", priceCents: -5 },
      ]);
    });
    const err = await attempt.catch((e: unknown) => e);
    expect(classifyDatabaseError(err)).toBeInstanceOf(ConstraintViolationError);
    const count = await db.read((tx) => tx.all<{ n: number }>(sql`SELECT count(*) AS n FROM books`));
    expect(count[0]?.n).toBe(0);
  });

  it("fills $defaultFn columns, refuses rows with different columns, and falls back outside a unit", async () => {
    const { db } = await testDatabase({ migrated: false });
    const notes = sqliteTable("notes", {
      id: integer("id").primaryKey(),
      body: text("body").notNull(),
      tag: text("tag").$defaultFn(() => "generated"),
    });
    await db.write((tx) =>
      tx.run(sql`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL, tag TEXT)`),
    );
    await db.write((tx) =>
      insertRows(
        tx,
        notes,
        [
          { id: 1, body: "x" },
          { id: 2, body: "y", tag: "given" },
        ].slice(0, 1),
      ),
    );
    await expect(
      db.write((tx) =>
        insertRows(tx, notes, [
          { id: 3, body: "x" },
          { id: 4, body: "y", tag: "given" },
        ]),
      ),
    ).rejects.toThrow(/same columns/);
    await insertRows(db.drizzle(), notes, [{ id: 5, body: "outside" }]);
    const all = await db.read((tx) => tx.select().from(notes).orderBy(asc(notes.id)));
    expect(all).toEqual([
      { id: 1, body: "x", tag: "generated" },
      { id: 5, body: "outside", tag: "generated" },
    ]);
  });
});
