import {
  type AuditTrail,
  createAdminService,
  createMaintenance,
  type Maintenance,
  unkeyedAuditTrail,
} from "@autoforge/admin";
import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { DatasetService } from "@autoforge/contracts/evaluation/v1/datasets";
import { PromotionService } from "@autoforge/contracts/evaluation/v1/promotions";
import type { Database } from "@autoforge/db";
import {
  type AuthConfig,
  type Authenticator,
  type CorsOptions,
  createServer,
  defineService,
  type Server,
  type ServerLimits,
  type ServiceHandlers,
} from "@autoforge/server";
import type { Logger } from "pino";
import { Registry } from "prom-client";
import { evaluationAccess } from "./access.js";
import { datasetAccess } from "./dataset-access.js";
import { datasetValidators } from "./dataset-validators.js";
import { listConsumerOffsets } from "./db/repository.js";
import type { Schema } from "./db/schema.js";
import type { EvaluationTx, HandlerDeps } from "./handlers/common.js";
import { createCompareHandlers } from "./handlers/compare.js";
import { createCompareEvaluationsHandlers } from "./handlers/compare-evaluations.js";
import { createDatasetHandlers } from "./handlers/datasets.js";
import { createEvaluationHandlers } from "./handlers/evaluations.js";
import { createItemStatsHandlers } from "./handlers/item-stats.js";
import { createPromotionHandlers } from "./handlers/promotions.js";
import { createResultStreamHandlers } from "./handlers/result-stream.js";
import { createResultHandlers } from "./handlers/results.js";
import { promotionAccess } from "./promotion-access.js";
import { promotionValidators } from "./promotion-validators.js";
import type { PromptClient } from "./prompt-client.js";
import { evaluationValidators } from "./validators.js";

export interface EvaluationServerDeps {
  readonly db: Database<Schema>;
  /** The PromptService client, created once at startup (main.ts) and shared by every call. */
  readonly prompts: PromptClient;
  readonly auth: AuthConfig | { readonly authenticate: Authenticator };
  readonly logger: Logger;
  readonly limits?: ServerLimits;
  /** The process's Prometheus registry (RPC, database and maintenance metrics), served at GET /metrics. Default: a new one. */
  readonly metrics?: Registry;
  /** CORS for browser clients on the Connect port (`CORS_ALLOWED_ORIGINS`). Default: none. */
  readonly cors?: CorsOptions | undefined;
  /** The audit chain's keys and checkpoints (main.ts: `createAuditTrail` from AUDIT_*). Default: the unkeyed chain. */
  readonly audit?: AuditTrail;
  /** This service's own token for prompt-service: the promotion gate moves labels with it (main.ts: SERVICE_TOKEN). */
  readonly gateToken?: () => Promise<string>;
  readonly now?: () => number;
}

export interface EvaluationServer {
  /** Not listening yet: call `listen`. */
  readonly server: Server;
  readonly maintenance: Maintenance;
}

/** Every EvaluationService handler, written once against protobuf-es types; served on both ports by the kit. */
export function createEvaluationServiceHandlers(
  deps: HandlerDeps,
): ServiceHandlers<typeof EvaluationService, EvaluationTx> {
  return {
    ...createEvaluationHandlers(deps),
    ...createResultHandlers(deps),
    ...createResultStreamHandlers(deps),
    ...createItemStatsHandlers(deps),
    ...createCompareHandlers(deps),
    ...createCompareEvaluationsHandlers(deps),
  };
}

/**
 * Wires EvaluationService, DatasetService, PromotionService and AdminService (this database only) to the server
 * kit: all four on both ports.
 */
export function createEvaluationServer(deps: EvaluationServerDeps): EvaluationServer {
  const metrics = deps.metrics ?? new Registry();
  const audit = deps.audit ?? unkeyedAuditTrail;
  const maintenance = createMaintenance(deps.db, { logger: deps.logger, metrics, appendAudit: audit.append });
  const handlerDeps: HandlerDeps = {
    db: deps.db,
    prompts: deps.prompts,
    ...(deps.gateToken === undefined ? {} : { gateToken: deps.gateToken }),
    ...(deps.now === undefined ? {} : { now: deps.now }),
  };
  const server = createServer<EvaluationTx>({
    services: [
      defineService({
        service: EvaluationService,
        handlers: createEvaluationServiceHandlers(handlerDeps),
        validators: evaluationValidators,
        access: evaluationAccess,
      }),
      defineService({
        service: DatasetService,
        handlers: createDatasetHandlers(handlerDeps),
        validators: datasetValidators,
        access: datasetAccess,
      }),
      defineService({
        service: PromotionService,
        handlers: createPromotionHandlers(handlerDeps),
        validators: promotionValidators,
        access: promotionAccess,
        // decide and record, move the label in prompt-service, record what became of the move
        stepwise: ["promotePromptVersion"],
      }),
      // GetDatabaseStats also reports the prompt event consumer's lag
      createAdminService({
        db: deps.db,
        maintenance,
        audit: { keys: audit.keys, checkpoints: audit.checkpointer },
        consumers: (tx) => listConsumerOffsets(tx),
      }),
    ],
    auth: deps.auth,
    database: { db: deps.db, appendAudit: audit.append },
    logger: deps.logger,
    ...(deps.limits === undefined ? {} : { limits: deps.limits }),
    metrics,
    cors: deps.cors,
  });
  return { server, maintenance };
}
