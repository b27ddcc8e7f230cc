import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Transaction } from "@libsql/client";
import type { UnitOfWorkContext, UnitOfWorkOptions, WriteOptions } from "./database.js";
import { DatabaseError } from "./errors.js";

/**
 * Migrations: drizzle-kit's output folder (`meta/_journal.json` + `<tag>.sql`) plus a hand-written
 * `<tag>.down.sql` beside every migration. Each migration runs in its own write unit of work, together with
 * its bookkeeping row, so a migration is either fully applied and recorded or not at all.
 *
 * The down SQL is stored in `schema_migrations` when the migration is applied: rolling back then uses the
 * SQL that belongs to what is really in the database, even when run by an older or newer build whose folder
 * no longer (or not yet) has that file.
 */

export const SCHEMA_MIGRATIONS_TABLE = "schema_migrations";

/** drizzle-kit separates statements with this marker; plain `;`-separated scripts work too. */
const BREAKPOINT = "--> statement-breakpoint";

export type MigrationErrorCode =
  | "MIGRATION_JOURNAL_INVALID"
  | "MIGRATION_FILE_MISSING"
  | "MIGRATION_DOWN_MISSING"
  | "MIGRATION_CHANGED"
  | "MIGRATION_UNKNOWN"
  | "MIGRATION_OUT_OF_ORDER"
  | "MIGRATION_CHECK_UNSUPPORTED"
  | "MIGRATION_UNSAFE_ON_ENGINE";

export class MigrationError extends DatabaseError {
  override readonly name = "MigrationError";
  readonly tag: string | undefined;
  constructor(message: string, code: MigrationErrorCode, tag?: string, options?: { cause?: unknown }) {
    super(message, code, options);
    this.tag = tag;
  }
}

/** The part of a Database the migrator needs (any schema). */
export interface MigratableDatabase {
  write<T>(fn: (tx: unknown, ctx: UnitOfWorkContext) => Promise<T>, options?: WriteOptions): Promise<T>;
  read<T>(fn: (tx: unknown, ctx: UnitOfWorkContext) => Promise<T>, options?: UnitOfWorkOptions): Promise<T>;
}

export interface MigratorOptions {
  /** drizzle-kit `out` folder. */
  migrationsFolder: string;
}

export interface LocalMigration {
  idx: number;
  tag: string;
  upSql: string;
  hash: string;
  /** Undefined when the folder has no `<tag>.down.sql`. */
  downSql: string | undefined;
}

export interface AppliedMigration {
  idx: number;
  tag: string;
  hash: string;
  appliedAt: number;
}

export type MigrationState =
  | "applied"
  | "pending"
  /** Applied, but the folder's SQL differs from what was applied. */
  | "changed"
  /** Applied, but not in this folder's journal (database is newer than this build). */
  | "unknown";

export interface MigrationStatusEntry {
  idx: number;
  tag: string;
  state: MigrationState;
  appliedAt?: number;
}

