import { createAuditTrail, createMaintenanceScheduler } from "@autoforge/admin";
import { createDatabase, migrate } from "@autoforge/db";
import {
  allProjects,
  createDatabaseMetrics,
  createProcessMetricsRegistry,
  createServiceLogger,
  createTokenSigner,
  ListenError,
  runUntilSignal,
  serviceAuthConfig,
  startTracing,
} from "@autoforge/server";
import { type Config, ConfigError, loadConfig } from "./config.js";
import { createPromptEventConsumer, promptEventsConsumerName } from "./consumer.js";
import { migrationsFolder } from "./db/migrations-folder.js";
import { schema } from "./db/schema.js";
import { registerConsumerMetrics } from "./metrics.js";
import { createPromptClient } from "./prompt-client.js";
import { createEvaluationServer } from "./server.js";

/**
 * The service token for the event feed and the promotion gate: the configured one, or minted from the secret
 * (re-minted hourly): the all-projects service principal, which reads every project's events and moves the labels
 * a project gates.
 */
function serviceTokenProvider(config: Config): () => Promise<string> {
  if (config.serviceToken.kind === "given") {
    const token = config.serviceToken.token;
    return async () => token;
  }
  if (config.auth.kind !== "secret") throw new ConfigError("SERVICE_TOKEN", "is required with AUTH_JWKS_URL");
  const signer = createTokenSigner(config.auth.secret, { issuer: config.issuer, audience: config.audience });
  let cached: { token: string; until: number } | undefined;
  return async () => {
    if (cached === undefined || cached.until < Date.now()) {
      const token = await signer.signToken({
        sub: evaluationServiceSubject,
        roles: ["service"],
        projects: allProjects,
        ttl: "2h",
      });
      cached = { token, until: Date.now() + 60 * 60 * 1000 };
    }
    return cached.token;
  };
}

/** The subject of the all-projects token (the default `AuthConfig.allProjectsSubjects` of prompt-service). */
const evaluationServiceSubject = "evaluation-service";

/**
 * config -> metrics -> database -> migrate -> prompt client -> server -> listen -> event consumer -> maintenance
 * schedule; SIGTERM/SIGINT drain and close.
 */
async function run(): Promise<void> {
  const config = loadConfig(process.env);
  // off unless the standard OTEL_* variables ask for traces (docs/observability.md)
  const tracing = startTracing({ serviceName: "evaluation-service", env: process.env });
  const logger = createServiceLogger({ service: "evaluation-service", level: config.logLevel });
  // one registry per process: RPC, database, maintenance and consumer metrics, at GET /metrics on the Connect port
  const metrics = createProcessMetricsRegistry();
  const dbMetrics = createDatabaseMetrics(metrics);
  const db = await createDatabase({ ...config.database, schema, logger, ...dbMetrics.hooks });
  dbMetrics.collectFrom(db);
  const applied = await migrate(db, migrationsFolder);
  logger.info({ applied, database: config.database.url.replace(/\/\/[^@/]*@/, "//***@") }, "database ready");

  const prompts = createPromptClient({ baseUrl: config.promptServiceUrl, logger });
  // HMAC keys and signed checkpoints of the audit chain (docs/audit.md); unset: the unkeyed chain
  const audit = createAuditTrail(db, config.audit, { chain: "evaluation-service", logger });
  await audit.start();
  const auth = serviceAuthConfig(config);
  const serviceToken = serviceTokenProvider(config);
  const { server, maintenance } = createEvaluationServer({
    db,
    prompts,
    auth,
    logger,
    metrics,
    audit,
    cors: config.cors,
    // the promotion gate moves labels with the same service principal the event consumer reads the feed with
    gateToken: serviceToken,
  });
  // the server logs "listening" with both ports
  await server.listen({ host: config.host, grpcPort: config.grpcPort, connectPort: config.connectPort });
  logger.info({ promptService: config.promptServiceUrl }, "calling prompt-service");

  if (config.auth.kind === "secret" && config.auth.generated) {
    logger.warn(
      "AUTH_JWT_SECRET not set: generated a secret for this run; prompt-service will not accept tokens signed with it",
    );
  }
  if (config.serviceToken.kind === "given" && !config.serviceToken.allProjects) {
    logger.warn(
      'SERVICE_TOKEN does not claim projects "*": the event consumer will see only its own project\'s events, and ' +
        "purged prompts of other projects will keep their evaluations; mint an all-projects token with " +
        "`node scripts/mint-token.mjs --sub evaluation-service --roles service --all-projects`",
    );
  }
  const consumer = createPromptEventConsumer({
    db,
    prompts,
    token: serviceToken,
    logger,
    appendAudit: audit.append,
  });
  registerConsumerMetrics(metrics, consumer, promptEventsConsumerName);
  consumer.start();
  // the same maintenance object as AdminService.RunMaintenance: never two runs at once
  const scheduler = createMaintenanceScheduler({ maintenance, intervals: config.maintenance, logger });
  await scheduler.start();
  runUntilSignal(server, {
    onStopped: async () => {
      await scheduler.stop();
      await consumer.stop();
      await audit.stop();
      prompts.close();
      await db.close();
      await tracing?.shutdown();
    },
  });
}

run().catch((e: unknown) => {
  if (e instanceof ConfigError) {
    console.error(`evaluation-service: bad configuration: ${e.message}`);
  } else if (e instanceof ListenError) {
    console.error(`evaluation-service: cannot listen: ${e.message}`);
  } else {
    console.error("evaluation-service: failed to start", e);
  }
  process.exit(1);
});
