import { createClient, LibsqlError } from "@libsql/client";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import {
  ConstraintViolationError,
  DeadlineExceededError,
  type RetryEvent,
  TransientDatabaseError,
} from "../src/index.js";
import { authors } from "./fixtures/schema.js";
import { testDatabase } from "./helpers.js";

const busy = () => new LibsqlError("database is locked", "SQLITE_BUSY", "SQLITE_BUSY", 5);

describe("retry of transient errors", () => {
  itWith(
    "sqliteBusy",
    "retries a real SQLITE_BUSY (another connection holds the write lock) and then succeeds",
    async () => {
      // short busy timeout so the first attempt fails fast instead of waiting the lock out
      const { db, url } = await testDatabase({ busyTimeoutMs: 20 });
      const other = createClient({ url });
      const held = await other.transaction("write");
      await held.execute("INSERT INTO authors (name) VALUES ('other process')");

      const retries: RetryEvent[] = [];
      let runs = 0;
      const id = await db.write(
        async (tx) => {
          runs++;
          const [row] = await tx.insert(authors).values({ name: "mine" }).returning();
          return row?.id;
        },
        {
          onRetry: (event) => {
            retries.push(event);
            // the lock goes away before the next attempt
            if (retries.length === 1) void held.commit();
          },
        },
      );

      expect(retries).toHaveLength(1);
      expect(retries[0]?.error).toBeInstanceOf(TransientDatabaseError);
      expect(retries[0]?.error).toMatchObject({ code: "SQLITE_BUSY", reason: "busy" });
      expect(runs).toBe(1); // BEGIN IMMEDIATE failed, so fn never ran on the failed attempt
      expect(id).toBe(2);
      other.close();
    },
  );

  itWith("sqliteBusy", "stops at max attempts and throws the last transient error", async () => {
    const { db, url } = await testDatabase({
      busyTimeoutMs: 5,
      retry: { maxAttempts: 3, initialDelayMs: 1, maxDelayMs: 2 },
    });
    const other = createClient({ url });
    const held = await other.transaction("write");
    const retries: RetryEvent[] = [];
    const failure = await db
      .write(async (tx) => tx.insert(authors).values({ name: "never" }), { onRetry: (e) => retries.push(e) })
      .catch((err: unknown) => err);
    await held.rollback();
    other.close();

    expect(failure).toBeInstanceOf(TransientDatabaseError);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]); // 3 attempts in all
    // nothing was left locked: the next unit of work goes through
    await db.write(async (tx) => tx.insert(authors).values({ name: "after" }));
  });

  it("never starts an attempt or sleeps past the deadline", async () => {
    const { db } = await testDatabase({ retry: { maxAttempts: 1_000, initialDelayMs: 5, maxDelayMs: 20 } });
    const deadline = Date.now() + 150;
    const starts: number[] = [];
    const retries: { at: number; event: RetryEvent }[] = [];
    const failure = await db
      .write(
        async () => {
          starts.push(Date.now());
          throw busy();
        },
        { deadline, onRetry: (event) => retries.push({ at: Date.now(), event }) },
      )
      .catch((err: unknown) => err);

    expect(failure).toBeInstanceOf(TransientDatabaseError);
    expect(starts.length).toBeLessThan(1_000); // the deadline stopped it, not the attempt limit
    // the deadline is checked before an attempt is queued and before a sleep is planned; the unit's body runs
    // (and onRetry fires) a few event-loop turns later, so the clock may have moved on by a millisecond or two
    const slackMs = 10;
    for (const start of starts) expect(start).toBeLessThan(deadline + slackMs);
    for (const { at, event } of retries) expect(at + event.delayMs).toBeLessThan(deadline + slackMs);
  });

  it("does not start at all when the deadline has already passed", async () => {
    const { db } = await testDatabase();
    let ran = false;
    await expect(
      db.write(
        async () => {
          ran = true;
        },
        { deadline: Date.now() - 1 },
      ),
    ).rejects.toBeInstanceOf(DeadlineExceededError);
    expect(ran).toBe(false);
  });

  it("retries a read unit of work too, and reports to the database-wide hook", async () => {
    const kinds: string[] = [];
    const { db } = await testDatabase({ onRetry: (event) => kinds.push(event.kind) });
    let runs = 0;
    const n = await db.read(async (tx) => {
      runs++;
      if (runs === 1) throw busy();
      return (await tx.all<{ n: number }>(sql`SELECT count(*) AS n FROM authors`))[0]?.n;
    });
    expect({ n, runs, kinds }).toEqual({ n: 0, runs: 2, kinds: ["read"] });
  });

  it("rolls back the failed attempt before retrying (no half-written rows)", async () => {
    const { db } = await testDatabase();
    let runs = 0;
    await db.write(async (tx) => {
      runs++;
      await tx.insert(authors).values({ name: `attempt ${runs}` });
      if (runs === 1) throw busy();
    });
    const names = await db.read(async (tx) => tx.select({ name: authors.name }).from(authors));
    expect(names).toEqual([{ name: "attempt 2" }]);
  });

  it("never retries a constraint violation", async () => {
    const { db } = await testDatabase();
    let runs = 0;
    const failure = await db
      .write(async (tx) => {
        runs++;
        await tx.insert(authors).values({ name: "" });
      })
      .catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(ConstraintViolationError);
    expect(runs).toBe(1);
  });
});
