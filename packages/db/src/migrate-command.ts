import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { type CheckableDatabase, checkMigrations, type MigrationInvariant } from "./migration-check.js";
import { createMigrator, MigrationError } from "./migrator.js";

/**
 * The body of each service's `migrate` CLI (`npm run migrate -w services/<name> -- <command>`): the service
 * opens its database from its own config and passes it here with its migrations folder and invariants.
 */

export const MIGRATE_USAGE = `usage: migrate <command>
  up          apply every pending migration (what the service does at start)
  down [n]    revert the last n applied migrations (default 1), with the down SQL recorded when they were applied
  status      list migrations: applied / pending / changed / unknown
  check       apply the pending migrations to a copy of the database (VACUUM INTO) and verify it:
              integrity, foreign keys, the service's invariants, down + up again; the live database is not
              changed; exits 2 when unsafe (file: databases)
  check --in-place
              the same checks, applied to the database itself: only for a disposable copy such as a Turso
              branch (turso db create <name>-migration-check --from-db <name>; see the README)`;

/** Exit codes: 0 done / safe, 1 error or bad usage, 2 `check` found the migrations unsafe. */
export const MIGRATE_EXIT = { ok: 0, error: 1, unsafe: 2 } as const;

export interface MigrationCommandOptions {
  migrationsFolder: string;
  invariants?: readonly MigrationInvariant[];
  /** The database's encryption key, if any: `check` opens its (encrypted) copy with it. */
  encryptionKey?: string | undefined;
  /** Where the report goes (default console.log). */
  print?: (line: string) => void;
}

function isoTime(ms: number | undefined): string {
  return ms === undefined ? "" : new Date(ms).toISOString();
}

/** Runs one `migrate` command and returns the process exit code; errors other than bad usage are thrown. */
export async function runMigrationCommand(
  db: CheckableDatabase,
  argv: readonly string[],
  options: MigrationCommandOptions,
): Promise<number> {
  const print = options.print ?? ((line: string) => console.log(line));
  const migrator = createMigrator(db, { migrationsFolder: options.migrationsFolder });
  const [command = "up", ...rest] = argv;

  switch (command) {
    case "up": {
      const applied = await migrator.up();
      print(applied.length === 0 ? "up to date: nothing to apply" : `applied: ${applied.join(", ")}`);
      return MIGRATE_EXIT.ok;
    }
    case "down": {
      const raw = rest[0] ?? "1";
      if (!/^\d+$/.test(raw)) {
        print(`down: n must be a non-negative integer, got ${JSON.stringify(raw)}\n${MIGRATE_USAGE}`);
        return MIGRATE_EXIT.error;
      }
      const reverted = await migrator.down(Number(raw));
      print(reverted.length === 0 ? "nothing to revert" : `reverted: ${reverted.join(", ")}`);
      return MIGRATE_EXIT.ok;
    }
    case "status": {
      const entries = await migrator.status();
      if (entries.length === 0) print("no migrations in the folder");
      const width = Math.max(0, ...entries.map((e) => e.tag.length));
      for (const e of entries) {
        print(`${e.state.padEnd(8)} ${e.tag.padEnd(width)} ${isoTime(e.appliedAt)}`.trimEnd());
      }
      return MIGRATE_EXIT.ok;
    }
    case "check": {
      const inPlace = rest[0] === "--in-place";
      if (rest.length > (inPlace ? 1 : 0)) {
        print(`check: unexpected ${JSON.stringify(rest.join(" "))}\n${MIGRATE_USAGE}`);
        return MIGRATE_EXIT.error;
      }
      const invariants = options.invariants ?? [];
      const report = await checkMigrations(db, {
        migrationsFolder: options.migrationsFolder,
        invariants,
        inPlace,
        encryptionKey: options.encryptionKey,
      });
      print(
        inPlace
          ? "migration check in place: this database (a disposable branch) was migrated"
          : "migration check on a copy of the database (VACUUM INTO); the live database was not changed",
      );
      print(`pending:  ${report.pending.length === 0 ? "none" : report.pending.join(", ")}`);
      print(
        `checked:  migrate up, PRAGMA integrity_check, PRAGMA foreign_key_check, ${invariants.length} invariant(s)` +
          (report.pending.length > 0 ? ", down + up again" : ""),
      );
      if (report.safe) {
        print(report.pending.length === 0 ? "result:   OK (nothing to apply)" : "result:   SAFE to apply");
        return MIGRATE_EXIT.ok;
      }
      print(`result:   UNSAFE (${report.problems.length} problem(s))`);
      for (const problem of report.problems) print(`  - ${problem}`);
      return MIGRATE_EXIT.unsafe;
    }
    default:
      print(`unknown command ${JSON.stringify(command)}\n${MIGRATE_USAGE}`);
      return MIGRATE_EXIT.error;
  }
}

export interface MigrateCliOptions extends Omit<MigrationCommandOptions, "print" | "encryptionKey"> {
  /** The service's name, prefixed to error messages. */
  name: string;
  /**
   * Reads the service's config (a bad variable is reported by name): the database URL, how to open it, and the
   * encryption key, which `check` needs to open its copy.
   */
  config: () => {
    url: string;
    open: () => Promise<CheckableDatabase & { close(): Promise<void> }>;
    encryptionKey?: string | undefined;
  };
}

/** The local file of a `file:` URL (without its query), or undefined for remote databases. */
function localFile(url: string): string | undefined {
  if (!url.startsWith("file:")) return undefined;
  const path = url.slice("file:".length).split("?")[0] ?? "";
  return path.startsWith("//") ? fileURLToPath(url.split("?")[0] ?? url) : resolve(path);
}

/**
 * A service's whole `migrate` entry point: opens the database, runs the command in `argv`, closes, and sets
 * `process.exitCode` (not `exit()`: the report may still be in stdout's buffer when it goes to a pipe).
 */
export async function runMigrateCli(argv: readonly string[], options: MigrateCliOptions): Promise<void> {
  const { name, config, ...command } = options;
  try {
    const { url, open, encryptionKey } = config();
    const file = localFile(url);
    const [verb = "up"] = argv;
    if (file !== undefined && !existsSync(file)) {
      // opening would create an empty file: `up` says so, the others do not look at a database that is not there
      if (verb !== "up") {
        console.error(
          `${name} migrate: no database at ${file} (DATABASE_URL=${url}); ` +
            "`up` creates it, as the service does at its first start",
        );
        process.exitCode = MIGRATE_EXIT.error;
        return;
      }
      console.log(`no database at ${file}: creating a new, empty one`);
    } else if (file !== undefined) {
      console.log(`database: ${file}`);
    }
    const db = await open();
    try {
      process.exitCode = await runMigrationCommand(db, argv, { ...command, encryptionKey });
    } finally {
      await db.close();
    }
  } catch (e) {
    if (e instanceof Error && e.name === "ConfigError") {
      console.error(`${name} migrate: bad configuration: ${e.message}`);
    } else if (e instanceof MigrationError) {
      console.error(`${name} migrate: ${e.message}`);
    } else {
      console.error(`${name} migrate: failed`, e);
    }
    process.exitCode = MIGRATE_EXIT.error;
  }
}
