import { spawn } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";
import { sql } from "drizzle-orm";
import { expect } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import type { DatabaseRetryEvent } from "../src/index.js";
import { authors } from "./fixtures/schema.js";
import { fixturesDir, testDatabase } from "./helpers.js";

itWith(
  "multiProcessFile",
  "shares the file with another OS process writing at the same time (busy timeout, no errors)",
  async () => {
    const retries: DatabaseRetryEvent[] = [];
    const { db, path } = await testDatabase({ onRetry: (event) => retries.push(event) });
    const childWrites = 200;
    const parentWrites = 200;

    const child = spawn(
      process.execPath,
      [join(fixturesDir, "child-writer.mjs"), path, String(childWrites)],
      {
        cwd: fixturesDir,
        stdio: ["pipe", "pipe", "pipe"],
      },
    );
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr += chunk;
    });
    const exited = once(child, "exit");
    // wait (no sleep) for the child to open its connection
    while (!stdout.includes("ready")) await once(child.stdout, "data");

    child.stdin.end("go\n");
    const parent = Promise.all(
      Array.from({ length: parentWrites }, (_, i) =>
        db.write(async (tx) => {
          await tx.insert(authors).values({ name: `parent ${i}` });
          await new Promise((resolve) => setImmediate(resolve));
        }),
      ),
    );
    await parent;
    const [code] = await exited;
    expect({ code, stderr }).toEqual({ code: 0, stderr: "" });
    expect(stdout).toContain(`done ${childWrites}`);
    expect(retries).toEqual([]);

    const counts = await db.read(async (tx) =>
      tx.all<{ who: string; n: number }>(
        sql`SELECT substr(name, 1, instr(name, ' ') - 1) AS who, count(*) AS n FROM authors GROUP BY who ORDER BY who`,
      ),
    );
    expect(counts).toEqual([
      { who: "child", n: childWrites },
      { who: "parent", n: parentWrites },
    ]);
  },
);
