/**
 * Both services as separate OS processes, run from their TypeScript sources (`node --conditions=source
 * --import tsx src/main.ts`: no build step, so the tests always run the code in the checkout). Each test gets
 * its own temp directory, databases on the test engine (`TEST_DATABASE`: files there, or sqld servers it
 * starts), ports picked by the OS (GRPC_PORT=0, read back from the "listening" log line) and is responsible for
 * nothing else: every child is SIGKILLed after the test.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { AdminService } from "@autoforge/contracts/admin/v1";
import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { DatasetService } from "@autoforge/contracts/evaluation/v1/datasets";
import { PromotionService } from "@autoforge/contracts/evaluation/v1/promotions";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { allProjects, createTokenSigner, type Role, type TokenClaims } from "@autoforge/server";
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { onTestFinished } from "vitest";
import { pollUntil as pollUntilShared } from "../support/assertions.js";
import { databaseEnv, engineLocation } from "../support/engine.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const secret = "e2e-test-secret-of-at-least-32-bytes-long";
export const signer = createTokenSigner(secret);

export type ServiceName = "prompt-service" | "evaluation-service";

export interface ServiceProcess {
  readonly name: ServiceName;
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly connectPort: number;
  readonly url: string;
  /** Every stdout/stderr line so far (JSON log lines). */
  readonly logs: string[];
  readonly exited: Promise<number | null>;
  /** SIGKILL (no drain, no cleanup) and wait for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** A temp directory for one test's databases, removed afterwards. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "autoforge-e2e-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Starts a service from source and resolves once it logs its listening ports. Killed after the test. */
export async function startService(
  name: ServiceName,
  env: Record<string, string>,
  options: { timeoutMs?: number } = {},
): Promise<ServiceProcess> {
  const child = spawn(process.execPath, ["--conditions=source", "--import", "tsx", "src/main.ts"], {
    cwd: join(root, "services", name),
    env: {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "",
      HOST: "127.0.0.1",
      GRPC_PORT: "0",
      CONNECT_PORT: "0",
      AUTH_JWT_SECRET: secret,
      LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const logs: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  onTestFinished(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGKILL");
      await exited;
    }
  });
  const ports = await new Promise<{ grpcPort: number; connectPort: number }>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} did not start within the deadline:\n${logs.join("\n")}`)),
      options.timeoutMs ?? 30_000,
    );
    const onLine = (line: string) => {
      logs.push(line);
      if (!line.startsWith("{")) return;
      try {
        const entry = JSON.parse(line) as { grpcPort?: unknown; connectPort?: unknown };
        if (typeof entry.grpcPort === "number" && typeof entry.connectPort === "number") {
          clearTimeout(timer);
          resolve({ grpcPort: entry.grpcPort, connectPort: entry.connectPort });
        }
      } catch {
        // not a JSON log line
      }
    };
    for (const stream of [child.stdout, child.stderr]) {
      let buffer = "";
      stream?.setEncoding("utf8");
      stream?.on("data", (chunk: string) => {
        buffer += chunk;
        let nl = buffer.indexOf("\n");
        while (nl >= 0) {
          onLine(buffer.slice(0, nl));
          buffer = buffer.slice(nl + 1);
          nl = buffer.indexOf("\n");
        }
      });
    }
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited (${code}) before listening:\n${logs.join("\n")}`));
    });
  });
  return {
    name,
    child,
    ...ports,
    url: `http://127.0.0.1:${ports.grpcPort}`,
    logs,
    exited,
    async kill(signal = "SIGKILL") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    },
  };
}

/**
 * A service's database on the test engine (`TEST_DATABASE`) as its environment: `DATABASE_URL` of a file in
 * `dir`, or of an sqld this test starts (with `DATABASE_AUTH_TOKEN`), or an embedded replica in `dir` with its
 * `DATABASE_SYNC_URL`. The same database again for the same `dir` and service in one test (a restart).
 */
export async function serviceDatabaseEnv(dir: string, name: ServiceName): Promise<Record<string, string>> {
  return databaseEnv(await engineLocation(dir, name));
}

export async function startPromptService(dir: string, port = 0): Promise<ServiceProcess> {
  return startService("prompt-service", {
    ...(await serviceDatabaseEnv(dir, "prompt-service")),
    GRPC_PORT: String(port),
  });
}

/**
 * evaluation-service's SERVICE_TOKEN, as in production: the all-projects service principal, so its consumer reads
 * every project's event feed (a plain `roles: ["service"]` token would see only its own personal project's).
 */
export const serviceClaims: TokenClaims = {
  sub: "evaluation-service",
  roles: ["service"],
  projects: allProjects,
  ttl: "1h",
};

export async function startEvaluationService(dir: string, promptServiceUrl: string): Promise<ServiceProcess> {
  return startService("evaluation-service", {
    ...(await serviceDatabaseEnv(dir, "evaluation-service")),
    PROMPT_SERVICE_URL: promptServiceUrl,
    SERVICE_TOKEN: await signer.signToken(serviceClaims),
  });
}

/** gRPC clients for a base URL (one HTTP/2 connection, reconnecting after failures); closed after the test. */
export function clients(baseUrl: string) {
  const sessionManager = new Http2SessionManager(baseUrl);
  onTestFinished(() => sessionManager.abort());
  const transport = async (claims: TokenClaims) => {
    const token = await signer.signToken({ ttl: "1h", ...claims });
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    return createGrpcTransport({ baseUrl, sessionManager, interceptors: [auth] });
  };
  return {
    prompts: async (sub: string, roles: Role[] = ["user"]): Promise<Client<typeof PromptService>> =>
      createClient(PromptService, await transport({ sub, roles })),
    evaluations: async (sub: string, roles: Role[] = ["user"]): Promise<Client<typeof EvaluationService>> =>
      createClient(EvaluationService, await transport({ sub, roles })),
    admin: async (): Promise<Client<typeof AdminService>> =>
      createClient(AdminService, await transport({ sub: "root", roles: ["admin"] })),
    /** Clients with any claims: a member of team projects (`projects: { acme: "editor" }`), a service principal, ... */
    as: async (claims: TokenClaims) => {
      const t = await transport(claims);
      return {
        prompts: createClient(PromptService, t),
        evaluations: createClient(EvaluationService, t),
        datasets: createClient(DatasetService, t),
        promotions: createClient(PromotionService, t),
      };
    },
    /** PromptService as evaluation-service's all-projects principal: every project's change feed. */
    feed: async (): Promise<Client<typeof PromptService>> =>
      createClient(PromptService, await transport(serviceClaims)),
  };
}

export { expectCode, must } from "../support/assertions.js";

/** Polls until `condition` holds; the processes here get a longer default (20 s). */
export function pollUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  what = "condition",
): Promise<void> {
  return pollUntilShared(condition, timeoutMs, what);
}

export { Code, ConnectError };
