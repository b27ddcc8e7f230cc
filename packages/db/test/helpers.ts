import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { type Client, createClient } from "@libsql/client";
import { onTestFinished } from "vitest";
import {
  databaseOptions,
  type EngineLocation,
  engineLocation,
  peerOptions,
} from "../../../test/support/engine.js";
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
 * A database on the test engine (`TEST_DATABASE`: a file in its own temp dir, sqld, or an embedded replica),
 * migrated with the fixture migrations unless `migrated` is false, closed (before its directory is removed and
 * its sqld stopped) when the test finishes. `path` is the local file: reading it on sqld throws, so a test that
 * needs it must declare the `localFile` capability.
 */
export async function testDatabase(
  options: Omit<DatabaseOptions<TestSchema>, "url" | "schema"> & { migrated?: boolean } = {},
): Promise<{ db: Database<TestSchema>; url: string; path: string; location: EngineLocation }> {
  let db: Database<TestSchema> | undefined;
  const dir = tempDir();
  const location = await engineLocation(dir, join("nested", "test"));
  onTestFinished(async () => db?.close());
  const { migrated = true, ...rest } = options;
  db = await createDatabase({ ...databaseOptions(location), schema, ...rest });
  if (migrated) await migrate(db, migrationsDir);
  return {
    db,
    url: location.url,
    get path(): string {
      if (location.path === undefined)
        throw new Error(`no local file on ${location.engine} (needs localFile)`);
      return location.path;
    },
    location,
  };
}

/**
 * A raw client on `db`'s database, below the unit of work (to tamper with rows as someone with file access
 * would): the same file or sqld, or a replica's primary. Its statements are pulled into a replica (`db.sync()`)
 * before they return, so `db` sees them as on the other engines. The caller closes it.
 */
export function rawClient(db: Database<TestSchema>, location: EngineLocation): Client {
  const client = createClient(peerOptions(location));
  if (location.syncUrl === undefined) return client;
  const synced =
    <A extends unknown[], R>(call: (...args: A) => Promise<R>) =>
    async (...args: A): Promise<R> => {
      const result = await call(...args);
      await db.sync();
      return result;
    };
  const wrapped: Record<PropertyKey, unknown> = {
    execute: synced(client.execute.bind(client)),
    batch: synced(client.batch.bind(client)),
    executeMultiple: synced(client.executeMultiple.bind(client)),
  };
  // a Proxy, not a subclass: the client keeps private fields, so everything else is called on the client itself
  return new Proxy(client, {
    get(target, property) {
      if (property in wrapped) return wrapped[property];
      const value: unknown = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
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
