import { fileURLToPath } from "node:url";
import { type Env, readServiceConfig, type ServiceConfig } from "@autoforge/server";

export { ConfigError } from "@autoforge/server";

/** The one reader of process.env (main.ts passes it in). Parsed once, typed, frozen; fails naming the variable. */
export type Config = ServiceConfig;

/**
 * Variables of architecture §7a, all shared with the other service (the server kit parses them). Without
 * AUTH_JWT_SECRET and AUTH_JWKS_URL a random secret is generated for local use (main.ts prints ready tokens),
 * except with NODE_ENV=production, where that is an error.
 */
export function loadConfig(env: Env): Config {
  // DATABASE_ENCRYPTION_KEY is not read here (yet): evaluation-service only.
  return readServiceConfig(env, {
    grpcPort: 50051,
    connectPort: 8081,
    // <repository>/data, where `npm start` keeps it, from whichever folder the service or `npm run migrate` runs
    // (src/ and dist/ are both two levels below the repository)
    databaseFile: fileURLToPath(new URL("../../../data/prompt-service.db", import.meta.url)),
  });
}
