import {
  AdminService,
  ListAuditEventsRequestSchema,
  RunMaintenanceRequestSchema,
} from "@autoforge/contracts/admin/v1";
import { PromptEventType, PromptService } from "@autoforge/contracts/prompt/v1";
import {
  create,
  type DescMethod,
  type DescService,
  type Message,
  type MessageInitShape,
} from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import {
  createConnectTransport,
  createGrpcTransport,
  createGrpcWebTransport,
} from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import pino from "pino";
import { onTestFinished } from "vitest";
import { z } from "zod";
import {
  access,
  createGrpcServiceDefinition,
  createServer,
  createTokenSigner,
  createValidators,
  type DatabaseBinding,
  defineService,
  defineValidator,
  NotFoundError,
  type RegisteredService,
  type Server,
  type ServerLimits,
  type ServiceHandlers,
} from "../src/index.js";

export const secret = "test-secret-that-is-at-least-32-bytes-long!";
export const signer = createTokenSigner(secret);

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A pino logger writing parsed JSON lines into an array. */
export function captureLogger() {
  const lines: LogLine[] = [];
  const logger = pino(
    // debug: the access line of a call that went well is at debug
    { level: "debug" },
    { write: (line: string) => lines.push(JSON.parse(line) as LogLine) },
  );
  return { logger, lines };
}

/** Polls `condition` until it holds; fails after `timeoutMs` (instead of sleeping a guessed time). */
export async function pollUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not met before the deadline");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Counts handler invocations, so tests can assert that a handler did NOT run. */
export interface Probe {
  calls: Record<string, number>;
  /** Calls with resource_type "hold" wait for this promise. */
  hold?: Promise<void>;
}

/** A test implementation of AdminService whose behaviour is driven by the request. */
export function testAdminHandlers(probe: Probe): ServiceHandlers<typeof AdminService> {
  const count = (name: string) => {
    probe.calls[name] = (probe.calls[name] ?? 0) + 1;
  };
  return {
    async listAuditEvents(req, ctx) {
      count("listAuditEvents");
      if (req.resourceType === "missing") throw new NotFoundError(`resource ${req.resourceId} not found`);
      if (req.resourceType === "boom") throw new Error("secret database password in this message");
      if (req.resourceType === "hold") await probe.hold;
      if (req.resourceType === "slow") {
        await new Promise<void>((resolve) =>
          ctx.signal.addEventListener("abort", () => resolve(), { once: true }),
        );
      }
      return {
        events: [
          { sequence: 1n, actor: ctx.principal.subject, action: "test.list", resourceId: req.resourceId },
        ],
        nextPageToken: `size=${req.pageSize}`,
      };
    },
    async verifyAuditChain(_req, ctx) {
      count("verifyAuditChain");
      return { ok: true, checkedCount: 42n, reason: `checked for ${ctx.principal.subject}` };
    },
    async runMaintenance(req) {
      count("runMaintenance");
      return { results: req.tasks.map((task) => ({ task, ok: true, detail: "done" })) };
    },
    async getDatabaseStats() {
      count("getDatabaseStats");
      return { pageSize: 4096n, journalMode: "wal" };
    },
  };
}

export const adminValidators = createValidators(
  defineValidator(ListAuditEventsRequestSchema, {
    pageSize: z.int().min(0).max(100),
    actor: z.string().max(64),
  }),
  defineValidator(RunMaintenanceRequestSchema, { tasks: z.array(z.number().int().min(1)).max(5) }),
);

/** AdminService as services register it: admin-only, GetDatabaseStats also open to `service` principals. */
export function testAdminService(probe: Probe): RegisteredService {
  return defineService({
    service: AdminService,
    handlers: testAdminHandlers(probe),
    validators: adminValidators,
    access: {
      default: access.operator("admin"),
      methods: { getDatabaseStats: access.operator("admin", "service") },
    },
  });
}

/** Every PromptService method answers UNIMPLEMENTED except WatchPromptEvents. */
export function testPromptService(): RegisteredService {
  const handlers: Record<string, unknown> = {};
  for (const m of PromptService.methods) {
    handlers[m.localName] = async () => {
      throw new ConnectError("not implemented in this test", Code.Unimplemented);
    };
  }
  const watch: ServiceHandlers<typeof PromptService>["watchPromptEvents"] = async function* (req, ctx) {
    for (let i = 1n; i <= 3n; i++) {
      yield {
        event: {
          sequence: req.afterSequence + i,
          type: PromptEventType.CREATED,
          ownerId: ctx.principal.subject,
        },
      };
    }
    // Then wait for new events (none come) until the call ends.
    await new Promise<void>((resolve) =>
      ctx.signal.addEventListener("abort", () => resolve(), { once: true }),
    );
  };
  handlers.watchPromptEvents = watch;
  return defineService({
    service: PromptService,
    handlers: handlers as ServiceHandlers<typeof PromptService>,
    access: { default: access.editor(), methods: { watchPromptEvents: access.feed() } },
  });
}

