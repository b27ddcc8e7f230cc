import { createDatabase, createMigrator } from "@autoforge/db";
import { ConfigError, loadConfig } from "./config.js";
import { migrationsFolder } from "./db/migrations-folder.js";

/** `npm run migrate -w services/prompt-service -- [up | down <n> | status]` against DATABASE_URL. */
async function run(argv: readonly string[]): Promise<void> {
  const config = loadConfig(process.env);
  const db = await createDatabase({
    url: config.database.url,
    authToken: config.database.authToken,
    syncUrl: config.database.syncUrl,
  });
  try {
    const migrator = createMigrator(db, { migrationsFolder });
    const [command = "up", arg] = argv;
    if (command === "up") console.log(JSON.stringify({ applied: await migrator.up() }));
    else if (command === "down")
      console.log(JSON.stringify({ reverted: await migrator.down(Number(arg ?? "1")) }));
    else if (command === "status") console.log(JSON.stringify(await migrator.status(), null, 2));
    else throw new Error(`unknown command ${command}: use up, down <n> or status`);
  } finally {
    await db.close();
  }
}

run(process.argv.slice(2)).catch((e: unknown) => {
  console.error(e instanceof ConfigError ? `bad configuration: ${e.message}` : e);
  process.exit(1);
});
