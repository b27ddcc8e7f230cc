import { join } from "node:path";
import { onTestFinished } from "vitest";
import { hasSqld, sqldForTest } from "../../../test/support/sqld.js";
import { createDatabase, type Database, type DatabaseOptions, migrate } from "../src/index.js";
import * as schema from "./fixtures/schema.js";
import { migrationsDir, type TestSchema, tempDir } from "./helpers.js";

/** The engines a behaviour suite runs on: an embedded `file:` database, and a real sqld over HTTP. */
export type EngineName = "file" | "sqld";

export interface EngineDatabase {
  db: Database<TestSchema>;
  /** What `createDatabase` was given (to open a second handle on the same database). */
  options: DatabaseOptions<TestSchema>;
}

/**
 * Engines to run on: `file` always; `sqld` when a binary is found, and always under `CI=true` (where a
 * missing binary must fail the sqld tests, not drop them; see test/support/sqld.ts).
 */
export const engines: readonly EngineName[] =
  hasSqld || process.env.CI === "true" ? ["file", "sqld"] : ["file"];

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
  let authToken: string | undefined;
  if (engine === "file") {
    url = `file:${join(
      tempDir(async () => db?.close()),
      "test.db",
    )}`;
  } else {
    const server = await sqldForTest();
    url = server.url;
    authToken = server.authToken;
    // runs before the server's own stop (hooks run in reverse order)
    onTestFinished(async () => db?.close());
  }
  const dbOptions: DatabaseOptions<TestSchema> = { url, authToken, schema, ...rest };
  db = await createDatabase(dbOptions);
  if (migrated) await migrate(db, migrationsDir);
  return { db, options: dbOptions };
}
