import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { AdminService } from "@autoforge/contracts/admin/v1";
import { Code } from "@connectrpc/connect";
import { expect, it, onTestFinished } from "vitest";
import {
  bearer,
  connectTransport,
  connectUnary,
  grpcClient,
  grpcUnary,
  type Outcome,
  pollUntil,
  secret,
} from "./helpers.js";

const packageDir = fileURLToPath(new URL("..", import.meta.url));
const fixture = fileURLToPath(new URL("./fixtures/slow-server.ts", import.meta.url));

interface FixtureEvent {
  event: string;
  count?: number;
  grpcPort?: number;
  connectPort?: number;
}

function startFixture() {
  const child: ChildProcess = spawn(process.execPath, ["--conditions=source", "--import", "tsx", fixture], {
    cwd: packageDir,
    env: { ...process.env, AUTH_JWT_SECRET: secret },
    stdio: ["ignore", "pipe", "inherit"],
  });
  onTestFinished(() => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  const events: FixtureEvent[] = [];
  if (child.stdout === null) throw new Error("no stdout");
  createInterface({ input: child.stdout }).on("line", (line) =>
    events.push(JSON.parse(line) as FixtureEvent),
  );
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  return { child, events, exited };
}

it("SIGTERM during 100 in-flight calls: all complete OK, new calls are refused, the process exits 0", async () => {
  const { child, events, exited } = startFixture();
  await pollUntil(() => events.some((e) => e.event === "listening"), 20_000);
  const { grpcPort = 0, connectPort = 0 } = events.find((e) => e.event === "listening") ?? {};
  const headers = await bearer("alice", ["admin"]);

  // 50 calls on the gRPC port (one HTTP/2 connection), 50 on the Connect port (Connect protocol, HTTP/1.1).
  const grpc = grpcClient(AdminService, grpcPort);
  const connect = connectTransport("connect", connectPort);
  const calls: Promise<Outcome>[] = [];
  for (let i = 0; i < 50; i++) {
    calls.push(grpcUnary(grpc, AdminService.method.listAuditEvents, { pageToken: `g${i}` }, headers, 20_000));
    calls.push(
      connectUnary(
        connect,
        AdminService,
        AdminService.method.listAuditEvents,
        { pageToken: `c${i}` },
        headers,
      ),
    );
  }
  await pollUntil(() => events.some((e) => e.event === "started" && e.count === 100), 10_000);

  child.kill("SIGTERM");

  // Draining: the Connect port answers /healthz 503 and refuses new calls with UNAVAILABLE; the gRPC port
  // no longer accepts connections (a new client gets UNAVAILABLE too).
  const healthz = async () => (await fetch(`http://127.0.0.1:${connectPort}/healthz`)).status;
  let status = await healthz();
  const until = Date.now() + 5_000;
  while (status !== 503 && Date.now() < until) status = await healthz();
  expect(status).toBe(503);
  const late = await connectUnary(
    connectTransport("connect", connectPort),
    AdminService,
    AdminService.method.verifyAuditChain,
    {},
    headers,
  );
  expect(late).toMatchObject({ ok: false, code: Code.Unavailable });
  const lateGrpc = await grpcUnary(
    grpcClient(AdminService, grpcPort),
    AdminService.method.verifyAuditChain,
    {},
    headers,
  );
  expect(lateGrpc).toMatchObject({ ok: false, code: Code.Unavailable });

  const outcomes = await Promise.all(calls);
  expect(outcomes.filter((o) => !o.ok)).toEqual([]);
  expect(outcomes).toHaveLength(100);
  expect(await exited).toBe(0);
  expect(events.at(-1)?.event).toBe("stopped");
});
