import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { onTestFinished } from "vitest";
import { createDatabase, type Database, type DatabaseOptions, migrate } from "../src/index.js";
import * as schema from "./fixtures/schema.js";

export const fixturesDir = fileURLToPath(new URL("./fixtures/", import.meta.url));
export const migrationsDir = join(fixturesDir, "migrations");

/** A fresh directory under the OS temp dir, removed when the current test finishes (after `beforeRemove`). */
export function tempDir(beforeRemove?: () => Promise<void>): string {
  const dir = mkdtempSync(join(tmpdir(), "autoforge-db-"));
  onTestFinished(async () => {
    await beforeRemove?.();
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}

export type TestSchema = typeof schema;

/**
 * A real file database in its own temp dir, migrated with the fixture migrations, closed (before its
 * directory is removed) when the test finishes.
 */
export async function testDatabase(
  options: Omit<DatabaseOptions<TestSchema>, "url" | "schema"> & { migrated?: boolean } = {},
): Promise<{ db: Database<TestSchema>; url: string; path: string }> {
  let db: Database<TestSchema> | undefined;
  const dir = tempDir(async () => db?.close());
  const path = join(dir, "nested", "test.db");
  const url = `file:${path}`;
  const { migrated = true, ...rest } = options;
  db = await createDatabase({ url, schema, ...rest });
  if (migrated) await migrate(db, migrationsDir);
  return { db, url, path };
}

export interface Deferred<T = void> {
  promise: Promise<T>;
  resolve(value: T): void;
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

/** Polls `condition` until it holds, failing after `timeoutMs` (instead of sleeping a guessed time). */
export async function pollUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met before the deadline");
    await new Promise((resolve) => setImmediate(resolve));
  }
}
