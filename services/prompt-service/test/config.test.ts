import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";

const secret = "s".repeat(32);

function failsOn(env: Record<string, string>, variable: string) {
  let error: unknown;
  try {
    loadConfig(env);
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(ConfigError);
  expect((error as ConfigError).variable).toBe(variable);
  expect((error as ConfigError).message).toContain(variable);
}

describe("config", () => {
  it("has the documented defaults", () => {
    const c = loadConfig({ AUTH_JWT_SECRET: secret });
    expect(c).toMatchObject({
      host: "127.0.0.1",
      grpcPort: 50051,
      connectPort: 8081,
      database: { url: "file:./data/prompt-service.db", authToken: undefined, syncUrl: undefined },
      auth: { kind: "secret", secret, generated: false },
      logLevel: "info",
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it("reads every variable", () => {
    const c = loadConfig({
      HOST: "0.0.0.0",
      GRPC_PORT: "6000",
      CONNECT_PORT: "6001",
      DATABASE_URL: "file:/tmp/x.db",
      DATABASE_AUTH_TOKEN: "tok",
      DATABASE_SYNC_URL: "libsql://primary.example",
      DATABASE_SYNC_INTERVAL_MS: "500",
      AUTH_JWKS_URL: "https://issuer.example/jwks.json",
      AUTH_ISSUER: "iss",
      AUTH_AUDIENCE: "aud",
      LOG_LEVEL: "debug",
    });
    expect(c).toMatchObject({
      host: "0.0.0.0",
      grpcPort: 6000,
      connectPort: 6001,
      database: {
        url: "file:/tmp/x.db",
        authToken: "tok",
        syncUrl: "libsql://primary.example",
        syncIntervalMs: 500,
      },
      auth: { kind: "jwks", jwksUrl: "https://issuer.example/jwks.json" },
      issuer: "iss",
      audience: "aud",
      logLevel: "debug",
    });
  });

  it("generates a dev secret when none is configured, except in production", () => {
    const c = loadConfig({});
    expect(c.auth.kind === "secret" && c.auth.generated && c.auth.secret.length >= 32).toBe(true);
    failsOn({ NODE_ENV: "production" }, "AUTH_JWT_SECRET");
  });

  it("stops on a malformed value, naming the variable", () => {
    failsOn({ AUTH_JWT_SECRET: secret, GRPC_PORT: "http" }, "GRPC_PORT");
    failsOn({ AUTH_JWT_SECRET: secret, CONNECT_PORT: "70000" }, "CONNECT_PORT");
    failsOn({ AUTH_JWT_SECRET: secret, DATABASE_URL: "postgres://x" }, "DATABASE_URL");
    failsOn({ AUTH_JWT_SECRET: secret, DATABASE_URL: "not a url" }, "DATABASE_URL");
    failsOn({ AUTH_JWT_SECRET: secret, DATABASE_SYNC_INTERVAL_MS: "-5" }, "DATABASE_SYNC_INTERVAL_MS");
    failsOn({ AUTH_JWT_SECRET: "short" }, "AUTH_JWT_SECRET");
    failsOn({ AUTH_JWT_SECRET: secret, AUTH_JWKS_URL: "https://x" }, "AUTH_JWKS_URL");
    failsOn({ AUTH_JWKS_URL: "ftp://x" }, "AUTH_JWKS_URL");
    failsOn({ AUTH_JWT_SECRET: secret, LOG_LEVEL: "loud" }, "LOG_LEVEL");
    failsOn(
      { AUTH_JWT_SECRET: secret, DATABASE_URL: "libsql://x", DATABASE_SYNC_URL: "libsql://y" },
      "DATABASE_URL",
    );
  });
});
