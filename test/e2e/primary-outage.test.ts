/**
 * prompt-service as a process on a real sqld, and the sqld killed (SIGKILL) in the middle of writes, then
 * restarted on the same data: calls answer UNAVAILABLE during the outage (never INTERNAL), readiness turns
 * NOT_SERVING (gRPC health, /readyz 503) while liveness stays up (/healthz 200), both come back by themselves,
 * and every write that was acknowledged is there afterwards.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { service as healthService } from "grpc-health-check";
import { expect, it, onTestFinished } from "vitest";
import { describeWithSqld, sqldBinary } from "../support/sqld.js";
import { Code, ConnectError, clients, must, pollUntil, startService } from "./harness.js";

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** An sqld on a fixed port and data dir, so that it can be killed and started again on the same data. */
function sqldOn(port: number) {
  const dir = mkdtempSync(join(tmpdir(), "autoforge-outage-"));
  let child: ChildProcess | undefined;
  const url = `http://127.0.0.1:${port}`;
  const kill = async () => {
    const current = child;
    if (current === undefined || current.exitCode !== null || current.signalCode !== null) return;
    const gone = new Promise((resolve) => current.once("exit", resolve));
    current.kill("SIGKILL");
    await gone;
  };
  onTestFinished(async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    url,
    kill,
    async start() {
      if (sqldBinary === undefined) throw new Error("no sqld binary");
      const args = [
        "--db-path",
        join(dir, "data.sqld"),
        "--no-welcome",
        "--http-listen-addr",
        `127.0.0.1:${port}`,
      ];
      child = spawn(sqldBinary, args, { stdio: "ignore", env: { ...process.env, RUST_LOG: "error" } });
      await pollUntil(
        async () => {
          try {
            const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(500) });
            await response.arrayBuffer();
            return response.ok;
          } catch {
            return false;
          }
        },
        15_000,
        "sqld answering",
      );
    },
  };
}

interface HealthClient extends grpc.Client {
  check(req: { service: string }, cb: (e: grpc.ServiceError | null, res?: { status: string }) => void): void;
}

function healthProbes(grpcPort: number, connectPort: number) {
  const Ctor = grpc.makeGenericClientConstructor(healthService, "Health");
  const client = new Ctor(
    `127.0.0.1:${grpcPort}`,
    grpc.credentials.createInsecure(),
  ) as unknown as HealthClient;
  onTestFinished(() => client.close());
  const http = async (path: string) => {
    const response = await fetch(`http://127.0.0.1:${connectPort}${path}`, {
      signal: AbortSignal.timeout(2_000),
    });
    await response.arrayBuffer();
    return response.status;
  };
  return {
    grpc: (service = "") =>
      new Promise<string>((resolve) =>
        client.check({ service }, (e, res) => resolve(e === null ? (res?.status ?? "") : `error ${e.code}`)),
      ),
    readyz: () => http("/readyz"),
    healthz: () => http("/healthz"),
  };
}

describeWithSqld("primary outage", () => {
  it("sqld SIGKILLed during writes and restarted: writes and reads UNAVAILABLE meanwhile, readiness NOT_SERVING then SERVING, no acknowledged write lost", async () => {
    const sqld = sqldOn(await freePort());
    await sqld.start();
    const service = await startService("prompt-service", { DATABASE_URL: sqld.url });
    const health = healthProbes(service.grpcPort, service.connectPort);
    expect(await health.grpc()).toBe("SERVING");
    expect(await health.grpc("autoforge.prompt.v1.PromptService")).toBe("SERVING");
    expect(await health.readyz()).toBe(200);
    const alice = await clients(service.url).prompts("alice");

    const acknowledged = new Map<string, string>(); // prompt id -> content
    const failures: ConnectError[] = [];
    let stop = false;
    const writers = Array.from({ length: 3 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const content = `w${w}-${i}`;
        try {
          const prompt = must(
            (await alice.createPrompt({ title: content, content }, { timeoutMs: 5_000 })).prompt,
          );
          acknowledged.set(prompt.id, content);
        } catch (e) {
          failures.push(ConnectError.from(e));
          await new Promise((resolve) => setTimeout(resolve, 20)); // no hot loop while the database is away
        }
      }
    });

    try {
      await pollUntil(() => acknowledged.size >= 20, 20_000, "writes before the outage");
      await sqld.kill();
      await pollUntil(() => failures.length >= 3, 20_000, "writes failing during the outage");
      await pollUntil(async () => (await health.grpc()) === "NOT_SERVING", 20_000, "health NOT_SERVING");
      expect(await health.grpc("autoforge.prompt.v1.PromptService")).toBe("NOT_SERVING");
      expect(await health.readyz()).toBe(503);
      expect(await health.healthz()).toBe(200); // alive: the process answers, it is not to be restarted
      const [someId] = acknowledged.keys();
      const read = await alice.getPrompt({ id: someId ?? "" }, { timeoutMs: 5_000 }).then(
        () => "OK",
        (e: unknown) => Code[ConnectError.from(e).code],
      );
      expect(read).toBe("Unavailable"); // reads too

      const before = acknowledged.size;
      await sqld.start();
      await pollUntil(async () => (await health.grpc()) === "SERVING", 30_000, "health SERVING again");
      expect(await health.readyz()).toBe(200);
      await pollUntil(() => acknowledged.size >= before + 20, 20_000, "writes after the outage");
    } finally {
      stop = true;
      await Promise.all(writers);
    }

    // every failure told the caller to come back later, none was an internal error
    const codes = new Set(failures.map((f) => Code[f.code]));
    expect([...codes]).toEqual(["Unavailable"]);
    expect(service.logs.some((l) => l.includes('"msg":"not ready'))).toBe(true);

    // nothing acknowledged is missing
    const missing: string[] = [];
    for (const [id, content] of acknowledged) {
      const { prompt } = await alice.getPrompt({ id });
      if (prompt?.content !== content) missing.push(id);
    }
    expect(missing).toEqual([]);
  }, 120_000);
});
