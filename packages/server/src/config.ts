import { randomBytes } from "node:crypto";
import type { AuthConfig } from "./auth.js";
import type { CorsOptions } from "./cors.js";

/**
 * The variables every service reads (architecture §7a). The service's config.ts stays the one reader of
 * process.env: it passes the environment in and adds its own variables.
 */
export interface ServiceConfig {
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
  /** `AUTH_ALL_PROJECTS_SUBJECTS`: subjects allowed an all-projects (`projects: "*"`) service token. */
  readonly allProjectsSubjects: readonly string[] | undefined;
  readonly logLevel: "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";
  /** How often each scheduled maintenance task runs (ms); 0 disables it. */
  readonly maintenance: MaintenanceIntervals;
  /** The audit chain's keys and checkpoints (docs/audit.md); key material is decoded where it is used. */
  readonly audit: AuditConfig;
  /** `CORS_ALLOWED_ORIGINS`: browser origins allowed on the Connect port; undefined: no CORS. */
  readonly cors: CorsOptions | undefined;
}

/** `AUDIT_*` variables as given: `@autoforge/admin`'s `createAuditTrail` decodes and checks the keys. */
export interface AuditConfig {
  /** `AUDIT_HMAC_KEYS` (`id:base64key,…`) and the id new rows use; undefined: the unkeyed chain. */
  readonly hmac: { readonly keyList: string; readonly currentKeyId: string } | undefined;
  /** Signed checkpoints of the chain head; undefined: none. */
  readonly checkpoints:
    | {
        readonly dir: string;
        /** Ed25519 private key, PEM (PKCS#8): `AUDIT_CHECKPOINT_KEY`, or the file `AUDIT_CHECKPOINT_KEY_FILE`. */
        readonly privateKey: { readonly pem: string } | { readonly file: string };
        readonly everyRows: number;
        readonly intervalMs: number;
      }
    | undefined;
}

/** Scheduled maintenance intervals in ms, keyed by task (the names `@autoforge/admin` uses); 0 = not scheduled. */
export interface MaintenanceIntervals {
  readonly analyze: number;
  readonly optimize: number;
  readonly vacuum: number;
  readonly reindex: number;
  readonly integrity_check: number;
}

const day = 24 * 60 * 60 * 1000;

/** The review's plan: ANALYZE and `PRAGMA optimize` weekly, VACUUM monthly, REINDEX quarterly; integrity weekly. */
export const defaultMaintenanceIntervals: MaintenanceIntervals = Object.freeze({
  analyze: 7 * day,
  optimize: 7 * day,
  vacuum: 30 * day,
  reindex: 90 * day,
  integrity_check: 7 * day,
});

const maintenanceVariables: Record<keyof MaintenanceIntervals, string> = {
  analyze: "MAINTENANCE_ANALYZE_INTERVAL_MS",
  optimize: "MAINTENANCE_OPTIMIZE_INTERVAL_MS",
  vacuum: "MAINTENANCE_VACUUM_INTERVAL_MS",
  reindex: "MAINTENANCE_REINDEX_INTERVAL_MS",
  integrity_check: "MAINTENANCE_INTEGRITY_CHECK_INTERVAL_MS",
};

function maintenanceIntervals(env: Env): MaintenanceIntervals {
  const interval = (task: keyof MaintenanceIntervals): number => {
    const name = maintenanceVariables[task];
    const raw = optionalEnv(env, name);
    if (raw === undefined) return defaultMaintenanceIntervals[task];
    if (!/^\d{1,13}$/.test(raw)) {
      throw new ConfigError(
        name,
        `must be a whole number of milliseconds (0 disables), got ${JSON.stringify(raw)}`,
      );
    }
    return Number(raw);
  };
  return Object.freeze({
    analyze: interval("analyze"),
    optimize: interval("optimize"),
    vacuum: interval("vacuum"),
    reindex: interval("reindex"),
    integrity_check: interval("integrity_check"),
  });
}

