import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@libsql/client";
import { createDatabase, type DatabaseMode, type UnitOfWorkOptions } from "./database.js";
import { createMigrator, type MigratableDatabase, MigrationError } from "./migrator.js";

/**
 * Dry run of pending migrations: copy the live database with `VACUUM INTO`, migrate the copy with the same
 * migrator, check the copy's integrity, foreign keys and the caller's invariants, delete the copy. The live
 * database is only read (one read transaction for the copy). The local analogue of the review's Turso-branch
 * workflow; remote databases use a Turso branch instead (see the README).
 */

/** A query naming rows that break a rule of the data: it must return zero rows. */
export interface MigrationInvariant {
  name: string;
  sql: string;
}

export interface CheckMigrationsOptions {
  /** drizzle-kit `out` folder, as for the migrator. */
  migrationsFolder: string;
  /** Checked on the migrated copy (also when nothing is pending: then they check the current data). */
  invariants?: readonly MigrationInvariant[];
  /**
   * Also revert the pending migrations on the copy and apply them again (default true): proves the down files
   * run, on real data, before a rollback is ever needed in production.
   */
  verifyDown?: boolean;
  /** Where the copy is written (default: the OS temp dir). It needs room for a vacuumed copy of the database. */
  tempDir?: string;
  /**
   * Migrate and check `db` itself instead of a copy. Only for a database that is already a disposable copy —
   * a Turso branch (`turso db create <name>-migration-check --from-db <name>`) — since this changes it.
   */
  inPlace?: boolean;
  /** The live database's `encryptionKey`: `VACUUM INTO` writes the copy encrypted with the same key. */
  encryptionKey?: string | undefined;
}

export interface MigrationCheckReport {
  /** True when every pending migration applied to the copy and no check found a problem. */
  safe: boolean;
  /** Tags of the migrations that `up` would apply, oldest first. */
  pending: string[];
  /** Human-readable findings; empty when safe. */
  problems: string[];
}

/** The part of a Database the check needs (any schema). */
export interface CheckableDatabase extends MigratableDatabase {
  readonly mode: DatabaseMode;
  exclusive<T>(fn: (client: Client) => Promise<T>, options?: UnitOfWorkOptions): Promise<T>;
}

const MAX_ROWS_SHOWN = 3;

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    const causeText =
      cause instanceof Error && !err.message.includes(cause.message) ? ` (${cause.message})` : "";
    return `${err.message}${causeText}`;
  }
  return String(err);
}

function sample(rows: readonly unknown[]): string {
  const shown = rows.slice(0, MAX_ROWS_SHOWN).map((row) => JSON.stringify({ ...(row as object) }));
  return rows.length > MAX_ROWS_SHOWN ? `${shown.join(", ")}, ...` : shown.join(", ");
}

/**
 * Applies the pending migrations of `migrationsFolder` to a copy of `db` and reports whether that is safe.
 * Never changes the live database. Copies `file:` databases only: a client cannot `VACUUM INTO` a file of a
 * remote server (sqld / Turso), and an embedded replica is only a copy of its primary. For those, branch the
 * database (`turso db create <name>-migration-check --from-db <name>`) and check the branch with `inPlace`.
 */
export async function checkMigrations(
  db: CheckableDatabase,
  options: CheckMigrationsOptions,
): Promise<MigrationCheckReport> {
  if (options.inPlace === true) return migrateAndVerify(db, options);
  if (db.mode !== "file") {
    throw new MigrationError(
      `checking migrations on a copy needs a file: database (this one is ${db.mode}); for sqld / Turso, ` +
        "branch it (turso db create <name>-migration-check --from-db <name>), run `migrate check --in-place` " +
        "against the branch's URL, then `migrate up` against production, and destroy the branch",
      "MIGRATION_CHECK_UNSUPPORTED",
    );
  }
  const dir = mkdtempSync(join(options.tempDir ?? tmpdir(), "autoforge-migration-check-"));
  const copyPath = join(dir, "copy.db");
  try {
    // VACUUM INTO reads one consistent snapshot (WAL included) and writes a compact copy; it cannot run in a
    // transaction, hence `exclusive` (which also keeps this process's own writers out while it copies).
    try {
      await db.exclusive((client) => client.execute({ sql: "VACUUM INTO ?", args: [copyPath] }));
    } catch (err) {
      return { safe: false, pending: [], problems: [`could not copy the database: ${describeError(err)}`] };
    }
    let copy: Awaited<ReturnType<typeof createDatabase>>;
    try {
      copy = await createDatabase({ url: `file:${copyPath}`, encryptionKey: options.encryptionKey });
    } catch (err) {
      return { safe: false, pending: [], problems: [`could not open the copy: ${describeError(err)}`] };
    }
    try {
      return await migrateAndVerify(copy, options);
    } finally {
      await copy.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Migrates `db` (the copy, or a branch) and checks the result. */
async function migrateAndVerify(
  db: CheckableDatabase,
  options: CheckMigrationsOptions,
): Promise<MigrationCheckReport> {
  const problems: string[] = [];
  const migrator = createMigrator(db, { migrationsFolder: options.migrationsFolder });
  const pending = (await migrator.status()).filter((s) => s.state === "pending").map((s) => s.tag);
  let applied: string[] = [];
  try {
    applied = await migrator.up();
  } catch (err) {
    // each migration commits on its own: the first one still pending is the one that failed
    const failed =
      (err instanceof MigrationError ? err.tag : undefined) ??
      (await migrator.status().catch(() => [])).find((s) => s.state === "pending")?.tag;
    problems.push(`migrate up failed${failed === undefined ? "" : ` at ${failed}`}: ${describeError(err)}`);
  }
  if (problems.length === 0) {
    problems.push(...(await db.exclusive((client) => dataProblems(client, options.invariants ?? []))));
  }
  if (problems.length === 0 && options.verifyDown !== false && applied.length > 0) {
    try {
      await migrator.down(applied.length);
      await migrator.up();
    } catch (err) {
      problems.push(
        `reverting the pending migrations (down ${applied.length}) and applying them again failed: ${describeError(err)}`,
      );
    }
  }
  return { safe: problems.length === 0, pending, problems };
}

async function dataProblems(client: Client, invariants: readonly MigrationInvariant[]): Promise<string[]> {
  const problems: string[] = [];
  const integrity = await client.execute("PRAGMA integrity_check");
  const messages = integrity.rows.map((row) => String(row[0]));
  if (!(messages.length === 1 && messages[0] === "ok")) {
    problems.push(`PRAGMA integrity_check: ${messages.join("; ")}`);
  }
  const foreignKeys = await client.execute("PRAGMA foreign_key_check");
  if (foreignKeys.rows.length > 0) {
    problems.push(
      `PRAGMA foreign_key_check: ${foreignKeys.rows.length} dangling reference(s): ${sample(foreignKeys.rows)}`,
    );
  }
  for (const invariant of invariants) {
    try {
      const result = await client.execute(invariant.sql);
      if (result.rows.length > 0) {
        problems.push(
          `invariant "${invariant.name}" violated by ${result.rows.length} row(s): ${sample(result.rows)}`,
        );
      }
    } catch (err) {
      problems.push(`invariant "${invariant.name}" could not run: ${describeError(err)}`);
    }
  }
  return problems;
}