export interface Migrator {
  /** Applies every pending migration, oldest first; returns the tags applied. */
  up(options?: UnitOfWorkOptions): Promise<string[]>;
  /** Reverts the last `n` applied migrations, newest first, with their recorded down SQL; returns the tags. */
  down(n?: number, options?: UnitOfWorkOptions): Promise<string[]>;
  status(): Promise<MigrationStatusEntry[]>;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/** Reads the journal and the SQL files of a drizzle-kit migrations folder. */
export function readMigrationsFolder(folder: string): LocalMigration[] {
  const journalPath = join(folder, "meta", "_journal.json");
  if (!existsSync(journalPath)) {
    throw new MigrationError(`no drizzle-kit journal at ${journalPath}`, "MIGRATION_JOURNAL_INVALID");
  }
  let journal: unknown;
  try {
    journal = JSON.parse(readFileSync(journalPath, "utf8"));
  } catch (err) {
    throw new MigrationError(`cannot parse ${journalPath}`, "MIGRATION_JOURNAL_INVALID", undefined, {
      cause: err,
    });
  }
  const entries = (journal as { entries?: unknown }).entries;
  if (!Array.isArray(entries)) {
    throw new MigrationError(`${journalPath} has no entries array`, "MIGRATION_JOURNAL_INVALID");
  }
  const migrations = entries.map((entry: unknown, position): LocalMigration => {
    const { idx, tag } = entry as { idx?: unknown; tag?: unknown };
    if (typeof idx !== "number" || typeof tag !== "string" || idx !== position) {
      throw new MigrationError(
        `${journalPath}: entry ${position} must have idx ${position} and a tag`,
        "MIGRATION_JOURNAL_INVALID",
      );
    }
    const upPath = join(folder, `${tag}.sql`);
    if (!existsSync(upPath)) throw new MigrationError(`missing ${upPath}`, "MIGRATION_FILE_MISSING", tag);
    const upSql = readFileSync(upPath, "utf8");
    const downPath = join(folder, `${tag}.down.sql`);
    const downSql = existsSync(downPath) ? readFileSync(downPath, "utf8") : undefined;
    return { idx, tag, upSql, hash: sha256Hex(upSql), downSql };
  });
  return migrations;
}

/** Statements of a migration script: drizzle-kit breakpoints first; each chunk may hold several statements. */
function chunks(script: string): string[] {
  return script
    .split(BREAKPOINT)
    .map((chunk) => chunk.trim())
    .filter((chunk) => chunk !== "");
}

async function runScript(transaction: Transaction, script: string): Promise<void> {
  // executeMultiple runs a whole chunk (trigger bodies with inner `;` included) on the transaction's connection;
  // drizzle-kit's `PRAGMA foreign_keys=...` lines in it are no-ops inside a transaction (see applyOptions).
  for (const chunk of chunks(script)) await transaction.executeMultiple(chunk);
}

// `DROP TABLE [IF EXISTS] [schema.]name`, the name quoted any of SQLite's ways or not at all
const DROP_TABLE =
  /\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:(?:`[^`]+`|"[^"]+"|\[[^\]]+\]|\w+)\s*\.\s*)?(`[^`]+`|"[^"]+"|\[[^\]]+\]|\w+)/gi;

function droppedTables(script: string): string[] {
  return [...script.matchAll(DROP_TABLE)].map((m) => {
    const name = m[1] ?? "";
    const quoted = /^[`"[]/.test(name);
    return quoted ? name.slice(1, -1) : name;
  });
}

/**
 * The migrator's unit of work runs with foreign keys off (WriteOptions.foreignKeys "check-at-commit") on every
 * engine it knows. Should an engine (or a database handle) leave them on, dropping a table that others
 * reference would run an implicit DELETE that cascades into (or fails on) the children: such a migration is
 * refused before any of its statements runs, naming the table.
 */
async function refuseUnsafeDrops(transaction: Transaction, tag: string, script: string): Promise<void> {
  const dropped = droppedTables(script);
  if (dropped.length === 0) return;
  const enforced = await transaction.execute("PRAGMA foreign_keys");
  if (Number(enforced.rows[0]?.[0] ?? 0) === 0) return;
  for (const table of dropped) {
    const children = await transaction.execute({
      sql: `SELECT DISTINCT m.name AS child FROM sqlite_master AS m, pragma_foreign_key_list(m.name) AS f
            WHERE m.type = 'table' AND m.name <> ? COLLATE NOCASE AND f."table" = ? COLLATE NOCASE`,
      args: [table, table],
    });
    // a child dropped by the same migration loses its rows anyway
    const names = children.rows
      .map((row) => String(row.child))
      .filter((child) => !dropped.some((d) => d.toLowerCase() === child.toLowerCase()));
    if (names.length > 0) {
      throw new MigrationError(
        `migration ${tag} drops table ${table}, which ${names.join(", ")} reference(s), but foreign keys cannot ` +
          "be switched off for a migration on this engine: the drop would delete or cascade into their rows. " +
          "Write the change without rebuilding the table (ADD COLUMN, or a new table plus a copy, then switch " +
          "readers), or run it on an engine that allows it",
        "MIGRATION_UNSAFE_ON_ENGINE",
        tag,
      );
    }
  }
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS ${SCHEMA_MIGRATIONS_TABLE} (
  id INTEGER PRIMARY KEY,
  tag TEXT NOT NULL UNIQUE,
  hash TEXT NOT NULL CHECK (length(hash) = 64),
  down_sql TEXT NOT NULL,
  applied_at INTEGER NOT NULL
)`;

interface RawApplied {
  id: number;
  tag: string;
  hash: string;
  applied_at: number;
}

async function hasMigrationsTable(transaction: Transaction): Promise<boolean> {
  const exists = await transaction.execute({
    sql: "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = ?",
    args: [SCHEMA_MIGRATIONS_TABLE],
  });
  return Number(exists.rows[0]?.n ?? 0) > 0;
}

async function readApplied(transaction: Transaction): Promise<AppliedMigration[]> {
  if (!(await hasMigrationsTable(transaction))) return [];
  const result = await transaction.execute(
    `SELECT id, tag, hash, applied_at FROM ${SCHEMA_MIGRATIONS_TABLE} ORDER BY id`,
  );
  return result.rows.map((row) => {
    const r = row as unknown as RawApplied;
    return { idx: Number(r.id), tag: String(r.tag), hash: String(r.hash), appliedAt: Number(r.applied_at) };
  });
}

/** Refuses a database whose history does not match the folder (changed, unknown or out-of-order migrations). */
function checkHistory(local: LocalMigration[], applied: AppliedMigration[]): void {
  for (const record of applied) {
    const mine = local[record.idx];
    if (mine === undefined || mine.tag !== record.tag) {
      throw new MigrationError(
        `migration ${record.tag} (#${record.idx}) is applied to the database but not in this migrations folder; ` +
          "the database is newer than this build or the folder was rewritten",
        "MIGRATION_UNKNOWN",
        record.tag,
      );
    }
    if (mine.hash !== record.hash) {
      throw new MigrationError(
        `migration ${record.tag} was changed after it was applied (sha256 differs); ` +
          "write a new migration instead of editing an applied one",
        "MIGRATION_CHANGED",
        record.tag,
      );
    }
  }
  // applied ids must be exactly 0..n-1: a hole means an older migration was added after newer ones ran
  applied.forEach((record, position) => {
    if (record.idx !== position) {
      throw new MigrationError(
        `migration #${position} (${local[position]?.tag ?? "?"}) is pending but later ones are applied`,
        "MIGRATION_OUT_OF_ORDER",
        local[position]?.tag,
      );
    }
  });
}

/**
 * Table-rebuild migrations need foreign keys off while the old table is dropped, and SQLite ignores that
 * pragma inside a transaction; `check-at-commit` turns enforcement off outside the transaction on the writer
 * connection and runs `PRAGMA foreign_key_check` before COMMIT, so a migration that leaves dangling
 * references rolls back. See WriteOptions.foreignKeys.
 */
const applyOptions = (options: UnitOfWorkOptions | undefined): WriteOptions => ({
  ...options,
  foreignKeys: "check-at-commit",
});

export function createMigrator(db: MigratableDatabase, options: MigratorOptions): Migrator {
  const folder = options.migrationsFolder;

  return {
    async up(unitOptions) {
      const local = readMigrationsFolder(folder);
      // every migration must be reversible: refuse before touching anything
      const pendingTags = await db.read(async (_tx, ctx) => {
        const applied = await readApplied(ctx.transaction);
        checkHistory(local, applied);
        return local.slice(applied.length);
      }, unitOptions);
      const withoutDown = pendingTags.filter((m) => m.downSql === undefined || m.downSql.trim() === "");
      if (withoutDown.length > 0) {
        throw new MigrationError(
          `missing down migration(s): ${withoutDown.map((m) => `${m.tag}.down.sql`).join(", ")}`,
          "MIGRATION_DOWN_MISSING",
          withoutDown[0]?.tag,
        );
      }

      const appliedTags: string[] = [];
      for (const migration of pendingTags) {
        const applied = await db.write(async (_tx, ctx) => {
          await ctx.transaction.execute(CREATE_TABLE);
          // re-read inside the write lock: another process may have applied it meanwhile
          const current = await readApplied(ctx.transaction);
          checkHistory(local, current);
          if (current.length !== migration.idx) return false;
          await refuseUnsafeDrops(ctx.transaction, migration.tag, migration.upSql);
          await runScript(ctx.transaction, migration.upSql);
          await ctx.transaction.execute({
            sql: `INSERT INTO ${SCHEMA_MIGRATIONS_TABLE} (id, tag, hash, down_sql, applied_at) VALUES (?, ?, ?, ?, ?)`,
            args: [migration.idx, migration.tag, migration.hash, migration.downSql ?? "", Date.now()],
          });
          return true;
        }, applyOptions(unitOptions));
        if (applied) appliedTags.push(migration.tag);
      }
      return appliedTags;
    },

    async down(n = 1, unitOptions) {
      if (!Number.isInteger(n) || n < 0) throw new RangeError("n must be a non-negative integer");
      const reverted: string[] = [];
      for (let i = 0; i < n; i++) {
        const tag = await db.write(async (_tx, ctx) => {
          if (!(await hasMigrationsTable(ctx.transaction))) return undefined;
          const last = await ctx.transaction.execute(
            `SELECT id, tag, down_sql FROM ${SCHEMA_MIGRATIONS_TABLE} ORDER BY id DESC LIMIT 1`,
          );
          const row = last.rows[0];
          if (row === undefined) return undefined;
          await refuseUnsafeDrops(ctx.transaction, String(row.tag), String(row.down_sql));
          await runScript(ctx.transaction, String(row.down_sql));
          await ctx.transaction.execute({
            sql: `DELETE FROM ${SCHEMA_MIGRATIONS_TABLE} WHERE id = ?`,
            args: [Number(row.id)],
          });
          return String(row.tag);
        }, applyOptions(unitOptions));
        if (tag === undefined) break;
        reverted.push(tag);
      }
      return reverted;
    },

    async status() {
      const local = readMigrationsFolder(folder);
      const applied = await db.read(async (_tx, ctx) => readApplied(ctx.transaction));
      const byIdx = new Map(applied.map((a) => [a.idx, a]));
      const entries: MigrationStatusEntry[] = local.map((m) => {
        const record = byIdx.get(m.idx);
        if (record === undefined || record.tag !== m.tag) return { idx: m.idx, tag: m.tag, state: "pending" };
        return {
          idx: m.idx,
          tag: m.tag,
          state: record.hash === m.hash ? "applied" : "changed",
          appliedAt: record.appliedAt,
        };
      });
      for (const record of applied) {
        if (local[record.idx]?.tag !== record.tag) {
          entries.push({ idx: record.idx, tag: record.tag, state: "unknown", appliedAt: record.appliedAt });
        }
      }
      return entries;
    },
  };
}

/** Applies pending migrations; what a service runs at start. Returns the tags applied. */
export function migrate(db: MigratableDatabase, migrationsFolder: string): Promise<string[]> {
  return createMigrator(db, { migrationsFolder }).up();
}
