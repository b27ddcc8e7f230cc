import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import { runMigrationCommand } from "../src/index.js";
import { fixturesDir, migrationsDir, testDatabase } from "./helpers.js";

async function run(db: Parameters<typeof runMigrationCommand>[0], argv: string[], folder = migrationsDir) {
  const lines: string[] = [];
  const code = await runMigrationCommand(db, argv, {
    migrationsFolder: folder,
    invariants: [
      {
        name: "no orphan books",
        sql: "SELECT id FROM books WHERE author_id NOT IN (SELECT id FROM authors)",
      },
    ],
    print: (line) => lines.push(line),
  });
  return { code, out: lines.join("\n") };
}

describe("migrate command (the services' CLI)", () => {
  itWith("vacuumInto", "status, check, up, down n: readable output and exit codes", async () => {
    const { db } = await testDatabase({ migrated: false });
    expect(await run(db, ["status"])).toEqual({
      code: 0,
      out: [
        "pending  0000_init",
        "pending  0001_audit_triggers",
        "pending  0002_reviews_and_pages",
        "pending  0003_authors_name_length",
      ].join("\n"),
    });
    const check = await run(db, ["check"]);
    expect(check.code).toBe(0);
    expect(check.out).toContain(
      "pending:  0000_init, 0001_audit_triggers, 0002_reviews_and_pages, 0003_authors_name_length",
    );
    expect(check.out).toContain("1 invariant(s), down + up again");
    expect(check.out).toContain("result:   SAFE to apply");
    expect(await run(db, ["up"])).toEqual({
      code: 0,
      out: "applied: 0000_init, 0001_audit_triggers, 0002_reviews_and_pages, 0003_authors_name_length",
    });
    expect(await run(db, [])).toEqual({ code: 0, out: "up to date: nothing to apply" });
    expect((await run(db, ["check"])).out).toContain("result:   OK (nothing to apply)");
    expect(await run(db, ["down", "2"])).toEqual({
      code: 0,
      out: "reverted: 0003_authors_name_length, 0002_reviews_and_pages",
    });
    expect((await run(db, ["status"])).out).toMatch(/^applied {2}0000_init {16}\d{4}-\d\d-\d\dT/);
  });

  itWith(
    "vacuumInto",
    "check exits 2 and lists the problems when a pending migration is unsafe",
    async () => {
      const { db } = await testDatabase();
      await db.write(async (_tx, ctx) => {
        await ctx.transaction.executeMultiple(
          "INSERT INTO authors (id, name) VALUES (1, 'a'); INSERT INTO books (id, author_id, title) VALUES (1, 1, 'b');" +
            "INSERT INTO reviews (id, book_id, rating) VALUES (1, 1, 4);",
        );
      });
      const { code, out } = await run(db, ["check"], join(fixturesDir, "migrations-broken"));
      expect(code).toBe(2);
      expect(out).toContain("pending:  0004_renumber_reviews");
      expect(out).toContain("result:   UNSAFE (1 problem(s))");
      expect(out).toContain("  - migrate up failed at 0004_renumber_reviews: foreign key check failed");
    },
  );

  it("refuses bad usage with exit 1 and the usage text", async () => {
    const { db } = await testDatabase();
    expect(await run(db, ["sideways"])).toMatchObject({
      code: 1,
      out: expect.stringContaining("usage: migrate"),
    });
    expect(await run(db, ["down", "two"])).toMatchObject({
      code: 1,
      out: expect.stringContaining("non-negative"),
    });
  });
});