/** The service's own defaults. */
export interface ServiceConfigDefaults {
  readonly grpcPort: number;
  readonly connectPort: number;
  /** Path of the default `file:` database, e.g. `./data/prompt-service.db`. */
  readonly databaseFile: string;
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

export type Env = Readonly<Record<string, string | undefined>>;

/** The trimmed value; unset and blank are both undefined. */
export function optionalEnv(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

function port(env: Env, name: string, fallback: number): number {
  const raw = optionalEnv(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) > 65535)
    throw new ConfigError(name, `must be a port number 0..65535, got ${JSON.stringify(raw)}`);
  return Number(raw);
}

/** A URL with one of `schemes` (e.g. `"https:"`), or undefined when unset. */
export function urlEnv(env: Env, name: string, schemes: readonly string[]): string | undefined {
  const raw = optionalEnv(env, name);
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
 * Parses the shared variables; frozen, fails fast naming the variable. Without AUTH_JWT_SECRET and
 * AUTH_JWKS_URL a random secret is generated for local use, except with NODE_ENV=production, where that is an
 * error.
 */
export function readServiceConfig(env: Env, defaults: ServiceConfigDefaults): ServiceConfig {
  const host = optionalEnv(env, "HOST") ?? "127.0.0.1";
  const grpcPort = port(env, "GRPC_PORT", defaults.grpcPort);
  const connectPort = port(env, "CONNECT_PORT", defaults.connectPort);
  const databaseUrl =
    urlEnv(env, "DATABASE_URL", ["file:", "libsql:", "http:", "https:"]) ?? `file:${defaults.databaseFile}`;
  const syncUrl = urlEnv(env, "DATABASE_SYNC_URL", ["libsql:", "http:", "https:"]);
  if (syncUrl !== undefined && !databaseUrl.startsWith("file:")) {
    throw new ConfigError(
      "DATABASE_URL",
      "an embedded replica (DATABASE_SYNC_URL) needs a file: DATABASE_URL",
    );
  }
  const intervalRaw = optionalEnv(env, "DATABASE_SYNC_INTERVAL_MS");
  if (intervalRaw !== undefined && !/^[1-9]\d{0,8}$/.test(intervalRaw)) {
    throw new ConfigError(
      "DATABASE_SYNC_INTERVAL_MS",
      `must be a positive integer (ms), got ${JSON.stringify(intervalRaw)}`,
    );
  }
  const secret = env.AUTH_JWT_SECRET;
  const jwksUrl = urlEnv(env, "AUTH_JWKS_URL", ["http:", "https:"]);
  let auth: ServiceConfig["auth"];
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
  const encryptionKey = optionalEnv(env, "DATABASE_ENCRYPTION_KEY");
  if (encryptionKey !== undefined && !databaseUrl.startsWith("file:")) {
    throw new ConfigError(
      "DATABASE_ENCRYPTION_KEY",
      "applies to file: databases only (remote databases encrypt at the provider)",
    );
  }
  const level = optionalEnv(env, "LOG_LEVEL") ?? "info";
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
      authToken: optionalEnv(env, "DATABASE_AUTH_TOKEN"),
      syncUrl,
      syncIntervalMs: intervalRaw === undefined ? undefined : Number(intervalRaw),
      encryptionKey,
    }),
    auth: Object.freeze(auth),
    issuer: optionalEnv(env, "AUTH_ISSUER"),
    audience: optionalEnv(env, "AUTH_AUDIENCE"),
    allProjectsSubjects: allProjectsSubjectsEnv(env),
    logLevel: level as ServiceConfig["logLevel"],
    maintenance: maintenanceIntervals(env),
    audit: auditConfig(env),
    cors: corsOptionsFromEnv(env),
  });
}

