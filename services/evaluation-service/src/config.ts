import {
  ConfigError,
  type Env,
  optionalEnv,
  readServiceConfig,
  type ServiceConfig,
  urlEnv,
} from "@autoforge/server";

export { ConfigError } from "@autoforge/server";

/**
 * The one reader of process.env (main.ts passes it in). Parsed once, typed, frozen; fails naming the variable.
 * The variables shared with prompt-service (architecture §7a, incl. DATABASE_ENCRYPTION_KEY) are parsed by the
 * server kit; PROMPT_SERVICE_URL and SERVICE_TOKEN are this service's own.
 */
export interface Config extends ServiceConfig {
  /** PromptService's gRPC endpoint (h2c or TLS). */
  readonly promptServiceUrl: string;
  /**
   * evaluation-service's own token for the event feed (role `service`): given, or minted from the HS256 secret
   * when running locally (not with NODE_ENV=production, and not with AUTH_JWKS_URL: we cannot sign those).
   */
  readonly serviceToken: { readonly kind: "given"; readonly token: string } | { readonly kind: "mint" };
}

export function loadConfig(env: Env): Config {
  const base = readServiceConfig(env, {
    grpcPort: 50052,
    connectPort: 8082,
    databaseFile: "./data/evaluation-service.db",
  });
  const promptServiceUrl = urlEnv(env, "PROMPT_SERVICE_URL", ["http:", "https:"]) ?? "http://127.0.0.1:50051";
  const token = optionalEnv(env, "SERVICE_TOKEN");
  let serviceToken: Config["serviceToken"];
  if (token !== undefined) {
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
      throw new ConfigError("SERVICE_TOKEN", "must be a JWT (header.payload.signature)");
    }
    serviceToken = { kind: "given", token };
  } else if (base.auth.kind === "jwks") {
    throw new ConfigError(
      "SERVICE_TOKEN",
      "is required with AUTH_JWKS_URL (this service cannot sign its own token)",
    );
  } else if (env.NODE_ENV === "production") {
    throw new ConfigError("SERVICE_TOKEN", "is required when NODE_ENV=production");
  } else {
    serviceToken = { kind: "mint" };
  }
  return Object.freeze({ ...base, promptServiceUrl, serviceToken: Object.freeze(serviceToken) });
}
