import { and, asc, eq, type Placeholder, sql } from "drizzle-orm";
import type { LibSQLDatabase } from "drizzle-orm/libsql";
import {
  blob,
  customType,
  integer,
  real,
  SQLiteAsyncDialect,
  sqliteTable,
  text,
} from "drizzle-orm/sqlite-core";
import { afterEach, describe, expect, it, vi } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import { classifyDatabaseError, type Database, preparedQuery, type Tx } from "../src/index.js";
import { pollUntil, testDatabase } from "./helpers.js";

/** A column type of our own: epoch ms in the database, a Date in the row. */
const moment = customType<{ data: Date; driverData: number }>({
  dataType: () => "integer",
  toDriver: (value) => value.getTime(),
  fromDriver: (value) => new Date(value),
});

const things = sqliteTable("things", {
  id: integer("id").primaryKey(),
  ownerId: text("owner_id").notNull(),
  meta: text("meta", { mode: "json" }).$type<{ a: number; b?: string[] }>(),
  flag: integer("flag", { mode: "boolean" }).notNull(),
  payload: blob("payload", { mode: "buffer" }),
  doc: blob("doc", { mode: "json" }).$type<{ k: string }>(),
  at: moment("at"),
  score: real("score"),
});

const parts = sqliteTable("parts", {
  id: integer("id").primaryKey(),
  thingId: integer("thing_id").notNull(),
  name: text("name").notNull(),
});

const DDL = [
  `CREATE TABLE things (id INTEGER PRIMARY KEY, owner_id TEXT NOT NULL, meta TEXT, flag INTEGER NOT NULL,
     payload BLOB, doc BLOB, at INTEGER, score REAL)`,
  "CREATE TABLE parts (id INTEGER PRIMARY KEY, thing_id INTEGER NOT NULL, name TEXT NOT NULL)",
];

// biome-ignore lint/suspicious/noExplicitAny: any schema; only the query builder is used
type Queryable = Tx<any> | LibSQLDatabase<any>;
type Bind<T> = T | Placeholder;

/**
 * One query shape, built with values (the reference: drizzle's query builder) or with placeholders (for
 * preparedQuery): a whole table, a nested selection from a LEFT JOIN (null when nothing joins), `.mapWith`
 * and a scalar subselect.
 */
function thingsWithPart(db: Queryable, ownerId: Bind<string>, part: Bind<string>) {
  return db
    .select({
      thing: things,
      part: { id: parts.id, name: parts.name },
      partCount: sql<number>`(SELECT count(*) FROM parts p WHERE p.thing_id = ${things.id})`.mapWith(Number),
      names: sql<
        string[]
      >`(SELECT json_group_array(name) FROM parts p WHERE p.thing_id = ${things.id})`.mapWith(
        (json: string) => JSON.parse(json) as string[],
      ),
    })
    .from(things)
    .leftJoin(parts, and(eq(parts.thingId, things.id), eq(parts.name, part)))
    .where(eq(things.ownerId, ownerId))
    .orderBy(asc(things.id));
}

function thingById(db: Queryable, id: Bind<number>) {
  return db.select().from(things).where(eq(things.id, id));
}

