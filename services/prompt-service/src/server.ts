import {
  type AuditTrail,
  createAdminService,
  createMaintenance,
  type Maintenance,
  unkeyedAuditTrail,
} from "@autoforge/admin";
import { PromptService } from "@autoforge/contracts/prompt/v1";
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
import { promptServiceAccess } from "./access.js";
import { defaultPromotionGateSubjects } from "./config.js";
import type { Schema } from "./db/schema.js";
import { createEventNotifier, type EventNotifier } from "./event-notifier.js";
import type { HandlerDeps, PromptTx } from "./handlers/common.js";
import { createEventHandlers } from "./handlers/events.js";
import { createProjectHandlers } from "./handlers/projects.js";
import { createPromptCrudHandlers } from "./handlers/prompts.js";
import { createRenderHandlers } from "./handlers/render.js";
import { createTemplateHandlers } from "./handlers/templates.js";
import { createVersionHandlers } from "./handlers/versions.js";
import { promptValidators } from "./validators.js";

export interface PromptServerDeps {
  readonly db: Database<Schema>;
  readonly auth: AuthConfig | { readonly authenticate: Authenticator };
  readonly logger: Logger;
  readonly limits?: ServerLimits;
  /** The process's Prometheus registry (RPC, database and maintenance metrics), served at GET /metrics. Default: a new one. */
  readonly metrics?: Registry;
  /** CORS for browser clients on the Connect port (`CORS_ALLOWED_ORIGINS`). Default: none. */
  readonly cors?: CorsOptions | undefined;
  /** The audit chain's keys and checkpoints (main.ts: `createAuditTrail` from AUDIT_*). Default: the unkeyed chain. */
  readonly audit?: AuditTrail;
  /** WatchPromptEvents' poll for events committed by other processes. Default 1,000 ms. */
  readonly watchPollIntervalMs?: number;
  /**
   * The promotion gate's token subjects (`PROMOTION_GATE_SUBJECTS`): the only callers that may move a gated
   * label. Default: `evaluation-service`.
   */
  readonly promotionGateSubjects?: readonly string[];
}

export interface PromptServer {
  /** Not listening yet: call `listen`. */
  readonly server: Server;
  readonly notifier: EventNotifier;
  readonly maintenance: Maintenance;
}

/** Every PromptService handler, written once against protobuf-es types; served on both ports by the kit. */
export function createPromptHandlers(deps: HandlerDeps): ServiceHandlers<typeof PromptService, PromptTx> {
  return {
    ...createPromptCrudHandlers(deps),
    ...createVersionHandlers(deps),
    ...createTemplateHandlers(deps),
    ...createRenderHandlers(deps),
    ...createProjectHandlers(deps),
    ...createEventHandlers(deps),
  };
}

/** Wires PromptService + AdminService (this database only) to the server kit. */
export function createPromptServer(deps: PromptServerDeps): PromptServer {
  const notifier = createEventNotifier();
  const metrics = deps.metrics ?? new Registry();
  const audit = deps.audit ?? unkeyedAuditTrail;
  const maintenance = createMaintenance(deps.db, { logger: deps.logger, metrics, appendAudit: audit.append });
  const handlerDeps: HandlerDeps = {
    db: deps.db,
    notifier,
    watchPollIntervalMs: deps.watchPollIntervalMs ?? 1_000,
    promotionGateSubjects: deps.promotionGateSubjects ?? defaultPromotionGateSubjects,
  };
  const server = createServer<PromptTx>({
    services: [
      defineService({
        service: PromptService,
        handlers: createPromptHandlers(handlerDeps),
        validators: promptValidators,
        access: promptServiceAccess,
      }),
      createAdminService({
        db: deps.db,
        maintenance,
        audit: { keys: audit.keys, checkpoints: audit.checkpointer },
      }),
    ],
    auth: deps.auth,
    database: { db: deps.db, appendAudit: audit.append },
    logger: deps.logger,
    ...(deps.limits === undefined ? {} : { limits: deps.limits }),
    metrics,
    cors: deps.cors,
  });
  return { server, notifier, maintenance };
}
