import { createDatabase, migrate } from "@autoforge/db";
import { createTokenSigner, runUntilSignal, serviceAuthConfig } from "@autoforge/server";
import { pino } from "pino";
import { ConfigError, loadConfig } from "./config.js";
import { migrationsFolder } from "./db/migrations-folder.js";
import { schema } from "./db/schema.js";
import { createPromptServer } from "./server.js";

/** config -> database -> migrate -> server -> listen; SIGTERM/SIGINT drain and close. */
async function run(): Promise<void> {
  const config = loadConfig(process.env);
  const logger = pino({ level: config.logLevel, base: { service: "prompt-service" } });
  const db = await createDatabase({ ...config.database, schema, logger });
  const applied = await migrate(db, migrationsFolder);
  logger.info({ applied, database: config.database.url.replace(/\/\/[^@/]*@/, "//***@") }, "database ready");

  const auth = serviceAuthConfig(config);
  const { server } = createPromptServer({ db, auth, logger });
  await server.listen({ host: config.host, grpcPort: config.grpcPort, connectPort: config.connectPort });

  if (config.auth.kind === "secret" && config.auth.generated) {
    const signer = createTokenSigner(config.auth.secret, {
      issuer: config.issuer,
      audience: config.audience,
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
