import { fileURLToPath } from "node:url";
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
   * evaluation-service's own token for the event feed: the all-projects service principal (`sub`
   * evaluation-service, `roles: ["service"]`, `projects: "*"`; mint it with `node scripts/mint-token.mjs --sub
   * evaluation-service --roles service --all-projects`). Given, or minted from the HS256 secret when running
   * locally (not with NODE_ENV=production, and not with AUTH_JWKS_URL: we cannot sign those). A legacy
   * `roles: ["service"]` token without `projects: "*"` is accepted but sees only its own personal project's
   * feed, so purged prompts of every other project would keep their evaluations.
   */
  readonly serviceToken:
    | {
        readonly kind: "given";
        readonly token: string;
        /**
         * Whether the token's (unverified) payload claims `projects: "*"`. Not a security check (prompt-service
         * verifies the token); main.ts warns at start when it is false, since the consumer would then miss
         * the events of every other project.
         */
        readonly allProjects: boolean;
      }
    | { readonly kind: "mint" };
}

/** The `projects` claim of a JWT's payload, read without verifying it (for a start-up warning only). */
function claimsAllProjects(token: string): boolean {
  try {
    const payload: unknown = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8"));
    return (
      typeof payload === "object" && payload !== null && (payload as { projects?: unknown }).projects === "*"
    );
  } catch {
    return false;
  }
}

export function loadConfig(env: Env): Config {
  const base = readServiceConfig(env, {
    grpcPort: 50052,
    connectPort: 8082,
    // <repository>/data, where `npm start` keeps it, from whichever folder the service or `npm run migrate` runs
    // (src/ and dist/ are both two levels below the repository)
    databaseFile: fileURLToPath(new URL("../../../data/evaluation-service.db", import.meta.url)),
  });
  const promptServiceUrl = urlEnv(env, "PROMPT_SERVICE_URL", ["http:", "https:"]) ?? "http://127.0.0.1:50051";
  const token = optionalEnv(env, "SERVICE_TOKEN");
  let serviceToken: Config["serviceToken"];
  if (token !== undefined) {
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
      throw new ConfigError("SERVICE_TOKEN", "must be a JWT (header.payload.signature)");
    }
    serviceToken = { kind: "given", token, allProjects: claimsAllProjects(token) };
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