export interface TestServer {
  server: Server;
  grpcPort: number;
  connectPort: number;
  probe: Probe;
  lines: LogLine[];
}

/** A real server on 127.0.0.1, ports 0, shut down when the test (or file, with `scope`) finishes. */
export async function startTestServer(
  options: {
    database?: DatabaseBinding<unknown>;
    services?: (probe: Probe) => RegisteredService[];
    limits?: ServerLimits;
  } = {},
): Promise<TestServer> {
  const probe: Probe = { calls: {} };
  const { logger, lines } = captureLogger();
  const server = createServer({
    services: options.services?.(probe) ?? [testAdminService(probe), testPromptService()],
    auth: { secret },
    logger,
    ...(options.database === undefined ? {} : { database: options.database }),
    ...(options.limits === undefined ? {} : { limits: options.limits }),
  });
  const ports = await server.listen({ host: "127.0.0.1", grpcPort: 0, connectPort: 0 });
  return { server, ...ports, probe, lines };
}

/** The outcome of one call, transport-neutral, so two ports can be compared with toEqual. */
export type Outcome = { ok: true; value: unknown } | { ok: false; code: number; message: string };

/** A grpc-js client for a protobuf-es service descriptor (same ServiceDefinition the server registers). */
export function grpcClient(service: DescService, port: number): grpc.Client {
  const Ctor = grpc.makeGenericClientConstructor(createGrpcServiceDefinition(service), service.name);
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  onTestFinished(() => client.close());
  return client;
}

export function grpcUnary<M extends DescMethod>(
  client: grpc.Client,
  method: M,
  request: MessageInitShape<M["input"]>,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<Outcome> {
  const metadata = new grpc.Metadata();
  for (const [k, v] of Object.entries(headers)) metadata.set(k, v);
  const fn = (client as unknown as Record<string, ((...args: unknown[]) => void) | undefined>)[method.name];
  if (fn === undefined) throw new Error(`no client method ${method.name}`);
  return new Promise((resolve) => {
    fn.call(
      client,
      create(method.input, request),
      metadata,
      { deadline: Date.now() + timeoutMs },
      (err: grpc.ServiceError | null, value: Message) =>
        resolve(err === null ? { ok: true, value } : { ok: false, code: err.code, message: err.details }),
    );
  });
}

export type Protocol = "connect" | "grpc-web" | "grpc-h2c";

export function connectTransport(protocol: Protocol, port: number): Transport {
  const baseUrl = `http://127.0.0.1:${port}`;
  switch (protocol) {
    case "connect":
      return createConnectTransport({ baseUrl, httpVersion: "1.1" });
    case "grpc-web":
      return createGrpcWebTransport({ baseUrl, httpVersion: "1.1" });
    case "grpc-h2c":
      return createGrpcTransport({ baseUrl });
  }
}

export async function connectUnary<M extends DescMethod>(
  transport: Transport,
  service: DescService,
  method: M,
  request: MessageInitShape<M["input"]>,
  headers: Record<string, string> = {},
): Promise<Outcome> {
  const client = createClient(service, transport) as unknown as Record<
    string,
    (req: unknown, opts: unknown) => Promise<Message>
  >;
  const fn = client[method.localName];
  if (fn === undefined) throw new Error(`no client method ${method.localName}`);
  try {
    return { ok: true, value: await fn(request, { headers, timeoutMs: 10_000 }) };
  } catch (e) {
    const err = ConnectError.from(e);
    return { ok: false, code: err.code, message: err.rawMessage };
  }
}

export async function bearer(sub: string, roles: ("user" | "publisher" | "service" | "admin")[]) {
  return { authorization: `Bearer ${await signer.signToken({ sub, roles })}` };
}

/** A WatchPromptEvents call as a connect client makes it: request, headers, abort signal. */
export type WatchPromptEvents = (
  req: { afterSequence: bigint },
  opts: { headers: Record<string, string>; signal: AbortSignal },
) => AsyncIterable<{ event?: { sequence: bigint } | undefined }>;

/**
 * Follows the test feed from sequence 10 and aborts after `n` events; the abort must end the stream with
 * CANCELED (anything else is rethrown). Returns the sequences received.
 */
export async function watchThenAbort(
  watch: WatchPromptEvents,
  headers: Record<string, string>,
  n = 3,
): Promise<bigint[]> {
  const abort = new AbortController();
  const got: bigint[] = [];
  try {
    for await (const res of watch({ afterSequence: 10n }, { headers, signal: abort.signal })) {
      got.push(res.event?.sequence ?? 0n);
      if (got.length === n) abort.abort();
    }
  } catch (e) {
    if (ConnectError.from(e).code !== Code.Canceled) throw e;
  }
  return got;
}
