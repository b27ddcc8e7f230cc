import { describe, expect, it } from "vitest";
import {
  ConfigError,
  readServiceConfig,
  type ServiceConfigDefaults,
  serviceAuthConfig,
} from "../src/index.js";

const secret = "s".repeat(32);
const defaults: ServiceConfigDefaults = { grpcPort: 50051, connectPort: 8081, databaseFile: "./data/x.db" };

function failsOn(env: Record<string, string>, variable: string, options = defaults) {
  let error: unknown;
  try {
    readServiceConfig(env, options);
  } catch (e) {
    error = e;
  }
  expect(error, JSON.stringify(env)).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).variable, JSON.stringify(env)).toBe(variable);
  expect((error as ConfigError).message).toMatch(new RegExp(`^${variable}: `));
}

describe("service config", () => {
  it("has the documented defaults, the service's ports and database file", () => {
    const c = readServiceConfig({ AUTH_JWT_SECRET: secret }, defaults);
    expect(c).toMatchObject({
      host: "127.0.0.1",
      grpcPort: 50051,
      connectPort: 8081,
      database: {
        url: "file:./data/x.db",
        authToken: undefined,
        syncUrl: undefined,
        encryptionKey: undefined,
      },
      auth: { kind: "secret", secret, generated: false },
      logLevel: "info",
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.database)).toBe(true);
  });

  it("reads every variable", () => {
    const c = readServiceConfig(
      {
        HOST: "0.0.0.0",
        GRPC_PORT: "6000",
        CONNECT_PORT: "6001",
        DATABASE_URL: "file:/tmp/x.db",
        DATABASE_AUTH_TOKEN: "tok",
        DATABASE_SYNC_URL: "libsql://primary.example",
        DATABASE_SYNC_INTERVAL_MS: "500",
        DATABASE_ENCRYPTION_KEY: "k",
        AUTH_JWKS_URL: "https://issuer.example/jwks.json",
        AUTH_ISSUER: "iss",
        AUTH_AUDIENCE: "aud",
        LOG_LEVEL: "debug",
      },
      defaults,
    );
    expect(c).toMatchObject({
      host: "0.0.0.0",
      grpcPort: 6000,
      connectPort: 6001,
      database: {
        url: "file:/tmp/x.db",
        authToken: "tok",
        syncUrl: "libsql://primary.example",
        syncIntervalMs: 500,
        encryptionKey: "k",
      },
      auth: { kind: "jwks", jwksUrl: "https://issuer.example/jwks.json" },
      issuer: "iss",
      audience: "aud",
      logLevel: "debug",
    });
    expect(serviceAuthConfig(c)).toEqual({
      jwksUrl: "https://issuer.example/jwks.json",
      issuer: "iss",
      audience: "aud",
    });
  });

  it("passes DATABASE_ENCRYPTION_KEY to the database and builds the auth config from the secret", () => {
    const c = readServiceConfig({ AUTH_JWT_SECRET: secret, DATABASE_ENCRYPTION_KEY: "k" }, defaults);
    expect(c.database.encryptionKey).toBe("k");
    expect(serviceAuthConfig(c)).toEqual({ secret, issuer: undefined, audience: undefined });
  });

  it("generates a dev secret when none is configured, except in production", () => {
    const c = readServiceConfig({}, defaults);
    expect(c.auth.kind === "secret" && c.auth.generated && c.auth.secret.length >= 32).toBe(true);
    failsOn({ NODE_ENV: "production" }, "AUTH_JWT_SECRET");
    failsOn({ NODE_ENV: "production", AUTH_JWT_SECRET: "" }, "AUTH_JWT_SECRET");
  });

  it("schedules maintenance weekly / monthly / quarterly by default; each interval is configurable, 0 disables", () => {
    const week = 7 * 24 * 60 * 60 * 1000;
    expect(readServiceConfig({ AUTH_JWT_SECRET: secret }, defaults).maintenance).toEqual({
      analyze: week,
      optimize: week,
      vacuum: (30 * week) / 7,
      reindex: (90 * week) / 7,
      integrity_check: week,
    });
    const c = readServiceConfig(
      {
        AUTH_JWT_SECRET: secret,
        MAINTENANCE_ANALYZE_INTERVAL_MS: "1000",
        MAINTENANCE_OPTIMIZE_INTERVAL_MS: "2000",
        MAINTENANCE_VACUUM_INTERVAL_MS: "0",
        MAINTENANCE_REINDEX_INTERVAL_MS: "3000",
        MAINTENANCE_INTEGRITY_CHECK_INTERVAL_MS: "4000",
      },
      defaults,
    );
    expect(c.maintenance).toEqual({
      analyze: 1000,
      optimize: 2000,
      vacuum: 0,
      reindex: 3000,
      integrity_check: 4000,
    });
    expect(Object.isFrozen(c.maintenance)).toBe(true);
    failsOn(
      { AUTH_JWT_SECRET: secret, MAINTENANCE_VACUUM_INTERVAL_MS: "-1" },
      "MAINTENANCE_VACUUM_INTERVAL_MS",
    );
    failsOn(
      { AUTH_JWT_SECRET: secret, MAINTENANCE_ANALYZE_INTERVAL_MS: "1w" },
      "MAINTENANCE_ANALYZE_INTERVAL_MS",
    );
  });

  it("stops on a malformed value, naming the variable", () => {
    failsOn({ AUTH_JWT_SECRET: secret, GRPC_PORT: "http" }, "GRPC_PORT");
    failsOn({ AUTH_JWT_SECRET: secret, GRPC_PORT: "70000" }, "GRPC_PORT");
    failsOn({ AUTH_JWT_SECRET: secret, CONNECT_PORT: "70000" }, "CONNECT_PORT");
    failsOn({ AUTH_JWT_SECRET: secret, CONNECT_PORT: "x" }, "CONNECT_PORT");
    failsOn({ AUTH_JWT_SECRET: secret, DATABASE_URL: "postgres://x" }, "DATABASE_URL");
    failsOn({ AUTH_JWT_SECRET: secret, DATABASE_URL: "not a url" }, "DATABASE_URL");
    failsOn({ AUTH_JWT_SECRET: secret, DATABASE_SYNC_INTERVAL_MS: "-5" }, "DATABASE_SYNC_INTERVAL_MS");
    failsOn({ AUTH_JWT_SECRET: secret, DATABASE_SYNC_INTERVAL_MS: "-1" }, "DATABASE_SYNC_INTERVAL_MS");
    failsOn({ AUTH_JWT_SECRET: "short" }, "AUTH_JWT_SECRET");
    failsOn({ AUTH_JWT_SECRET: secret, AUTH_JWKS_URL: "https://x" }, "AUTH_JWKS_URL");
    failsOn({ AUTH_JWKS_URL: "ftp://x" }, "AUTH_JWKS_URL");
    failsOn({ AUTH_JWT_SECRET: secret, LOG_LEVEL: "loud" }, "LOG_LEVEL");
    failsOn(
      { AUTH_JWT_SECRET: secret, DATABASE_URL: "libsql://x", DATABASE_SYNC_URL: "libsql://y" },
      "DATABASE_URL",
    );
    failsOn(
      { AUTH_JWT_SECRET: secret, DATABASE_URL: "libsql://x", DATABASE_ENCRYPTION_KEY: "k" },
      "DATABASE_ENCRYPTION_KEY",
      defaults,
    );
  });
  it("AUTH_ALL_PROJECTS_SUBJECTS: who may hold an all-projects service token", () => {
    const base = { AUTH_JWT_SECRET: "s".repeat(32) };
    expect(serviceAuthConfig(readServiceConfig(base, defaults)).allProjectsSubjects).toBeUndefined();
    const c = readServiceConfig(
      { ...base, AUTH_ALL_PROJECTS_SUBJECTS: "evaluation-service, gate" },
      defaults,
    );
    expect(serviceAuthConfig(c).allProjectsSubjects).toEqual(["evaluation-service", "gate"]);
    expect(() => readServiceConfig({ ...base, AUTH_ALL_PROJECTS_SUBJECTS: "a,,b" }, defaults)).toThrow(
      /AUTH_ALL_PROJECTS_SUBJECTS/,
    );
  });

  it("AUDIT_*: unkeyed and without checkpoints by default; keys, rotation and checkpoints as documented", () => {
    const base = { AUTH_JWT_SECRET: secret };
    expect(readServiceConfig(base, defaults).audit).toEqual({ hmac: undefined, checkpoints: undefined });
    // one key: it is the current one
    expect(readServiceConfig({ ...base, AUDIT_HMAC_KEYS: "k1:AAAA" }, defaults).audit.hmac).toEqual({
      keyList: "k1:AAAA",
      currentKeyId: "k1",
    });
    const rotated = readServiceConfig(
      { ...base, AUDIT_HMAC_KEYS: "k1:AAAA,k2:BBBB", AUDIT_HMAC_KEY_ID: "k2" },
      defaults,
    );
    expect(rotated.audit.hmac?.currentKeyId).toBe("k2");
    const checkpoints = readServiceConfig(
      { ...base, AUDIT_CHECKPOINT_DIR: "/var/lib/audit", AUDIT_CHECKPOINT_KEY: "-----BEGIN\\nX" },
      defaults,
    ).audit.checkpoints;
    expect(checkpoints).toEqual({
      dir: "/var/lib/audit",
      privateKey: { pem: "-----BEGIN\nX" },
      everyRows: 1_000,
      intervalMs: 60_000,
    });

    failsOn({ ...base, AUDIT_HMAC_KEYS: "k1:AAAA,k2:BBBB" }, "AUDIT_HMAC_KEY_ID");
    failsOn({ ...base, AUDIT_HMAC_KEY_ID: "k1" }, "AUDIT_HMAC_KEY_ID");
    // the missing half is named
    failsOn({ ...base, AUDIT_CHECKPOINT_DIR: "/x" }, "AUDIT_CHECKPOINT_KEY");
    failsOn({ ...base, AUDIT_CHECKPOINT_KEY: "pem" }, "AUDIT_CHECKPOINT_DIR");
    failsOn(
      { ...base, AUDIT_CHECKPOINT_DIR: "/x", AUDIT_CHECKPOINT_KEY: "p", AUDIT_CHECKPOINT_KEY_FILE: "/k" },
      "AUDIT_CHECKPOINT_KEY_FILE",
    );
    failsOn({ ...base, AUDIT_CHECKPOINT_EVERY_ROWS: "ten" }, "AUDIT_CHECKPOINT_EVERY_ROWS");
    failsOn(
      {
        ...base,
        AUDIT_CHECKPOINT_DIR: "/x",
        AUDIT_CHECKPOINT_KEY: "p",
        AUDIT_CHECKPOINT_EVERY_ROWS: "0",
        AUDIT_CHECKPOINT_INTERVAL_MS: "0",
      },
      "AUDIT_CHECKPOINT_INTERVAL_MS",
    );
  });
});
