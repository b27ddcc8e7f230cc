import { sql } from "drizzle-orm";
import { expect, it } from "vitest";
import { describeEngines, engineDatabase } from "./engines.js";
import { authors } from "./fixtures/schema.js";

/** SQLITE_READONLY on the error itself or on its cause (drizzle wraps the driver's error). */
const readOnlyRefusal = (err: unknown): boolean => {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined; e !== undefined; ) {
    if (e.code === "SQLITE_READONLY") return true;
    e = typeof e.cause === "object" && e.cause !== null ? (e.cause as typeof e) : undefined;
  }
  return false;
};

async function failure(run: Promise<unknown>): Promise<unknown> {
  try {
    await run;
  } catch (err) {
    return err;
  }
  throw new Error("expected the unit of work to fail");
}

describeEngines("read units of work", (engine) => {
  it("fail on an INSERT, UPDATE or DELETE, and keep nothing of it", async () => {
    const { db } = await engineDatabase(engine);
    await db.write(async (tx) => tx.insert(authors).values({ id: 1, name: "Ursula" }));

    const insert = await failure(
      db.read(async (tx) => tx.run(sql`INSERT INTO authors (id, name) VALUES (2, 'sneaky')`)),
    );
    expect(readOnlyRefusal(insert), String(insert)).toBe(true);
    const update = await failure(
      db.read(async (tx) => {
        const before = await tx.select().from(authors);
        await tx.run(sql`UPDATE authors SET name = 'changed'`);
        return before;
      }),
    );
    expect(readOnlyRefusal(update), String(update)).toBe(true);
    const remove = await failure(db.read(async (tx) => tx.run(sql`DELETE FROM authors`)));
    expect(readOnlyRefusal(remove), String(remove)).toBe(true);

    expect(await db.read(async (tx) => tx.select().from(authors))).toEqual([{ id: 1, name: "Ursula" }]);
  });

  it("fail on a schema change", async () => {
    const { db } = await engineDatabase(engine);
    const ddl = await failure(db.read(async (tx) => tx.run(sql`CREATE TABLE stray (x)`)));
    expect(readOnlyRefusal(ddl), String(ddl)).toBe(true);
    const tables = await db.read(async (tx) =>
      tx.all<{ name: string }>(sql`SELECT name FROM sqlite_master WHERE name = 'stray'`),
    );
    expect(tables).toEqual([]);
  });

  it("still answer reads, several in a row and at once, after writes on other connections", async () => {
    const { db } = await engineDatabase(engine);
    for (let i = 1; i <= 5; i++) {
      await db.write(async (tx) => tx.insert(authors).values({ id: i, name: `a${i}` }));
      const counts = await Promise.all(
        [1, 2, 3].map(() =>
          db.read(async (tx) => (await tx.all<{ n: number }>(sql`SELECT count(*) AS n FROM authors`))[0]?.n),
        ),
      );
      expect(counts).toEqual([i, i, i]);
    }
    // a read that runs no statement at all
    expect(await db.read(async () => "nothing")).toBe("nothing");
    // a read whose first statement fails, caught by the unit, which goes on reading
    const recovered = await db.read(async (tx) => {
      const missing = await tx.all(sql`SELECT * FROM no_such_table`).catch(() => "missing");
      return { missing, rows: await tx.select().from(authors) };
    });
    expect(recovered).toMatchObject({ missing: "missing", rows: { length: 5 } });
    // ... and still refuses a write after that
    const afterFailure = await failure(
      db.read(async (tx) => {
        await tx.all(sql`SELECT * FROM no_such_table`).catch(() => undefined);
        await tx.run(sql`DELETE FROM authors`);
      }),
    );
    expect(readOnlyRefusal(afterFailure), String(afterFailure)).toBe(true);
  });
});
