import { createDatabase, runMigrateCli } from "@autoforge/db";
import { loadConfig } from "./config.js";
import { evaluationInvariants } from "./db/invariants.js";
import { migrationsFolder } from "./db/migrations-folder.js";

/**
 * `npm run migrate -w services/evaluation-service -- [up | down [n] | status | check [--in-place]]` against
 * DATABASE_URL (+ DATABASE_AUTH_TOKEN / DATABASE_ENCRYPTION_KEY). `check` dry-runs the pending migrations on a
 * copy and exits 2 when unsafe.
 */
await runMigrateCli(process.argv.slice(2), {
  name: "evaluation-service",
  config: () => {
    const config = loadConfig(process.env);
    return {
      url: config.database.url,
      open: () => createDatabase(config.database),
      encryptionKey: config.database.encryptionKey,
    };
  },
  migrationsFolder,
  invariants: evaluationInvariants,
});
