/**
 * Shared setup of the unit-of-work benchmarks: a fresh temp file database migrated with the test fixtures
 * (authors, books, audit_log). `DB_IMPL=/path/to/index.ts` benchmarks another copy of the package (e.g. the
 * previous commit's `src/`, copied next to a `node_modules` link) against the same schema.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type * as Db from "../src/index.js";
import * as schema from "../test/fixtures/schema.js";

export { schema };
export const migrationsDir = fileURLToPath(new URL("../test/fixtures/migrations/", import.meta.url));

export async function loadImpl(): Promise<typeof Db> {
  const impl = process.env.DB_IMPL;
  return impl ? ((await import(pathToFileURL(impl).href)) as typeof Db) : import("../src/index.js");
}

export async function benchDatabase(dbModule: typeof Db) {
  const dir = mkdtempSync(join(tmpdir(), "autoforge-db-bench-"));
  const db = await dbModule.createDatabase({ url: `file:${join(dir, "bench.db")}`, schema });
  await dbModule.migrate(db, migrationsDir);
  return {
    db,
    async dispose() {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function label(): string {
  return process.env.DB_IMPL ? `impl ${process.env.DB_IMPL}` : "impl packages/db/src";
}