async function seeded(): Promise<Database<Record<string, never>>> {
  const { db } = await testDatabase({ migrated: false });
  await db.write(async (tx) => {
    for (const statement of DDL) await tx.run(sql.raw(statement));
    await tx.insert(things).values([
      {
        id: 1,
        ownerId: "alice",
        meta: { a: 1, b: ["x", "y"] },
        flag: true,
        payload: Buffer.from([0, 1, 2, 255]),
        doc: { k: "v" },
        at: new Date(1_700_000_000_123),
        score: 0.25,
      },
      { id: 2, ownerId: "alice", meta: null, flag: false, payload: null, doc: null, at: null, score: null },
      { id: 3, ownerId: "bob", meta: { a: 3 }, flag: true, payload: Buffer.alloc(0), at: new Date(0) },
    ]);
    await tx.insert(parts).values([
      { id: 10, thingId: 1, name: "wheel" },
      { id: 11, thingId: 1, name: "door" },
      { id: 12, thingId: 3, name: "wheel" },
    ]);
  });
  return db as unknown as Database<Record<string, never>>;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("preparedQuery", () => {
  it("returns exactly what drizzle's query builder returns (json, boolean, blobs, custom types, joins, nulls)", async () => {
    const db = await seeded();
    const view = preparedQuery((d: Queryable) =>
      thingsWithPart(d, sql.placeholder("ownerId"), sql.placeholder("part")),
    );
    const one = preparedQuery((d: Queryable) => thingById(d, sql.placeholder("id")));
    await db.read(async (tx) => {
      for (const [ownerId, part] of [
        ["alice", "wheel"],
        ["alice", "none"],
        ["bob", "wheel"],
        ["nobody", "wheel"],
      ] as const) {
        const expected = await thingsWithPart(tx, ownerId, part);
        expect(await view.with(tx, { ownerId, part }).all()).toEqual(expected);
        expect(await view.with(tx, { ownerId, part })).toEqual(expected);
        expect(await view.with(tx, { ownerId, part }).get()).toEqual(
          await thingsWithPart(tx, ownerId, part).get(),
        );
      }
      for (const id of [1, 2, 3, 4]) {
        expect(await one.with(tx, { id }).get()).toEqual(await thingById(tx, id).get());
      }
    });
    const [first, second] = await db.read((tx) => view.with(tx, { ownerId: "alice", part: "wheel" }).all());
    // spelled out, so a mapping that merely agreed with a broken reference would still fail
    expect(first).toEqual({
      thing: {
        id: 1,
        ownerId: "alice",
        meta: { a: 1, b: ["x", "y"] },
        flag: true,
        payload: Buffer.from([0, 1, 2, 255]),
        doc: { k: "v" },
        at: new Date(1_700_000_000_123),
        score: 0.25,
      },
      part: { id: 10, name: "wheel" },
      partCount: 2,
      names: ["wheel", "door"],
    });
    expect(Buffer.isBuffer(first?.thing.payload)).toBe(true);
    expect(second).toEqual({
      thing: {
        id: 2,
        ownerId: "alice",
        meta: null,
        flag: false,
        payload: null,
        doc: null,
        at: null,
        score: null,
      },
      part: null,
      partCount: 0,
      names: [],
    });
    expect(await db.read((tx) => one.with(tx, { id: 99 }).get())).toBeUndefined();
    expect(await db.read((tx) => view.with(tx, { ownerId: "nobody", part: "x" }).all())).toEqual([]);
  });

  it("outside a unit of work is drizzle's query on the given handle; toSQL shows the statement with its values", async () => {
    const db = await seeded();
    const d = db.drizzle();
    const view = preparedQuery((q: Queryable) =>
      thingsWithPart(q, sql.placeholder("ownerId"), sql.placeholder("part")),
    );
    expect(await view.with(d, { ownerId: "alice", part: "door" })).toEqual(
      await thingsWithPart(d, "alice", "door"),
    );
    expect(await view.with(d, { ownerId: "alice", part: "door" }).get()).toEqual(
      await thingsWithPart(d, "alice", "door").get(),
    );
    // the same text and bound values as the builder with values (before and after the first unit)
    expect(view.with(d, { ownerId: "bob", part: "wheel" }).toSQL()).toEqual(
      thingsWithPart(d, "bob", "wheel").toSQL(),
    );
    await db.read((tx) => view.with(tx, { ownerId: "bob", part: "wheel" }).all());
    expect(view.with(d, { ownerId: "bob", part: "wheel" }).toSQL()).toEqual(
      thingsWithPart(d, "bob", "wheel").toSQL(),
    );
  });

  it("runs on the unit's own transaction: it sees the unit's uncommitted writes", async () => {
    const db = await seeded();
    const one = preparedQuery((d: Queryable) => thingById(d, sql.placeholder("id")));
    const executed: string[] = [];
    const seenInside = await db.write(async (tx, { transaction }) => {
      const execute = transaction.execute.bind(transaction);
      vi.spyOn(transaction, "execute").mockImplementation((stmt) => {
        executed.push(typeof stmt === "string" ? stmt : stmt.sql);
        return execute(stmt);
      });
      await tx.insert(things).values({ id: 50, ownerId: "carol", flag: true, meta: { a: 50 } });
      executed.length = 0;
      return one.with(tx, { id: 50 }).get();
    });
    expect(seenInside).toEqual({
      id: 50,
      ownerId: "carol",
      meta: { a: 50 },
      flag: true,
      payload: null,
      doc: null,
      at: null,
      score: null,
    });
    expect(executed).toEqual([thingById(db.drizzle(), 50).toSQL().sql]);

    // a write that rolls back: seen inside, gone after
    const rolledBack = db.write(async (tx) => {
      await tx.insert(things).values({ id: 51, ownerId: "carol", flag: false });
      expect(await one.with(tx, { id: 51 }).get()).toMatchObject({ id: 51, flag: false });
      throw new Error("undo");
    });
    await expect(rolledBack).rejects.toThrow("undo");
    expect(await db.read((tx) => one.with(tx, { id: 51 }).get())).toBeUndefined();
  });

  it("keeps concurrent units' values apart", async () => {
    const db = await seeded();
    await db.write((tx) =>
      tx.insert(things).values(
        Array.from({ length: 40 }, (_, i) => ({
          id: 100 + i,
          ownerId: `owner-${i % 8}`,
          flag: i % 2 === 0,
        })),
      ),
    );
    const one = preparedQuery((d: Queryable) => thingById(d, sql.placeholder("id")));
    const view = preparedQuery((d: Queryable) =>
      thingsWithPart(d, sql.placeholder("ownerId"), sql.placeholder("part")),
    );
    const units = 8;
    let inside = 0;
    const results = await Promise.all(
      Array.from({ length: units }, (_, u) =>
        db.read(async (tx) => {
          inside++;
          // every unit holds its transaction before any query runs (>=: on a remote engine a read that turns
          // out to run several statements runs its function again, as an interactive transaction)
          await pollUntil(() => inside >= units);
          const seen: number[] = [];
          for (let round = 0; round < 5; round++) {
            const [row, rows] = await Promise.all([
              one.with(tx, { id: 100 + u + 8 * round }).get(),
              view.with(tx, { ownerId: `owner-${u}`, part: "none" }).all(),
            ]);
            seen.push(row?.id ?? -1);
            expect(rows.map((r) => r.thing.ownerId)).toEqual(Array(5).fill(`owner-${u}`));
          }
          return seen;
        }),
      ),
    );
    expect(results).toEqual(
      Array.from({ length: units }, (_, u) => [0, 1, 2, 3, 4].map((r) => 100 + u + 8 * r)),
    );
  });

  it("builds the SQL once, on the first call inside a unit of work, and never again", async () => {
    const db = await seeded();
    const other = await seeded();
    let builds = 0;
    const view = preparedQuery((d: Queryable) => {
      builds++;
      return thingsWithPart(d, sql.placeholder("ownerId"), sql.placeholder("part"));
    });
    const rendered = vi.spyOn(SQLiteAsyncDialect.prototype, "sqlToQuery");
    for (let i = 0; i < 20; i++) {
      for (const database of [db, other]) {
        await database.read((tx) => view.with(tx, { ownerId: "alice", part: "wheel" }).all());
        await database.write((tx) => view.with(tx, { ownerId: "bob", part: "wheel" }).get());
      }
    }
    expect(builds).toBe(1);
    expect(rendered).toHaveBeenCalledTimes(1);
    // the reference: drizzle's builder renders the SQL on every call
    rendered.mockClear();
    for (let i = 0; i < 5; i++) await db.read((tx) => thingsWithPart(tx, "alice", "wheel").all());
    expect(rendered).toHaveBeenCalledTimes(5);
  });

  itWith(
    "sqliteErrorCodes",
    "fails as drizzle's builder does: a missing value, a failing statement",
    async () => {
      const db = await seeded();
      const one = preparedQuery((d: Queryable) => thingById(d, sql.placeholder("id")));
      await expect(db.read((tx) => one.with(tx, {}).get())).rejects.toThrow('No value for placeholder "id"');
      // abs() of the smallest integer overflows at run time
      const overflow = (d: Queryable, id: Bind<number>) =>
        d
          .select({ n: sql<number>`abs(${id})` })
          .from(things)
          .where(eq(things.id, 1));
      const failing = preparedQuery((d: Queryable) => overflow(d, sql.placeholder("id")));
      const min = -9223372036854775808n;
      const expected = await db
        .read((tx) => overflow(tx, sql`${min}` as unknown as number).get())
        .catch((err: unknown) => err);
      const actual = await db.read((tx) => failing.with(tx, { id: min }).get()).catch((err: unknown) => err);
      expect(actual).toBeInstanceOf(Error);
      expect((actual as Error).constructor).toBe((expected as Error).constructor);
      expect((actual as Error).message).toBe((expected as Error).message);
      expect(classifyDatabaseError(actual)).toEqual(classifyDatabaseError(expected));
      expect(((actual as Error).cause as { code?: string }).code).toBe("SQLITE_ERROR");
    },
  );
});
