import {
  createDatabase,
  MIGRATE_EXIT,
  MigrationError,
  type MigrationInvariant,
  runMigrationCommand,
} from "@autoforge/db";
import { ConfigError, loadConfig } from "./config.js";
import { migrationsFolder } from "./db/migrations-folder.js";

/**
 * Rules of evaluation-service's data that `migrate check` verifies on a migrated copy (each query must return
 * no rows). CHECK constraints cover each row; these cover what triggers maintain across rows, which a
 * migration (running below the triggers, or rebuilding a table) could break.
 */
const evaluationInvariants: readonly MigrationInvariant[] = [
  {
    name: "test_count and passed_count match the evaluation's test results",
    sql: `SELECT e.id, e.test_count, e.passed_count,
            (SELECT count(*) FROM test_results r WHERE r.evaluation_id = e.id) AS results,
            (SELECT count(*) FROM test_results r WHERE r.evaluation_id = e.id AND r.passed = 1) AS passed
          FROM evaluations e
          WHERE e.test_count <> (SELECT count(*) FROM test_results r WHERE r.evaluation_id = e.id)
             OR e.passed_count <> (SELECT count(*) FROM test_results r WHERE r.evaluation_id = e.id AND r.passed = 1)`,
  },
  {
    name: "an evaluation with test results was started",
    sql: `SELECT e.id, e.status FROM evaluations e
          WHERE e.started_at IS NULL AND EXISTS (SELECT 1 FROM test_results r WHERE r.evaluation_id = e.id)`,
  },
];

/**
 * `npm run migrate -w services/evaluation-service -- [up | down [n] | status | check]` against DATABASE_URL
 * (+ DATABASE_AUTH_TOKEN / DATABASE_ENCRYPTION_KEY). `check` dry-runs the pending migrations on a copy and
 * exits 2 when unsafe.
 */
async function run(argv: readonly string[]): Promise<number> {
  const config = loadConfig(process.env);
  const db = await createDatabase(config.database);
  try {
    return await runMigrationCommand(db, argv, {
      migrationsFolder,
      invariants: evaluationInvariants,
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
    if (e instanceof ConfigError)
      console.error(`evaluation-service migrate: bad configuration: ${e.message}`);
    else if (e instanceof MigrationError) console.error(`evaluation-service migrate: ${e.message}`);
    else console.error("evaluation-service migrate: failed", e);
    process.exitCode = MIGRATE_EXIT.error;
  },
);
