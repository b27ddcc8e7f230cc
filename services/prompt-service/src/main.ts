import { createDatabase, migrate } from "@autoforge/db";
import { createTokenSigner, runUntilSignal } from "@autoforge/server";
import { pino } from "pino";
import { ConfigError, loadConfig } from "./config.js";
import { migrationsFolder } from "./db/migrations-folder.js";
import { schema } from "./db/schema.js";
import { createPromptServer } from "./server.js";

/** config -> database -> migrate -> server -> listen; SIGTERM/SIGINT drain and close. */
async function run(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel, base: { service: "prompt-service" } });
  const db = await createDatabase({
    url: config.database.url,
    authToken: config.database.authToken,
    syncUrl: config.database.syncUrl,
    syncIntervalMs: config.database.syncIntervalMs,
    schema,
    logger,
  });
  const applied = await migrate(db, migrationsFolder);
  logger.info({ applied, database: config.database.url.replace(/\/\/[^@/]*@/, "//***@") }, "database ready");

  const claims = { issuer: config.issuer, audience: config.audience };
  const auth =
    config.auth.kind === "secret"
      ? { secret: config.auth.secret, ...claims }
      : { jwksUrl: config.auth.jwksUrl, ...claims };
  const { server } = createPromptServer({ db, auth, logger });
  await server.listen({ host: config.host, grpcPort: config.grpcPort, connectPort: config.connectPort });

  if (config.auth.kind === "secret" && config.auth.generated) {
    const signer = createTokenSigner(config.auth.secret, {
      ...(config.issuer === undefined ? {} : { issuer: config.issuer }),
      ...(config.audience === undefined ? {} : { audience: config.audience }),
    });
    const tokens = {
      user: await signer.signToken({ sub: "dev-user", roles: ["user"], ttl: "12h" }),
      publisher: await signer.signToken({ sub: "dev-user", roles: ["user", "publisher"], ttl: "12h" }),
      service: await signer.signToken({ sub: "evaluation-service", roles: ["service"], ttl: "12h" }),
      admin: await signer.signToken({ sub: "dev-admin", roles: ["admin"], ttl: "12h" }),
    };
    logger.warn({ tokens }, "AUTH_JWT_SECRET not set: generated a secret for this run; dev tokens (12h)");
  }
  runUntilSignal(server, { onStopped: () => db.close() });
}

run().catch((e: unknown) => {
  if (e instanceof ConfigError) {
    console.error(`prompt-service: bad configuration: ${e.message}`);
  } else {
    console.error("prompt-service: failed to start", e);
  }
  process.exit(1);
});