function wholeNumber(env: Env, name: string, fallback: number): number {
  const raw = optionalEnv(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d{1,13}$/.test(raw)) {
    throw new ConfigError(name, `must be a whole number (0 turns it off), got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function auditConfig(env: Env): AuditConfig {
  const keyList = optionalEnv(env, "AUDIT_HMAC_KEYS");
  let currentKeyId = optionalEnv(env, "AUDIT_HMAC_KEY_ID");
  if (keyList === undefined && currentKeyId !== undefined) {
    throw new ConfigError("AUDIT_HMAC_KEY_ID", "is set but AUDIT_HMAC_KEYS is not");
  }
  if (keyList !== undefined && currentKeyId === undefined) {
    const ids = keyList.split(",").map((entry) => entry.trim().split(":")[0] ?? "");
    if (ids.length !== 1) {
      throw new ConfigError(
        "AUDIT_HMAC_KEY_ID",
        "must name the key new rows use when AUDIT_HMAC_KEYS has several",
      );
    }
    currentKeyId = ids[0];
  }
  const dir = optionalEnv(env, "AUDIT_CHECKPOINT_DIR");
  const pem = optionalEnv(env, "AUDIT_CHECKPOINT_KEY");
  const file = optionalEnv(env, "AUDIT_CHECKPOINT_KEY_FILE");
  if (pem !== undefined && file !== undefined) {
    throw new ConfigError(
      "AUDIT_CHECKPOINT_KEY_FILE",
      "set AUDIT_CHECKPOINT_KEY or AUDIT_CHECKPOINT_KEY_FILE, not both",
    );
  }
  if ((dir === undefined) !== (pem === undefined && file === undefined)) {
    throw new ConfigError(
      dir === undefined ? "AUDIT_CHECKPOINT_DIR" : "AUDIT_CHECKPOINT_KEY",
      "signed checkpoints need both AUDIT_CHECKPOINT_DIR and AUDIT_CHECKPOINT_KEY (or AUDIT_CHECKPOINT_KEY_FILE)",
    );
  }
  const everyRows = wholeNumber(env, "AUDIT_CHECKPOINT_EVERY_ROWS", 1_000);
  const intervalMs = wholeNumber(env, "AUDIT_CHECKPOINT_INTERVAL_MS", 60_000);
  if (dir !== undefined && everyRows === 0 && intervalMs === 0) {
    throw new ConfigError(
      "AUDIT_CHECKPOINT_INTERVAL_MS",
      "and AUDIT_CHECKPOINT_EVERY_ROWS are both 0: checkpoints would only be written at start and stop",
    );
  }
  return Object.freeze({
    hmac:
      keyList === undefined || currentKeyId === undefined
        ? undefined
        : Object.freeze({ keyList, currentKeyId }),
    checkpoints:
      dir === undefined
        ? undefined
        : Object.freeze({
            dir,
            // a PEM in an environment variable often arrives with its newlines escaped
            privateKey: pem !== undefined ? { pem: pem.replaceAll("\\n", "\n") } : { file: file ?? "" },
            everyRows,
            intervalMs,
          }),
  });
}

/**
 * `CORS_ALLOWED_ORIGINS`: comma-separated origins (`https://app.example.com,http://localhost:5173`), or `*`
 * for any origin (tokens travel in the Authorization header, never in cookies, so no credentials mode).
 * Unset: undefined, and the Connect port sends no CORS headers (browsers on other origins are refused).
 */
export function corsOptionsFromEnv(env: Env): CorsOptions | undefined {
  const name = "CORS_ALLOWED_ORIGINS";
  const raw = optionalEnv(env, name);
  if (raw === undefined) return undefined;
  const origins = raw
    .split(",")
    .map((o) => o.trim())
    .filter((o) => o !== "");
  if (origins.includes("*")) {
    if (origins.length > 1) throw new ConfigError(name, "is either * or a list of origins, not both");
    return Object.freeze({ allowedOrigins: "*" });
  }
  if (origins.length === 0) throw new ConfigError(name, "names no origin");
  for (const origin of origins) {
    let parsed: string | undefined;
    try {
      parsed = new URL(origin).origin;
    } catch {
      parsed = undefined;
    }
    if (parsed !== origin) {
      throw new ConfigError(
        name,
        `${JSON.stringify(origin)} is not an origin (scheme://host[:port], no path or trailing slash)`,
      );
    }
  }
  return Object.freeze({ allowedOrigins: Object.freeze(origins) });
}

function allProjectsSubjectsEnv(env: Env): readonly string[] | undefined {
  const raw = optionalEnv(env, "AUTH_ALL_PROJECTS_SUBJECTS");
  if (raw === undefined) return undefined;
  const subjects = raw.split(",").map((s) => s.trim());
  if (subjects.some((s) => s === "")) {
    throw new ConfigError("AUTH_ALL_PROJECTS_SUBJECTS", "must be a comma-separated list of token subjects");
  }
  return Object.freeze(subjects);
}

/** How the server verifies bearer tokens, from the parsed variables. */
export function serviceAuthConfig(config: ServiceConfig): AuthConfig {
  const claims = {
    issuer: config.issuer,
    audience: config.audience,
    ...(config.allProjectsSubjects === undefined ? {} : { allProjectsSubjects: config.allProjectsSubjects }),
  };
  return config.auth.kind === "secret"
    ? { secret: config.auth.secret, ...claims }
    : { jwksUrl: config.auth.jwksUrl, ...claims };
}
