import { randomBytes } from "node:crypto";

/**
 * The one reader of process.env (main.ts passes it in). Parsed once, typed, frozen; fails naming the variable.
 * Copied from prompt-service (same variables, architecture §7a) plus DATABASE_ENCRYPTION_KEY, PROMPT_SERVICE_URL
 * and SERVICE_TOKEN.
 */
export interface Config {
  readonly host: string;
  readonly grpcPort: number;
  readonly connectPort: number;
  readonly database: {
    readonly url: string;
    readonly authToken: string | undefined;
    readonly syncUrl: string | undefined;
    readonly syncIntervalMs: number | undefined;
    /** libSQL page encryption of a `file:` database (or an embedded replica's local copy). */
    readonly encryptionKey: string | undefined;
  };
  readonly auth:
    | { readonly kind: "secret"; readonly secret: string; readonly generated: boolean }
    | { readonly kind: "jwks"; readonly jwksUrl: string };
  readonly issuer: string | undefined;
  readonly audience: string | undefined;
  /** PromptService's gRPC endpoint (h2c or TLS). */
  readonly promptServiceUrl: string;
  /**
   * evaluation-service's own token for the event feed (role `service`): given, or minted from the HS256 secret
   * when running locally (not with NODE_ENV=production, and not with AUTH_JWKS_URL: we cannot sign those).
   */
  readonly serviceToken: { readonly kind: "given"; readonly token: string } | { readonly kind: "mint" };
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
  ) {
    super(`${variable}: ${reason}`);
    this.name = "ConfigError";
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function optional(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function port(env: Env, name: string, fallback: number): number {
  const raw = optional(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535)
    throw new ConfigError(name, `must be a port number 0..65535, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

function url(env: Env, name: string, schemes: readonly string[]): string | undefined {
  const raw = optional(env, name);
  if (raw === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    throw new ConfigError(name, `must be a URL, got ${JSON.stringify(raw)}`);
  }
  if (!schemes.includes(parsed.protocol)) {
    throw new ConfigError(name, `must use one of ${schemes.join(" ")}, got ${parsed.protocol}`);
  }
  return raw;
}

const logLevels = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

/**
 * Variables of architecture §7a. Without AUTH_JWT_SECRET and AUTH_JWKS_URL a random secret is generated for
 * local use (main.ts prints ready tokens), except with NODE_ENV=production, where that is an error.
 */
export function loadConfig(env: Env): Config {
  const host = optional(env, "HOST") ?? "127.0.0.1";
  const grpcPort = port(env, "GRPC_PORT", 50052);
  const connectPort = port(env, "CONNECT_PORT", 8082);
  const databaseUrl =
    url(env, "DATABASE_URL", ["file:", "libsql:", "http:", "https:"]) ?? "file:./data/evaluation-service.db";
  const syncUrl = url(env, "DATABASE_SYNC_URL", ["libsql:", "http:", "https:"]);
  if (syncUrl !== undefined && !databaseUrl.startsWith("file:")) {
    throw new ConfigError(
      "DATABASE_URL",
      "an embedded replica (DATABASE_SYNC_URL) needs a file: DATABASE_URL",
    );
  }
  const intervalRaw = optional(env, "DATABASE_SYNC_INTERVAL_MS");
  if (intervalRaw !== undefined && !/^[1-9]\d{0,8}$/.test(intervalRaw)) {
    throw new ConfigError(
      "DATABASE_SYNC_INTERVAL_MS",
      `must be a positive integer (ms), got ${JSON.stringify(intervalRaw)}`,
    );
  }
  const secret = env.AUTH_JWT_SECRET;
  const jwksUrl = url(env, "AUTH_JWKS_URL", ["http:", "https:"]);
  let auth: Config["auth"];
  if (secret !== undefined && secret !== "") {
    if (jwksUrl !== undefined)
      throw new ConfigError("AUTH_JWKS_URL", "set AUTH_JWT_SECRET or AUTH_JWKS_URL, not both");
    if (Buffer.byteLength(secret, "utf8") < 32)
      throw new ConfigError("AUTH_JWT_SECRET", "must be at least 32 bytes");
    auth = { kind: "secret", secret, generated: false };
  } else if (jwksUrl !== undefined) {
    auth = { kind: "jwks", jwksUrl };
  } else if (env.NODE_ENV === "production") {
    throw new ConfigError("AUTH_JWT_SECRET", "is required (or AUTH_JWKS_URL) when NODE_ENV=production");
  } else {
    auth = { kind: "secret", secret: randomBytes(32).toString("base64url"), generated: true };
  }
  const encryptionKey = optional(env, "DATABASE_ENCRYPTION_KEY");
  if (encryptionKey !== undefined && !databaseUrl.startsWith("file:")) {
    throw new ConfigError(
      "DATABASE_ENCRYPTION_KEY",
      "applies to file: databases only (remote databases encrypt at the provider)",
    );
  }
  const promptServiceUrl = url(env, "PROMPT_SERVICE_URL", ["http:", "https:"]) ?? "http://127.0.0.1:50051";
  const token = optional(env, "SERVICE_TOKEN");
  let serviceToken: Config["serviceToken"];
  if (token !== undefined) {
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) {
      throw new ConfigError("SERVICE_TOKEN", "must be a JWT (header.payload.signature)");
    }
    serviceToken = { kind: "given", token };
  } else if (auth.kind === "jwks") {
    throw new ConfigError(
      "SERVICE_TOKEN",
      "is required with AUTH_JWKS_URL (this service cannot sign its own token)",
    );
  } else if (env.NODE_ENV === "production") {
    throw new ConfigError("SERVICE_TOKEN", "is required when NODE_ENV=production");
  } else {
    serviceToken = { kind: "mint" };
  }
  const level = optional(env, "LOG_LEVEL") ?? "info";
  if (!(logLevels as readonly string[]).includes(level)) {
    throw new ConfigError(
      "LOG_LEVEL",
      `must be one of ${logLevels.join(", ")}, got ${JSON.stringify(level)}`,
    );
  }
  return Object.freeze({
    host,
    grpcPort,
    connectPort,
    database: Object.freeze({
      url: databaseUrl,
      authToken: optional(env, "DATABASE_AUTH_TOKEN"),
      syncUrl,
      syncIntervalMs: intervalRaw === undefined ? undefined : Number(intervalRaw),
      encryptionKey,
    }),
    auth: Object.freeze(auth),
    issuer: optional(env, "AUTH_ISSUER"),
    audience: optional(env, "AUTH_AUDIENCE"),
    promptServiceUrl,
    serviceToken: Object.freeze(serviceToken),
    logLevel: level as Config["logLevel"],
  });
}
