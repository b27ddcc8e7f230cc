import { AdminService } from "@autoforge/contracts/admin/v1";
import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { DatasetService } from "@autoforge/contracts/evaluation/v1/datasets";
import { PromotionService } from "@autoforge/contracts/evaluation/v1/promotions";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { type Client, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createPromptCache, type PromptCache, type PromptCacheOptions } from "./cache/index.js";
import { createPolicyTransport } from "./policy-transport.js";
import type { RetryOptions } from "./retry.js";
import {
  createTokenProvider,
  type TokenProvider,
  type TokenProviderOptions,
  type TokenSource,
} from "./token.js";

/** Which service a transport reaches (AdminService is served by each service, for its own database). */
export type ServiceName = "prompt" | "evaluation" | "admin";

export interface AutoforgeClientOptions {
  /** Any connect-es Transport: `@autoforge/client/node` or `/web` make them; used for every service... */
  transport: Transport;
  /** ...unless a service has its own here (prompt-service and evaluation-service listen on their own ports). */
  transports?: Partial<Record<ServiceName, Transport>>;
  /** A static token, or a function called lazily and again before the token expires. */
  token: TokenSource | TokenProvider;
  /** Deadline of a unary call that passes no `timeoutMs` of its own (ms). Default 10,000; 0: none. */
  timeoutMs?: number;
  /** Retry rules; `false` turns retries off. */
  retry?: RetryOptions | false;
  /** Connect interceptors run on every attempt, after the token header is set. */
  interceptors?: Interceptor[];
  /** Options of `client.prompts` (the prompt cache), but its `client`, which is `promptService`. */
  cache?: Omit<PromptCacheOptions, "client">;
  /** Refresh thresholds of a function token (`now` for tests). */
  tokenOptions?: TokenProviderOptions;
}

export interface AutoforgeClient {
  readonly promptService: Client<typeof PromptService>;
  readonly evaluationService: Client<typeof EvaluationService>;
  /** Datasets and their versions (evaluation-service). */
  readonly datasetService: Client<typeof DatasetService>;
  /** The promotion gate (evaluation-service): label policies, PromotePromptVersion, the decisions. */
  readonly promotionService: Client<typeof PromotionService>;
  readonly adminService: Client<typeof AdminService>;
  /** The prompt cache over `promptService`, created on first use. */
  readonly prompts: PromptCache;
  /** The token provider every call uses. */
  readonly tokens: TokenProvider;
  /** Stops the prompt cache (its streams; its store is written once more). Transports given by the caller are
   * the caller's to close. */
  close(): Promise<void>;
}

/**
 * Typed clients of the services over the given transport(s), every call with the client's policies
 * (see createPolicyTransport): a bearer token from `token`, a default deadline for unary calls, request ids for
 * keyed creates and retries by the methods' idempotency. Transport-agnostic: runs wherever connect-es runs.
 */
export function createAutoforgeClient(options: AutoforgeClientOptions): AutoforgeClient {
  const tokens = isTokenProvider(options.token)
    ? options.token
    : createTokenProvider(options.token, options.tokenOptions);
  const wrap = (service: ServiceName) =>
    createPolicyTransport(options.transports?.[service] ?? options.transport, {
      tokens,
      ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      ...(options.retry === undefined ? {} : { retry: options.retry }),
      ...(options.interceptors === undefined ? {} : { interceptors: options.interceptors }),
    });
  const promptService = createClient(PromptService, wrap("prompt"));
  const evaluationService = createClient(EvaluationService, wrap("evaluation"));
  const datasetService = createClient(DatasetService, wrap("evaluation"));
  const promotionService = createClient(PromotionService, wrap("evaluation"));
  const adminService = createClient(AdminService, wrap("admin"));
  let cache: PromptCache | undefined;
  return {
    promptService,
    evaluationService,
    datasetService,
    promotionService,
    adminService,
    get prompts() {
      cache ??= createPromptCache({ ...options.cache, client: promptService });
      return cache;
    },
    tokens,
    async close() {
      await cache?.close();
    },
  };
}

function isTokenProvider(token: TokenSource | TokenProvider): token is TokenProvider {
  return typeof token === "object" && token !== null && typeof token.token === "function";
}
