import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AdminService } from "@autoforge/contracts/admin/v1";
import { EvaluationService, type TestResult } from "@autoforge/contracts/evaluation/v1";
import { DatasetService } from "@autoforge/contracts/evaluation/v1/datasets";
import { PromotionService } from "@autoforge/contracts/evaluation/v1/promotions";
import { PromptSchema, PromptService } from "@autoforge/contracts/prompt/v1";
import { createDatabase, type Database, migrate } from "@autoforge/db";
import { allProjects, createTokenSigner, type Role, type TokenClaims } from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { type Client, Code, ConnectError, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { pino } from "pino";
import { onTestFinished } from "vitest";
import { must } from "../../../test/support/assertions.js";
import { databaseOptions, type EngineLocation, engineLocation } from "../../../test/support/engine.js";
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

/**
 * evaluation-service's own token for the event feed: the all-projects service principal (what main.ts mints and
 * SERVICE_TOKEN must be), reading every project's events.
 */
export function feedToken(): Promise<string> {
  return signer.signToken({ sub: "evaluation-service", roles: ["service"], projects: allProjects });
}

/**
 * A database on the test engine (`TEST_DATABASE`: a temp file, sqld, or an embedded replica) with every migration
 * applied; closed and removed when the test finishes. `location` says where it lives (`path`: its local file).
 */
export async function openTestDatabase(): Promise<{
  db: Database<Schema>;
  url: string;
  dir: string;
  location: EngineLocation;
}> {
  const dir = mkdtempSync(join(tmpdir(), "evaluation-service-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const location = await engineLocation(dir, "evaluation-service");
  const db = await createDatabase({ ...databaseOptions(location), schema });
  onTestFinished(() => db.close());
  await migrate(db, migrationsFolder);
  return { db, url: location.url, dir, location };
}

export type EvalClient = Client<typeof EvaluationService>;
export type PromptClient = Client<typeof PromptService>;
export type AdminClient = Client<typeof AdminService>;
export type DatasetClient = Client<typeof DatasetService>;

/**
 * gRPC clients (connect-node's gRPC transport) for one base URL; closed when the test finishes. `evaluations`,
 * `prompts`, `admin`: tokens without project claims (the caller acts in its personal project `user:{sub}`);
 * `evaluationsAs` / `promptsAs`: any claims (`projects: { acme: "viewer" }`, a service principal's `project`).
 */
export function clientFactory(baseUrl: string) {
  const sessionManager = new Http2SessionManager(baseUrl);
  onTestFinished(() => sessionManager.abort());
  const transportFor = async (sub: string, roles: Role[]) => transportWith({ sub, roles });
  const transportWith = async (claims: TokenClaims) => {
    const token = await signer.signToken(claims);
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
    evaluationsAs: async (claims: TokenClaims) =>
      createClient(EvaluationService, await transportWith(claims)),
    promptsAs: async (claims: TokenClaims) => createClient(PromptService, await transportWith(claims)),
    datasets: async (sub: string, roles: Role[] = ["user"]) =>
      createClient(DatasetService, await transportFor(sub, roles)),
    datasetsAs: async (claims: TokenClaims) => createClient(DatasetService, await transportWith(claims)),
    promotionsAs: async (claims: TokenClaims) => createClient(PromotionService, await transportWith(claims)),
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
  /** EvaluationService / PromptService clients with any token claims (team projects, service principals). */
  evaluationsAs: (claims: TokenClaims) => Promise<EvalClient>;
  promptsAs: (claims: TokenClaims) => Promise<PromptClient>;
  /** DatasetService / PromotionService clients of evaluation-service with any token claims. */
  datasetsAs: ReturnType<typeof clientFactory>["datasetsAs"];
  promotionsAs: ReturnType<typeof clientFactory>["promotionsAs"];
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
  // the promotion gate moves labels as this service's all-projects principal, as main.ts wires it
  const app = createEvaluationServer({
    db,
    prompts: promptClient,
    auth: { secret },
    logger,
    gateToken: feedToken,
  });
  const { grpcPort } = await app.server.listen({ host: "127.0.0.1", grpcPort: 0, connectPort: 0 });
  let consumer: PromptEventConsumer | undefined;
  if (options.consumer === true) {
    const token = await feedToken();
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
    evaluationsAs: evalClients.evaluationsAs,
    promptsAs: promptClients.promptsAs,
    datasetsAs: evalClients.datasetsAs,
    promotionsAs: evalClients.promotionsAs,
  };
}

/**
 * A PromptService client without prompt-service, for tests of this service alone: `prompts` maps a prompt id to
 * its project (and current version); getPrompt answers like prompt-service (NOT_FOUND for an unknown prompt or
 * version, or a prompt of another project than the one asked). The feed is empty.
 */
export function stubPromptClient(
  prompts: Map<string, { project: string; versions?: number }>,
): PromptServiceClient {
  return {
    async getPrompt(request) {
      const known = prompts.get(request.id);
      const versions = known?.versions ?? 1;
      if (known === undefined || known.project !== request.project || request.version > versions) {
        throw new ConnectError(`prompt ${request.id} not found`, Code.NotFound);
      }
      const version = request.version === 0 ? versions : request.version;
      return {
        $typeName: "autoforge.prompt.v1.GetPromptResponse",
        prompt: create(PromptSchema, {
          id: request.id,
          project: known.project,
          version,
          currentVersion: versions,
        }),
      };
    },
    async listPromptEvents() {
      return { $typeName: "autoforge.prompt.v1.ListPromptEventsResponse", events: [], lastSequence: 0n };
    },
    async *watchPromptEvents() {},
    async setPromptLabel(request) {
      throw new ConnectError(`the stub moves no labels (${request.label})`, Code.Unimplemented);
    },
    breakerState: "closed",
    close() {},
  };
}

/**
 * evaluation-service alone (both ports on 0) on `db` with a stub PromptService client (`stubPromptClient`);
 * clients as in `clientFactory`. Closed when the test finishes.
 */
export async function startEvaluationService(db: Database<Schema>, prompts: PromptServiceClient) {
  const logger = pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" });
  const app = createEvaluationServer({ db, prompts, auth: { secret }, logger });
  const { grpcPort, connectPort } = await app.server.listen({
    host: "127.0.0.1",
    grpcPort: 0,
    connectPort: 0,
  });
  onTestFinished(() => app.server.shutdown({ graceMs: 500 }));
  return { app, grpcPort, connectPort, clients: clientFactory(`http://127.0.0.1:${grpcPort}`) };
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

/**
 * A prompt with `versions` versions (content changes), in `project` (default "": the caller's personal project).
 */
export async function createPrompt(prompts: PromptClient, versions = 1, title = "greeting", project = "") {
  let prompt = must((await prompts.createPrompt({ title, content: "v1", project })).prompt);
  for (let v = 2; v <= versions; v++) {
    prompt = must(
      (
        await prompts.updatePrompt({
          id: prompt.id,
          etag: prompt.etag,
          updateMask: { paths: ["content"] },
          content: `v${v}`,
          project,
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
  datasetItemId?: string;
  trial?: number;
  /** Values of the evaluation's declared scores. */
  scores?: {
    name: string;
    value:
      | { case: "number"; value: number }
      | { case: "boolean"; value: boolean }
      | { case: "category"; value: string }
      | { case: undefined; value?: undefined };
  }[];
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

/** The two ports of evaluation-service: the grpc-js port (gRPC) and the Connect port (Connect, gRPC-Web, gRPC). */
export type Protocol = "grpc" | "connect";

/**
 * `startServices` without the consumer, also listening on the Connect port: a real evaluation-service wired to
 * a real prompt-service (in process), and `clientsFor(protocol, claims)`, EvaluationService and AdminService
 * clients of evaluation-service over either port (`claims` undefined: no authorization header at all).
 * Everything is closed when the test finishes.
 */
export async function startServicesOnBothPorts() {
  const promptService = await startPromptServiceFixture(secret);
  const { db } = await openTestDatabase();
  const logger = pino({ level: "silent" });
  const promptClient = createPromptClient({ baseUrl: promptService.url, logger });
  const app = createEvaluationServer({ db, prompts: promptClient, auth: { secret }, logger });
  const { grpcPort, connectPort } = await app.server.listen({
    host: "127.0.0.1",
    grpcPort: 0,
    connectPort: 0,
  });
  const sessionManager = new Http2SessionManager(`http://127.0.0.1:${grpcPort}`);
  // Registered after openTestDatabase's cleanup, so it runs first (vitest runs onTestFinished in reverse).
  onTestFinished(async () => {
    sessionManager.abort();
    await app.server.shutdown({ graceMs: 500 });
    promptClient.close();
  });
  const clientsFor = async (protocol: Protocol, claims: TokenClaims | undefined) => {
    const interceptors: Interceptor[] = [];
    if (claims !== undefined) {
      const token = await signer.signToken(claims);
      interceptors.push((next) => (req) => {
        req.header.set("authorization", `Bearer ${token}`);
        return next(req);
      });
    }
    const transport =
      protocol === "grpc"
        ? createGrpcTransport({ baseUrl: `http://127.0.0.1:${grpcPort}`, sessionManager, interceptors })
        : createConnectTransport({
            baseUrl: `http://127.0.0.1:${connectPort}`,
            httpVersion: "1.1",
            interceptors,
          });
    return {
      evaluations: createClient(EvaluationService, transport) as EvalClient,
      admin: createClient(AdminService, transport) as AdminClient,
    };
  };
  return {
    db,
    promptService,
    grpcPort,
    connectPort,
    clientsFor,
    /** PromptService (the real one, over gRPC) with any token claims: seeding prompts. */
    promptsAs: clientFactory(promptService.url).promptsAs,
  };
}

/** The migrations from `tag` to the newest, oldest first: what `down(n)` of them reverts (newest first). */
export async function migrationsFrom(
  migrator: { status(): Promise<readonly { tag: string }[]> },
  tag: string,
): Promise<string[]> {
  const tags = (await migrator.status()).map((m) => m.tag);
  const at = tags.indexOf(tag);
  if (at < 0) throw new Error(`no migration ${tag}`);
  return tags.slice(at);
}
