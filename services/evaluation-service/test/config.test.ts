import { fileURLToPath } from "node:url";
import { createTokenSigner } from "@autoforge/server";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../src/config.js";

const secret = "s".repeat(32);
const token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";

describe("config", () => {
  it("has the documented defaults (architecture §7a)", () => {
    const c = loadConfig({ AUTH_JWT_SECRET: secret });
    expect(c).toMatchObject({
      host: "127.0.0.1",
      grpcPort: 50052,
      connectPort: 8082,
      database: {
        url: `file:${fileURLToPath(new URL("../../../data/evaluation-service.db", import.meta.url))}`,
        authToken: undefined,
        encryptionKey: undefined,
      },
      promptServiceUrl: "http://127.0.0.1:50051",
      serviceToken: { kind: "mint" },
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
      DATABASE_AUTH_TOKEN: "t",
      DATABASE_SYNC_URL: "libsql://primary.example",
      DATABASE_SYNC_INTERVAL_MS: "5000",
      DATABASE_ENCRYPTION_KEY: "k",
      AUTH_JWT_SECRET: secret,
      AUTH_ISSUER: "iss",
      AUTH_AUDIENCE: "aud",
      PROMPT_SERVICE_URL: "https://prompts.example:443",
      SERVICE_TOKEN: token,
      LOG_LEVEL: "debug",
    });
    expect(c).toMatchObject({
      host: "0.0.0.0",
      grpcPort: 6000,
      connectPort: 6001,
      database: {
        url: "file:/tmp/x.db",
        authToken: "t",
        syncUrl: "libsql://primary.example",
        syncIntervalMs: 5000,
        encryptionKey: "k",
      },
      auth: { kind: "secret", secret, generated: false },
      issuer: "iss",
      audience: "aud",
      promptServiceUrl: "https://prompts.example:443",
      serviceToken: { kind: "given", token },
      logLevel: "debug",
    });
  });

  // The shared variables' errors are tested with the server kit (packages/server/test/config.test.ts).
  it("stops on a missing or malformed value, naming the variable", () => {
    const cases: [Record<string, string>, string][] = [
      [{ DATABASE_URL: "libsql://x", DATABASE_ENCRYPTION_KEY: "k" }, "DATABASE_ENCRYPTION_KEY"],
      [{ PROMPT_SERVICE_URL: "not a url" }, "PROMPT_SERVICE_URL"],
      [{ PROMPT_SERVICE_URL: "ftp://x" }, "PROMPT_SERVICE_URL"],
      [{ SERVICE_TOKEN: "not-a-jwt" }, "SERVICE_TOKEN"],
      [{ NODE_ENV: "production", AUTH_JWT_SECRET: secret }, "SERVICE_TOKEN"],
      [{ AUTH_JWT_SECRET: "", AUTH_JWKS_URL: "https://keys.example/jwks.json" }, "SERVICE_TOKEN"],
    ];
    for (const [env, variable] of cases) {
      let error: unknown;
      try {
        loadConfig({ AUTH_JWT_SECRET: secret, ...env });
      } catch (e) {
        error = e;
      }
      expect(error, JSON.stringify(env)).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).variable, JSON.stringify(env)).toBe(variable);
      expect((error as ConfigError).message).toMatch(new RegExp(`^${variable}: `));
    }
  });

  it("tells whether a given SERVICE_TOKEN claims every project (main.ts warns when it does not)", async () => {
    const signer = createTokenSigner(secret);
    const all = await signer.signToken({ sub: "evaluation-service", roles: ["service"], projects: "*" });
    const legacy = await signer.signToken({ sub: "evaluation-service", roles: ["service"] });
    expect(loadConfig({ AUTH_JWT_SECRET: secret, SERVICE_TOKEN: all }).serviceToken).toEqual({
      kind: "given",
      token: all,
      allProjects: true,
    });
    for (const t of [legacy, token]) {
      expect(loadConfig({ AUTH_JWT_SECRET: secret, SERVICE_TOKEN: t }).serviceToken).toMatchObject({
        allProjects: false,
      });
    }
  });

  it("without a secret, generates one for local use and mints the service token from it", () => {
    const c = loadConfig({});
    expect(c.auth).toMatchObject({ kind: "secret", generated: true });
    expect(c.serviceToken).toEqual({ kind: "mint" });
  });
});
