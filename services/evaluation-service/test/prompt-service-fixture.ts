/**
 * A REAL prompt-service for this service's tests, in process on port 0 with a database of its own on the test
 * engine (a temp file, sqld or an embedded replica: `TEST_DATABASE`).
 *
 * This is the only place evaluation-service code touches prompt-service code, and it is test-only: production
 * code talks to PromptService over gRPC exclusively. (The cross-service tests in test/e2e/ run both services as
 * separate OS processes instead.)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDatabase, type Database, migrate } from "@autoforge/db";
import { pino } from "pino";
import { onTestFinished } from "vitest";
import { databaseOptions, engineLocation } from "../../../test/support/engine.js";
import { migrationsFolder } from "../../prompt-service/src/db/migrations-folder.js";
import { schema } from "../../prompt-service/src/db/schema.js";
import { createPromptServer } from "../../prompt-service/src/server.js";

export interface PromptServiceFixture {
  /** gRPC base URL (PROMPT_SERVICE_URL). */
  readonly url: string;
  readonly grpcPort: number;
  // biome-ignore lint/suspicious/noExplicitAny: prompt-service's schema type stays opaque here
  readonly db: Database<any>;
  stop(): Promise<void>;
}

export async function startPromptServiceFixture(
  secret: string,
  options: { port?: number; dir?: string } = {},
): Promise<PromptServiceFixture> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), "eval-test-prompt-"));
  // the test engine's database (`TEST_DATABASE`); the same one again for the same `dir` (a restart)
  const db = await createDatabase({
    ...databaseOptions(await engineLocation(dir, "prompt-service")),
    schema,
  });
  await migrate(db, migrationsFolder);
  const app = createPromptServer({
    db,
    auth: { secret },
    logger: pino({ level: "silent" }),
    watchPollIntervalMs: 100,
  });
  const { grpcPort } = await app.server.listen({
    host: "127.0.0.1",
    grpcPort: options.port ?? 0,
    connectPort: 0,
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    await app.server.shutdown({ graceMs: 500 });
    await db.close();
  };
  onTestFinished(async () => {
    await stop();
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
  });
  return { url: `http://127.0.0.1:${grpcPort}`, grpcPort, db, stop };
}
