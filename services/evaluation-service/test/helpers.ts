import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AdminService } from "@autoforge/contracts/admin/v1";
import { EvaluationService, type TestResult } from "@autoforge/contracts/evaluation/v1";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { createDatabase, type Database, migrate } from "@autoforge/db";
import { createTokenSigner, type Role } from "@autoforge/server";
import { type Client, Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { pino } from "pino";
import { onTestFinished } from "vitest";
import { must } from "../../../test/support/assertions.js";
import { createPromptEventConsumer, type PromptEventConsumer } from "../src/consumer.js";
import { migrationsFolder } from "../src/db/migrations-folder.js";
import { type Schema, schema } from "../src/db/schema.js";
import {
  createPromptClient,
  type PromptClientOptions,
  type PromptClient as PromptServiceClient,
} from "../src/prompt-client.js";
import { createEvaluationServer, type EvaluationServer } from "../src/server.js";
import { type PromptServiceFixture, startPromptServiceFixture } from "./prompt-service-fixture.js";

export const secret = "evaluation-service-test-secret-of-32-bytes-or-more";
export const signer = createTokenSigner(secret);

/** A temp-file database with every migration applied; removed when the test finishes. */
export async function openTestDatabase(): Promise<{ db: Database<Schema>; url: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), "evaluation-service-"));
  const url = `file:${join(dir, "evaluation-service.db")}`;
  const db = await createDatabase({ url, schema });
  await migrate(db, migrationsFolder);
  onTestFinished(async () => {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return { db, url, dir };
}

export type EvalClient = Client<typeof EvaluationService>;
export type PromptClient = Client<typeof PromptService>;
export type AdminClient = Client<typeof AdminService>;

/** gRPC clients (connect-node's gRPC transport) for one base URL; closed when the test finishes. */
export function clientFactory(baseUrl: string) {
  const sessionManager = new Http2SessionManager(baseUrl);
  onTestFinished(() => sessionManager.abort());
  const transportFor = async (sub: string, roles: Role[]) => {
    const token = await signer.signToken({ sub, roles });
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    return createGrpcTransport({ baseUrl, sessionManager, interceptors: [auth] });
  };
  return {
    evaluations: async (sub: string, roles: Role[] = ["user"]) =>
      createClient(EvaluationService, await transportFor(sub, roles)),
    prompts: async (sub: string, roles: Role[] = ["user"]) =>
      createClient(PromptService, await transportFor(sub, roles)),
    admin: async (sub: string, roles: Role[] = ["admin"]) =>
      createClient(AdminService, await transportFor(sub, roles)),
  };
}

export interface Harness {
  db: Database<Schema>;
  app: EvaluationServer;
  promptService: PromptServiceFixture;
  promptClient: PromptServiceClient;
  consumer: PromptEventConsumer | undefined;
  grpcPort: number;
  /** EvaluationService as owner `alice` / `bob` (another tenant). */
  alice: EvalClient;
  bob: EvalClient;
  /** PromptService (the real one) as alice / bob. */
  alicePrompts: PromptClient;
  bobPrompts: PromptClient;
  /** AdminService as an admin, and as a plain user (refused). */
  admin: AdminClient;
  adminAsUser: AdminClient;
}

/**
 * A real evaluation-service (both ports on 0, temp-file database) wired to a real prompt-service (in process,
 * port 0, its own temp-file database) through the production gRPC client. The event consumer runs when
 * `consumer: true`. Everything is closed when the test finishes.
 */
export async function startServices(
  options: {
    consumer?: boolean;
    promptService?: PromptServiceFixture;
    promptClient?: Partial<PromptClientOptions>;
  } = {},
): Promise<Harness> {
  const promptService = options.promptService ?? (await startPromptServiceFixture(secret));
  const { db } = await openTestDatabase();
  const logger = pino({ level: "silent" });
  const promptClient = createPromptClient({ baseUrl: promptService.url, logger, ...options.promptClient });
  const app = createEvaluationServer({ db, prompts: promptClient, auth: { secret }, logger });
  const { grpcPort } = await app.server.listen({ host: "127.0.0.1", grpcPort: 0, connectPort: 0 });
  let consumer: PromptEventConsumer | undefined;
  if (options.consumer === true) {
    const token = await signer.signToken({ sub: "evaluation-service", roles: ["service"] });
    consumer = createPromptEventConsumer({
      db,
      prompts: promptClient,
      token: async () => token,
      logger,
      initialDelayMs: 20,
      maxDelayMs: 200,
    });
    consumer.start();
  }
  // Registered after openTestDatabase's cleanup, so it runs first (vitest runs onTestFinished in reverse).
  onTestFinished(async () => {
    await consumer?.stop();
    await app.server.shutdown({ graceMs: 500 });
    promptClient.close();
  });
  const evalClients = clientFactory(`http://127.0.0.1:${grpcPort}`);
  const promptClients = clientFactory(promptService.url);
  return {
    db,
    app,
    promptService,
    promptClient,
    consumer,
    grpcPort,
    alice: await evalClients.evaluations("alice"),
    bob: await evalClients.evaluations("bob"),
    alicePrompts: await promptClients.prompts("alice"),
    bobPrompts: await promptClients.prompts("bob"),
    admin: await evalClients.admin("root", ["admin"]),
    adminAsUser: await evalClients.admin("alice", ["user"]),
  };
}

export { expectCode, must, pollUntil } from "../../../test/support/assertions.js";

/** Row counts of every table: "changes nothing" assertions compare two of these. */
export async function tableCounts(db: Database<Schema>): Promise<Record<string, number>> {
  const tables = [
    "evaluations",
    "test_results",
    "consumer_offsets",
    "prompt_tombstones",
    "idempotency_keys",
    "audit_log",
  ];
  const out: Record<string, number> = {};
  for (const t of tables) {
    const rs = await db.client.execute(`SELECT count(*) AS n FROM ${t}`);
    out[t] = Number(rs.rows[0]?.n ?? 0);
  }
  return out;
}

/** A prompt of `prompts`' owner, with `versions` versions (content changes). */
export async function createPrompt(prompts: PromptClient, versions = 1, title = "greeting") {
  let prompt = must((await prompts.createPrompt({ title, content: "v1" })).prompt);
  for (let v = 2; v <= versions; v++) {
    prompt = must(
      (
        await prompts.updatePrompt({
          id: prompt.id,
          etag: prompt.etag,
          updateMask: { paths: ["content"] },
          content: `v${v}`,
        })
      ).prompt,
    );
  }
  return prompt;
}

export interface ResultInput {
  name: string;
  input: string;
  expectedOutput: string;
  actualOutput: string;
  passed: boolean;
  score: number;
  latencyMs: bigint;
  metadata?: Record<string, string | number | boolean>;
}

/** Test result i of a batch: even ones pass; score (i % 11) / 10; latency 10 * i ms. */
export function result(i: number, overrides: Partial<ResultInput> = {}): ResultInput {
  return {
    name: `test ${i}`,
    input: `input ${i}`,
    expectedOutput: "yes",
    actualOutput: i % 2 === 0 ? "yes" : "no",
    passed: i % 2 === 0,
    score: (i % 11) / 10,
    latencyMs: BigInt(10 * i),
    ...overrides,
  };
}

export type { TestResult };
export { Code };
