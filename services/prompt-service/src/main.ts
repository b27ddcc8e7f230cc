import { createAuditTrail, createMaintenanceScheduler } from "@autoforge/admin";
import { createDatabase, migrate } from "@autoforge/db";
import {
  createDatabaseMetrics,
  createProcessMetricsRegistry,
  createServiceLogger,
  createTokenSigner,
  ListenError,
  runUntilSignal,
  serviceAuthConfig,
  startTracing,
} from "@autoforge/server";
import { ConfigError, loadConfig } from "./config.js";
import { migrationsFolder } from "./db/migrations-folder.js";
import { schema } from "./db/schema.js";
import { createPromptServer } from "./server.js";

/** config -> metrics -> database -> migrate -> server -> listen -> maintenance schedule; SIGTERM/SIGINT drain and close. */
async function run(): Promise<void> {
  const config = loadConfig(process.env);
  // off unless the standard OTEL_* variables ask for traces (docs/observability.md)
  const tracing = startTracing({ serviceName: "prompt-service", env: process.env });
  const logger = createServiceLogger({ service: "prompt-service", level: config.logLevel });
  // one registry per process: RPC, database and maintenance metrics, served at GET /metrics on the Connect port
  const metrics = createProcessMetricsRegistry();
  const dbMetrics = createDatabaseMetrics(metrics);
  const db = await createDatabase({ ...config.database, schema, logger, ...dbMetrics.hooks });
  dbMetrics.collectFrom(db);
  const applied = await migrate(db, migrationsFolder);
  logger.info({ applied, database: config.database.url.replace(/\/\/[^@/]*@/, "//***@") }, "database ready");

  // HMAC keys and signed checkpoints of the audit chain (docs/audit.md); unset: the unkeyed chain
  const audit = createAuditTrail(db, config.audit, { chain: "prompt-service", logger });
  await audit.start();
  const auth = serviceAuthConfig(config);
  const { server, maintenance } = createPromptServer({
    db,
    auth,
    logger,
    metrics,
    audit,
    cors: config.cors,
    promotionGateSubjects: config.promotionGateSubjects,
  });
  await server.listen({ host: config.host, grpcPort: config.grpcPort, connectPort: config.connectPort });
  // the same maintenance object as AdminService.RunMaintenance: never two runs at once
  const scheduler = createMaintenanceScheduler({ maintenance, intervals: config.maintenance, logger });
  await scheduler.start();

  if (config.auth.kind === "secret" && config.auth.generated) {
    const signer = createTokenSigner(config.auth.secret, {
      issuer: config.issuer,
      audience: config.audience,
    });
    const tokens = {
      user: await signer.signToken({ sub: "dev-user", roles: ["user"], ttl: "12h" }),
      publisher: await signer.signToken({ sub: "dev-user", roles: ["user", "publisher"], ttl: "12h" }),
      service: await signer.signToken({
        sub: "evaluation-service",
        roles: ["service"],
        projects: "*",
        ttl: "12h",
      }),
      admin: await signer.signToken({ sub: "dev-admin", roles: ["admin"], ttl: "12h" }),
    };
    logger.warn({ tokens }, "AUTH_JWT_SECRET not set: generated a secret for this run; dev tokens (12h)");
  }
  runUntilSignal(server, {
    onStopped: async () => {
      await scheduler.stop();
      await audit.stop();
      await db.close();
      await tracing?.shutdown();
    },
  });
}

run().catch((e: unknown) => {
  if (e instanceof ConfigError) {
    console.error(`prompt-service: bad configuration: ${e.message}`);
  } else if (e instanceof ListenError) {
    console.error(`prompt-service: cannot listen: ${e.message}`);
  } else {
    console.error("prompt-service: failed to start", e);
  }
  process.exit(1);
});
