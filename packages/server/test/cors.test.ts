import * as http from "node:http";
import { AdminService } from "@autoforge/contracts/admin/v1";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConfigError,
  type CorsOptions,
  corsOptionsFromEnv,
  createServer,
  readServiceConfig,
  type Server,
} from "../src/index.js";
import { bearer, captureLogger, secret, testAdminService, testPromptService } from "./helpers.js";

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One HTTP/1.1 request as a browser sends it (node:http: fetch would not let us set Origin). */
function request(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

async function start(cors: CorsOptions | undefined): Promise<{ server: Server; port: number }> {
  const probe = { calls: {} };
  const server = createServer({
    services: [testAdminService(probe), testPromptService()],
    auth: { secret },
    logger: captureLogger().logger,
    cors,
  });
  const { connectPort } = await server.listen({ host: "127.0.0.1", grpcPort: 0, connectPort: 0 });
  return { server, port: connectPort };
}

const app = "https://app.example.com";
const path = `/${AdminService.typeName}/VerifyAuditChain`;
const list = (value: string | string[] | undefined) =>
  String(value ?? "")
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== "");

/** The preflight a browser sends before a Connect (JSON) or gRPC-Web call from another origin. */
const preflight = (origin: string, requestHeaders: string) => ({
  origin,
  "access-control-request-method": "POST",
  "access-control-request-headers": requestHeaders,
});

describe("CORS on the Connect port (CORS_ALLOWED_ORIGINS)", () => {
  let allowed: { server: Server; port: number };
  let off: { server: Server; port: number };
  beforeAll(async () => {
    allowed = await start(corsOptionsFromEnv({ CORS_ALLOWED_ORIGINS: `${app}, http://localhost:5173` }));
    off = await start(undefined);
  });
  afterAll(async () => {
    await allowed.server.shutdown({ graceMs: 500 });
    await off.server.shutdown({ graceMs: 500 });
  });

  it("answers a preflight from an allowed origin with connect-es's methods and headers", async () => {
    for (const requestHeaders of [
      "content-type,connect-protocol-version,connect-timeout-ms,authorization",
      "content-type,x-grpc-web,x-user-agent,grpc-timeout,authorization,x-request-id,traceparent",
    ]) {
      const res = await request(allowed.port, "OPTIONS", path, preflight(app, requestHeaders));
      expect(res.status).toBe(204);
      expect(res.headers["access-control-allow-origin"]).toBe(app);
      expect(list(res.headers.vary)).toContain("origin");
      expect(list(res.headers["access-control-allow-methods"])).toEqual(
        expect.arrayContaining(["post", "get"]),
      );
      // every header the browser asked for is allowed
      expect(list(res.headers["access-control-allow-headers"])).toEqual(
        expect.arrayContaining(requestHeaders.split(",")),
      );
      expect(res.headers["access-control-max-age"]).toBe("7200");
    }
  });

  it("lets the call through with the origin and the headers scripts may read", async () => {
    const res = await request(
      allowed.port,
      "POST",
      path,
      { ...(await bearer("alice", ["admin"])), origin: app, "content-type": "application/json" },
      "{}",
    );
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ ok: true });
    expect(res.headers["access-control-allow-origin"]).toBe(app);
    expect(list(res.headers["access-control-expose-headers"])).toEqual(
      expect.arrayContaining(["grpc-status", "grpc-message", "grpc-status-details-bin", "x-request-id"]),
    );
  });

  it("gives an origin that is not listed no CORS headers, so the browser refuses the answer", async () => {
    const pre = await request(
      allowed.port,
      "OPTIONS",
      path,
      preflight("https://evil.example.com", "content-type,authorization"),
    );
    expect(pre.headers["access-control-allow-origin"]).toBeUndefined();
    const res = await request(
      allowed.port,
      "POST",
      path,
      {
        ...(await bearer("alice", ["admin"])),
        origin: "https://evil.example.com",
        "content-type": "application/json",
      },
      "{}",
    );
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("sends no CORS headers at all when CORS_ALLOWED_ORIGINS is unset", async () => {
    const pre = await request(off.port, "OPTIONS", path, preflight(app, "content-type"));
    expect(pre.headers["access-control-allow-origin"]).toBeUndefined();
    expect(pre.headers["access-control-allow-methods"]).toBeUndefined();
    const res = await request(
      off.port,
      "POST",
      path,
      { ...(await bearer("alice", ["admin"])), origin: app, "content-type": "application/json" },
      "{}",
    );
    expect(res.status).toBe(200);
    expect(res.headers["access-control-allow-origin"]).toBeUndefined();
  });

  it("allows any origin only when told so with *", async () => {
    const any = await start(corsOptionsFromEnv({ CORS_ALLOWED_ORIGINS: "*" }));
    try {
      const res = await request(
        any.port,
        "OPTIONS",
        path,
        preflight("https://anything.example", "content-type"),
      );
      expect(res.status).toBe(204);
      expect(res.headers["access-control-allow-origin"]).toBe("*");
    } finally {
      await any.server.shutdown({ graceMs: 500 });
    }
  });

  it("reads CORS_ALLOWED_ORIGINS strictly, naming the variable", () => {
    const defaults = { grpcPort: 1, connectPort: 2, databaseFile: "./data/x.db" };
    expect(readServiceConfig({ AUTH_JWT_SECRET: secret }, defaults).cors).toBeUndefined();
    expect(readServiceConfig({ AUTH_JWT_SECRET: secret, CORS_ALLOWED_ORIGINS: app }, defaults).cors).toEqual({
      allowedOrigins: [app],
    });
    expect(corsOptionsFromEnv({})).toBeUndefined();
    expect(corsOptionsFromEnv({ CORS_ALLOWED_ORIGINS: " " })).toBeUndefined();
    expect(corsOptionsFromEnv({ CORS_ALLOWED_ORIGINS: "http://localhost:5173,https://a.example" })).toEqual({
      allowedOrigins: ["http://localhost:5173", "https://a.example"],
    });
    for (const bad of [
      "https://a.example/",
      "a.example",
      "https://a.example/app",
      "*,https://a.example",
      ",",
    ]) {
      expect(() => corsOptionsFromEnv({ CORS_ALLOWED_ORIGINS: bad }), bad).toThrow(ConfigError);
      expect(() => corsOptionsFromEnv({ CORS_ALLOWED_ORIGINS: bad }), bad).toThrow(/^CORS_ALLOWED_ORIGINS: /);
    }
  });
});
