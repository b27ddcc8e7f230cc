import { fileURLToPath } from "node:url";
import { ConfigError, type Env, optionalEnv, readServiceConfig, type ServiceConfig } from "@autoforge/server";

export { ConfigError } from "@autoforge/server";

/** The one reader of process.env (main.ts passes it in). Parsed once, typed, frozen; fails naming the variable. */
export interface Config extends ServiceConfig {
  /**
   * `PROMOTION_GATE_SUBJECTS`: the token subjects of the promotion gate, the only callers that may move a gated
   * label (a service principal of the project, or an all-projects one, with one of these subjects).
   */
  readonly promotionGateSubjects: readonly string[];
}

/** evaluation-service's PromotionService.PromotePromptVersion calls SetPromptLabel with its own token. */
export const defaultPromotionGateSubjects: readonly string[] = Object.freeze(["evaluation-service"]);

function promotionGateSubjectsEnv(env: Env): readonly string[] {
  const raw = optionalEnv(env, "PROMOTION_GATE_SUBJECTS");
  if (raw === undefined) return defaultPromotionGateSubjects;
  const subjects = raw.split(",").map((s) => s.trim());
  if (subjects.some((s) => s === "")) {
    throw new ConfigError("PROMOTION_GATE_SUBJECTS", "must be a comma-separated list of token subjects");
  }
  return Object.freeze([...new Set(subjects)]);
}

/**
 * Variables of architecture §7a, shared with the other service (the server kit parses them), and
 * PROMOTION_GATE_SUBJECTS, this service's own. Without AUTH_JWT_SECRET and AUTH_JWKS_URL a random secret is
 * generated for local use (main.ts prints ready tokens), except with NODE_ENV=production, where that is an error.
 */
export function loadConfig(env: Env): Config {
  // DATABASE_ENCRYPTION_KEY is not read here (yet): evaluation-service only.
  const base = readServiceConfig(env, {
    grpcPort: 50051,
    connectPort: 8081,
    // <repository>/data, where `npm start` keeps it, from whichever folder the service or `npm run migrate` runs
    // (src/ and dist/ are both two levels below the repository)
    databaseFile: fileURLToPath(new URL("../../../data/prompt-service.db", import.meta.url)),
  });
  return Object.freeze({ ...base, promotionGateSubjects: promotionGateSubjectsEnv(env) });
}
