import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AdminService } from "@autoforge/contracts/admin/v1";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { createDatabase, type Database, migrate } from "@autoforge/db";
import { createTokenSigner, type Role, type TokenClaims } from "@autoforge/server";
import { type Client, Code, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { pino } from "pino";
import { onTestFinished } from "vitest";
import { databaseOptions, type EngineLocation, engineLocation } from "../../../test/support/engine.js";
import { migrationsFolder } from "../src/db/migrations-folder.js";
import { type Schema, schema } from "../src/db/schema.js";
import { createPromptServer, type PromptServer } from "../src/server.js";

export const secret = "prompt-service-test-secret-of-32-bytes-or-more";
const signer = createTokenSigner(secret);

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
  const dir = mkdtempSync(join(tmpdir(), "prompt-service-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const location = await engineLocation(dir, "prompt-service");
  const db = await createDatabase({ ...databaseOptions(location), schema });
  onTestFinished(() => db.close());
  await migrate(db, migrationsFolder);
  return { db, url: location.url, dir, location };
}

export type PromptClient = Client<typeof PromptService>;
/** A token's project claims: `projects` (a member's roles, or `*`) and a service principal's `project`. */
export type ProjectClaims = Pick<TokenClaims, "projects" | "project">;
export type AdminClient = Client<typeof AdminService>;

export interface PromptServiceHarness {
  db: Database<Schema>;
  url: string;
  /** Where the database lives on the test engine (`peerOptions(location)`: a second handle, as another process). */
  location: EngineLocation;
  app: PromptServer;
  grpcPort: number;
  connectPort: number;
  /** Owner `alice`, role user. */
  alice: PromptClient;
  /** Owner `bob`, role user: another tenant. */
  bob: PromptClient;
  /** Owner `alice` with the publisher role (may move `production`). */
  alicePublisher: PromptClient;
  /** evaluation-service's all-projects service principal (every project's event feed). */
  service: PromptClient;
  /** PromptService as `root` with the admin role. */
  adminPrompts: PromptClient;
  /** AdminService as an admin. */
  admin: AdminClient;
  /** AdminService as a plain user (must be refused). */
  adminAsUser: AdminClient;
  /** A client for any subject, roles and project claims. */
  client(sub: string, roles: Role[], claims?: ProjectClaims): Promise<PromptClient>;
  /** A client for the Connect port (Connect protocol, HTTP/1.1). */
  connectClient(sub: string, roles: Role[], claims?: ProjectClaims): Promise<PromptClient>;
}

/**
 * A real server (both ports on 0) over a temp-file database, with gRPC clients (connect-node's gRPC transport
 * against the grpc-js port) for several owners and roles. Everything is closed when the test finishes.
 */
export async function startPromptService(
  options: { watchPollIntervalMs?: number; promotionGateSubjects?: readonly string[] } = {},
): Promise<PromptServiceHarness> {
  const { db, url, location } = await openTestDatabase();
  const app = createPromptServer({
    db,
    auth: { secret },
    logger: pino({ level: process.env.TEST_LOG_LEVEL ?? "silent" }),
    watchPollIntervalMs: options.watchPollIntervalMs ?? 250,
    ...(options.promotionGateSubjects === undefined
      ? {}
      : { promotionGateSubjects: options.promotionGateSubjects }),
  });
  const { grpcPort, connectPort } = await app.server.listen({
    host: "127.0.0.1",
    grpcPort: 0,
    connectPort: 0,
  });
  const baseUrl = `http://127.0.0.1:${grpcPort}`;
  const sessionManager = new Http2SessionManager(baseUrl);
  onTestFinished(async () => {
    await app.server.shutdown({ graceMs: 1_000 });
    sessionManager.abort();
  });

  const transportFor = async (sub: string, roles: Role[], claims: ProjectClaims = {}) => {
    const token = await signer.signToken({ sub, roles, ...claims });
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    };
    return createGrpcTransport({ baseUrl, sessionManager, interceptors: [auth] });
  };
  const client = async (sub: string, roles: Role[], claims: ProjectClaims = {}) =>
    createClient(PromptService, await transportFor(sub, roles, claims));
  return {
    db,
    url,
    location,
    app,
    grpcPort,
    connectPort,
    alice: await client("alice", ["user"]),
    bob: await client("bob", ["user"]),
    alicePublisher: await client("alice", ["user", "publisher"]),
    service: await client("evaluation-service", ["service"], { projects: "*" }),
    adminPrompts: await client("root", ["admin"]),
    admin: createClient(AdminService, await transportFor("root", ["admin"])),
    adminAsUser: createClient(AdminService, await transportFor("alice", ["user"])),
    client,
    async connectClient(sub, roles, claims = {}) {
      const token = await signer.signToken({ sub, roles, ...claims });
      const transport = createConnectTransport({
        baseUrl: `http://127.0.0.1:${connectPort}`,
        httpVersion: "1.1",
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${token}`);
            return next(req);
          },
        ],
      });
      return createClient(PromptService, transport);
    },
  };
}

export { expectCode, must, pollUntil } from "../../../test/support/assertions.js";

/** Row counts of every table: "changes nothing" assertions compare two of these. */
export async function tableCounts(
  db: Database<Schema>,
  tables: readonly string[] = allTables,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of tables) {
    const rs = await db.client.execute(`SELECT count(*) AS n FROM ${t}`);
    out[t] = Number(rs.rows[0]?.n ?? 0);
  }
  return out;
}

const allTables = [
  "prompts",
  "prompt_versions",
  "prompt_labels",
  "prompt_tags",
  "prompt_templates",
  "prompt_events",
  "prompt_label_history",
  "project_settings",
  "idempotency_keys",
  "audit_log",
];

export { Code };
