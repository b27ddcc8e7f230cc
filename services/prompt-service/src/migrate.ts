import { createDatabase, MIGRATE_EXIT, MigrationError, runMigrationCommand } from "@autoforge/db";
import { ConfigError, loadConfig } from "./config.js";
import { promptInvariants } from "./db/invariants.js";
import { migrationsFolder } from "./db/migrations-folder.js";

/**
 * `npm run migrate -w services/prompt-service -- [up | down [n] | status | check]` against DATABASE_URL
 * (+ DATABASE_AUTH_TOKEN / DATABASE_ENCRYPTION_KEY). `check` dry-runs the pending migrations on a copy and exits 2 when unsafe.
 */
async function run(argv: readonly string[]): Promise<number> {
  const config = loadConfig(process.env);
  const db = await createDatabase(config.database);
  try {
    return await runMigrationCommand(db, argv, {
      migrationsFolder,
      invariants: promptInvariants,
      encryptionKey: config.database.encryptionKey,
    });
  } finally {
    await db.close();
  }
}

// exitCode, not exit(): the report may still be in stdout's buffer when it goes to a pipe
run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof ConfigError) console.error(`prompt-service migrate: bad configuration: ${e.message}`);
    else if (e instanceof MigrationError) console.error(`prompt-service migrate: ${e.message}`);
    else console.error("prompt-service migrate: failed", e);
    process.exitCode = MIGRATE_EXIT.error;
  },
);
