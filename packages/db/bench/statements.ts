/**
 * Statements per second through @libsql/client's `file:` client (prepares every execution) and through
 * createLocalClient (a prepared-statement cache per connection), on the same file, one after the other:
 * a point read by primary key, a 20-row range read, and an insert inside a transaction.
 *
 *   node --conditions=source --import tsx packages/db/bench/statements.ts [executions=20000]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Client, createClient } from "@libsql/client";
import { createLocalClient } from "../src/local-client.js";

const executions = Number(process.argv[2] ?? 20_000);
const dir = mkdtempSync(join(tmpdir(), "autoforge-statements-bench-"));
const path = join(dir, "bench.db");
const ROWS = 10_000;

const setup = createClient({ url: `file:${path}` });
await setup.executeMultiple(`
  PRAGMA journal_mode=WAL;
  CREATE TABLE items (id INTEGER PRIMARY KEY, owner TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL,
                      created_at INTEGER NOT NULL);
  CREATE INDEX items_owner ON items (owner, created_at);
`);
await setup.batch(
  Array.from({ length: ROWS }, (_, i) => ({
    sql: "INSERT INTO items (owner, title, body, created_at) VALUES (?, ?, ?, ?)",
    args: [`owner-${i % 100}`, `title ${i}`, "x".repeat(200), 1_700_000_000_000 + i],
  })),
  "write",
);
setup.close();

async function measure(name: string, body: (i: number) => Promise<unknown>) {
  for (let i = 0; i < 500; i++) await body(i); // warm-up
  const started = performance.now();
  for (let i = 0; i < executions; i++) await body(i);
  const seconds = (performance.now() - started) / 1000;
  return { name, perSecond: Math.round(executions / seconds) };
}

async function scenarios(client: Client) {
  const pointRead = await measure("point read", (i) =>
    client.execute({
      sql: "SELECT id, owner, title, body, created_at FROM items WHERE id = ?",
      args: [(i % ROWS) + 1],
    }),
  );
  const rangeRead = await measure("20-row read", (i) =>
    client.execute({
      sql: "SELECT id, owner, title, created_at FROM items WHERE owner = ? ORDER BY created_at DESC LIMIT 20",
      args: [`owner-${i % 100}`],
    }),
  );
  const tx = await client.transaction("write");
  const insert = await measure("insert (one transaction)", (i) =>
    tx.execute({
      sql: "INSERT INTO items (owner, title, body, created_at) VALUES (?, ?, ?, ?)",
      args: [`owner-${i % 100}`, `new ${i}`, "y".repeat(200), 1_800_000_000_000 + i],
    }),
  );
  await tx.rollback();
  return [pointRead, rangeRead, insert];
}

const upstream = createClient({ url: `file:${path}` });
const local = createLocalClient({ path, timeout: 5_000, concurrency: 1 });
try {
  const before = await scenarios(upstream);
  const after = await scenarios(local);
  console.log(`${executions} executions each, one caller, ${path}`);
  console.log("| statement | @libsql/client /s | createLocalClient /s | ratio |");
  console.log("| --- | ---: | ---: | ---: |");
  before.forEach((b, i) => {
    const a = after[i] as (typeof after)[number];
    console.log(
      `| ${b.name} | ${b.perSecond} | ${a.perSecond} | ${(a.perSecond / b.perSecond).toFixed(2)} |`,
    );
  });
} finally {
  upstream.close();
  local.close();
  rmSync(dir, { recursive: true, force: true });
}
