import { describe, onTestFinished } from "vitest";
import { type EngineName, engineLocation, testEngine } from "../../../test/support/engine.js";
import { runSqldSuites } from "../../../test/support/sqld.js";
import { createDatabase, type Database, type DatabaseOptions, migrate } from "../src/index.js";
import * as schema from "./fixtures/schema.js";
import { migrationsDir, type TestSchema, tempDir } from "./helpers.js";

/**
 * The engines a behaviour suite runs on: an embedded `file:` database, a real sqld over HTTP, and an embedded
 * replica (a local `file:` copy syncing from its own sqld primary).
 */
export type { EngineName };

export interface EngineDatabase {
  db: Database<TestSchema>;
  /** What `createDatabase` was given (to open a second handle on the same database). */
  options: DatabaseOptions<TestSchema>;
}

export const allEngines: readonly EngineName[] = ["file", "sqld", "replica"];

/**
 * One `describe` per engine (`<title> on <engine>`), the suite written once. `sqld` and `replica` need an sqld
 * binary: without one they are registered as skipped, and under `CI=true` they run and fail (see
 * test/support/sqld.ts). With `TEST_DATABASE=sqld|replica` only that engine's block is registered.
 */
export function describeEngines(
  title: string,
  suite: (engine: EngineName) => void,
  engines: readonly EngineName[] = allEngines,
): void {
  for (const engine of engines) {
    // the default run (file) covers every engine; an engine run (TEST_DATABASE=sqld|replica) only its own
    if (testEngine !== "file" && engine !== testEngine) continue;
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
  const location = await engineLocation(tempDir(), "test", engine);
  // runs before the server's own stop and the dir's removal (hooks run in reverse order)
  onTestFinished(async () => db?.close());
  const { url, syncUrl, authToken } = location;
  const dbOptions: DatabaseOptions<TestSchema> = { url, syncUrl, authToken, schema, ...rest };
  db = await createDatabase(dbOptions);
  if (migrated) await migrate(db, migrationsDir);
  return { db, options: dbOptions };
}
