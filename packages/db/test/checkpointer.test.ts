import { statSync } from "node:fs";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { startCheckpointer } from "../src/checkpointer.js";
import { createDatabase } from "../src/index.js";
import { pollUntil, tempDir } from "./helpers.js";

const PAYLOAD = "x".repeat(4_000); // about one page per row

/** Writes `rows` rows of ~4 KB in units of 50, so the WAL passes SQLite's 1,000-page checkpoint threshold. */
async function fill(db: Awaited<ReturnType<typeof createDatabase>>, rows: number) {
  await db.write((tx) => tx.run(sql`CREATE TABLE IF NOT EXISTS blobs (id INTEGER PRIMARY KEY, body TEXT)`));
  for (let i = 0; i < rows; i += 50) {
    await db.write(async (tx) => {
      for (let j = 0; j < 50; j++) await tx.run(sql`INSERT INTO blobs (body) VALUES (${PAYLOAD})`);
    });
  }
}

const autoCheckpoint = async (db: Awaited<ReturnType<typeof createDatabase>>) =>
  Number((await db.exclusive((c) => c.execute("PRAGMA wal_autocheckpoint"))).rows[0]?.[0]);

describe("background WAL checkpoints", () => {
  it("the writer never checkpoints in a COMMIT; the worker copies the WAL into the database file", async () => {
    const path = join(tempDir(), "ckpt.db");
    const db = await createDatabase({ url: `file:${path}`, checkpointIntervalMs: 50 });
    try {
      await fill(db, 1_500); // ~6 MB: without any checkpoint the database file would stay a few pages long
      expect(await autoCheckpoint(db)).toBe(0);
      await pollUntil(() => statSync(path).size > 4_000_000, 10_000);
      const count = await db.read((tx) => tx.all<{ n: number }>(sql`SELECT count(*) AS n FROM blobs`));
      expect(count[0]?.n).toBe(1_500);
    } finally {
      await db.close();
    }
  });

  it("checkpointIntervalMs: 0 keeps SQLite's automatic checkpoints on the writer", async () => {
    const db = await createDatabase({ url: `file:${join(tempDir(), "inline.db")}`, checkpointIntervalMs: 0 });
    try {
      await fill(db, 50);
      expect(await autoCheckpoint(db)).toBe(1_000);
    } finally {
      await db.close();
    }
  });

  it("reports a worker that cannot run, so the caller can fall back", async () => {
    const failures: unknown[] = [];
    const checkpointer = startCheckpointer({
      path: join(tempDir(), "missing-dir", "nope", "x.db"),
      timeout: 100,
      intervalMs: 10,
      onFailure: (err) => failures.push(err),
    });
    await pollUntil(() => failures.length > 0, 10_000);
    await checkpointer.stop();
    expect(failures).toHaveLength(1);
  });
});
