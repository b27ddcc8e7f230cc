/**
 * Readiness vs liveness: a server whose database stops answering turns grpc.health.v1 NOT_SERVING and
 * `/readyz` 503 while `/healthz` stays 200, and goes back to SERVING when the database answers again.
 * (On a real sqld stopped and restarted under the services as processes: test/e2e/primary-outage.test.ts.)
 */
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { describe, expect, it, onTestFinished } from "vitest";
import { createServer, type DatabaseBinding, type UnitOfWork } from "../src/index.js";
import { captureLogger, pollUntil, secret, type TestServer, testAdminService } from "./helpers.js";

interface HealthClient extends grpc.Client {
  check(req: { service: string }, cb: (e: grpc.ServiceError | null, res?: { status: string }) => void): void;
}

function healthOf(t: TestServer): () => Promise<string> {
  const Ctor = grpc.makeGenericClientConstructor(healthService, "Health");
  const client = new Ctor(
    `127.0.0.1:${t.grpcPort}`,
    grpc.credentials.createInsecure(),
  ) as unknown as HealthClient;
  onTestFinished(() => client.close());
  return () =>
    new Promise((resolve) =>
      client.check({ service: "autoforge.admin.v1.AdminService" }, (e, res) =>
        resolve(e === null ? (res?.status ?? "") : `error ${e.code}`),
      ),
    );
}

async function httpStatus(t: TestServer, path: string): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${t.connectPort}${path}`);
  await response.arrayBuffer();
  return response.status;
}

async function metricsText(t: TestServer): Promise<string> {
  return (await fetch(`http://127.0.0.1:${t.connectPort}/metrics`)).text();
}

/** A database whose read units fail (`down`), hang (`stalled`) or pass, counting the probes it saw. */
function switchableDatabase() {
  const state = { mode: "up" as "up" | "down" | "stalled", reads: 0 };
  const db: UnitOfWork<unknown> = {
    async read(fn) {
      state.reads++;
      if (state.mode === "down")
        throw Object.assign(new Error("connection refused"), { name: "TransientDatabaseError" });
      if (state.mode === "stalled") return new Promise<never>(() => {});
      return fn({});
    },
    async write(fn) {
      return fn({});
    },
  };
  const binding: DatabaseBinding<unknown> = { db, appendAudit: () => undefined };
  return { state, binding };
}

async function serverWith(binding: DatabaseBinding<unknown>): Promise<TestServer> {
  const probe = { calls: {} };
  const { logger, lines } = captureLogger();
  const server = createServer({
    services: [testAdminService(probe)],
    auth: { secret },
    logger,
    database: binding,
    readiness: { intervalMs: 20, timeoutMs: 200 },
  });
  onTestFinished(() => server.shutdown({ graceMs: 500 }));
  const ports = await server.listen({ host: "127.0.0.1", grpcPort: 0, connectPort: 0 });
  return { server, ...ports, probe, lines };
}

describe("readiness", () => {
  it("a failing database: health NOT_SERVING and /readyz 503 while /healthz stays 200; back when it answers", async () => {
    const { state, binding } = switchableDatabase();
    const t = await serverWith(binding);
    const health = healthOf(t);
    expect(await health()).toBe("SERVING");
    expect(await httpStatus(t, "/readyz")).toBe(200);
    expect(await httpStatus(t, "/healthz")).toBe(200);

    state.mode = "down";
    await pollUntil(() => t.lines.some((l) => l.msg.startsWith("not ready")), 5_000);
    expect(await health()).toBe("NOT_SERVING");
    expect(await httpStatus(t, "/readyz")).toBe(503);
    expect(await httpStatus(t, "/healthz")).toBe(200);
    const notReady = t.lines.filter((l) => l.msg.startsWith("not ready"));
    expect(notReady).toHaveLength(1); // once, not once per probe
    expect(JSON.stringify(notReady[0])).toContain("connection refused");
    expect(await metricsText(t)).toMatch(/^server_ready 0$/m);

    const readyLines = t.lines.filter((l) => l.msg.startsWith("ready")).length; // the one at start
    state.mode = "up";
    await pollUntil(() => t.lines.filter((l) => l.msg.startsWith("ready")).length > readyLines, 5_000);
    expect(await health()).toBe("SERVING");
    expect(await httpStatus(t, "/readyz")).toBe(200);
    expect(await metricsText(t)).toMatch(/^server_ready 1$/m);
  });

  it("a database that never answers counts as failed after the probe's timeout, without piling up probes", async () => {
    const { state, binding } = switchableDatabase();
    const t = await serverWith(binding);
    const health = healthOf(t);
    state.mode = "stalled";
    await pollUntil(() => t.lines.some((l) => l.msg.startsWith("not ready")), 5_000);
    expect(await health()).toBe("NOT_SERVING");
    expect(await httpStatus(t, "/readyz")).toBe(503);
    const reads = state.reads;
    // several intervals later the hung probe is still the only one
    const until = Date.now() + 300;
    await pollUntil(() => Date.now() > until, 2_000);
    expect(state.reads).toBe(reads);
  });

  it("a database down at start: the server listens NOT_SERVING and turns SERVING once it answers", async () => {
    const { state, binding } = switchableDatabase();
    state.mode = "down";
    const t = await serverWith(binding);
    const health = healthOf(t);
    expect(await health()).toBe("NOT_SERVING");
    expect(await httpStatus(t, "/readyz")).toBe(503);
    expect(await httpStatus(t, "/healthz")).toBe(200);
    state.mode = "up";
    await pollUntil(() => t.lines.some((l) => l.msg.startsWith("ready")), 5_000);
    expect(await health()).toBe("SERVING");
  });

  it("while draining, /readyz is 503 like /healthz", async () => {
    const { binding } = switchableDatabase();
    const t = await serverWith(binding);
    expect(await httpStatus(t, "/readyz")).toBe(200);
    const stopped = t.server.shutdown({ graceMs: 500 });
    expect(await httpStatus(t, "/readyz").catch(() => 503)).toBe(503);
    await stopped;
  });
});
