import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDatabase, type Database } from "@autoforge/db";
import { onTestFinished } from "vitest";
import { databaseOptions, engineLocation } from "../../../test/support/engine.js";

/** The audit table as the services' migrations create it (drizzle-kit output of `auditLog`). */
const auditLogDdl = `CREATE TABLE IF NOT EXISTS audit_log (
  seq integer PRIMARY KEY AUTOINCREMENT NOT NULL, occurred_at integer NOT NULL, actor text NOT NULL,
  action text NOT NULL, resource_type text NOT NULL, resource_id text NOT NULL, request_id text,
  digest text NOT NULL, prev_hash text NOT NULL, hash text NOT NULL, key_id text)`;

/** A temp directory, removed when the test finishes. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "autoforge-admin-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The database `test` of `dir` on the test engine (`TEST_DATABASE`: `dir/test.db`, an sqld, or an embedded replica
 * in `dir`; the same one when opened again in the same test) with a `notes` table and the audit table (created
 * when missing), closed when the test finishes (before its directory is removed and its sqld stopped: vitest
 * runs onTestFinished callbacks in reverse).
 */
export async function openDatabase(dir: string): Promise<Database> {
  const db = await createDatabase(databaseOptions(await engineLocation(dir, "test")));
  onTestFinished(() => db.close());
  await db.write(async (tx) => {
    await tx.run("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    await tx.run(auditLogDdl); // maintenance writes one audit row per completed task
  });
  return db;
}

/** A fresh database in its own temp directory (see openDatabase). */
export async function testDatabase(): Promise<Database> {
  return openDatabase(tempDir());
}

/** Polls until `condition` holds or the deadline passes (never a fixed sleep). */
export async function pollUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 5_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error("condition not met before the deadline");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
