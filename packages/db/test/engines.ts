import { join } from "node:path";
import { describe, onTestFinished } from "vitest";
import { runSqldSuites, sqldForTest } from "../../../test/support/sqld.js";
import { createDatabase, type Database, type DatabaseOptions, migrate } from "../src/index.js";
import * as schema from "./fixtures/schema.js";
import { migrationsDir, type TestSchema, tempDir } from "./helpers.js";

/**
 * The engines a behaviour suite runs on: an embedded `file:` database, a real sqld over HTTP, and an embedded
 * replica (a local `file:` copy syncing from its own sqld primary).
 */
export type EngineName = "file" | "sqld" | "replica";

export interface EngineDatabase {
  db: Database<TestSchema>;
  /** What `createDatabase` was given (to open a second handle on the same database). */
  options: DatabaseOptions<TestSchema>;
}

export const allEngines: readonly EngineName[] = ["file", "sqld", "replica"];

/**
 * One `describe` per engine (`<title> on <engine>`), the suite written once. `sqld` and `replica` need an sqld
 * binary: without one they are registered as skipped, and under `CI=true` they run and fail (see
 * test/support/sqld.ts).
 */
export function describeEngines(
  title: string,
  suite: (engine: EngineName) => void,
  engines: readonly EngineName[] = allEngines,
): void {
  for (const engine of engines) {
    describe.runIf(engine === "file" || runSqldSuites)(`${title} on ${engine}`, () => suite(engine));
  }
}

/**
 * A fresh database on `engine` with the test schema, migrated with the fixture migrations unless `migrated`
 * is false; closed (and its sqld stopped) when the test finishes.
 */
export async function engineDatabase(
  engine: EngineName,
  options: Omit<DatabaseOptions<TestSchema>, "url" | "schema"> & { migrated?: boolean } = {},
): Promise<EngineDatabase> {
  const { migrated = true, ...rest } = options;
  let db: Database<TestSchema> | undefined;
  let url: string;
  let syncUrl: string | undefined;
  let authToken: string | undefined;
  if (engine === "file") {
    url = `file:${join(
      tempDir(async () => db?.close()),
      "test.db",
    )}`;
  } else {
    // with JWT auth, as a hosted database always is (the harness test covers a server without it)
    const server = await sqldForTest({ auth: true });
    authToken = server.authToken;
    if (engine === "sqld") {
      url = server.url;
    } else {
      url = `file:${join(tempDir(), "replica.db")}`;
      syncUrl = server.url;
    }
    // runs before the server's own stop and the dir's removal (hooks run in reverse order)
    onTestFinished(async () => db?.close());
  }
  const dbOptions: DatabaseOptions<TestSchema> = { url, syncUrl, authToken, schema, ...rest };
  db = await createDatabase(dbOptions);
  if (migrated) await migrate(db, migrationsDir);
  return { db, options: dbOptions };
}
