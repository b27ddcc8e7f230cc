import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { AdminService } from "@autoforge/contracts/admin/v1";
import { fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { service as healthService } from "grpc-health-check";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  bearer,
  connectTransport,
  connectUnary,
  grpcClient,
  grpcUnary,
  pollUntil,
  startTestServer,
} from "./helpers.js";

const require = createRequire(import.meta.url);

interface HealthClient extends grpc.Client {
  check(req: { service: string }, cb: (e: grpc.ServiceError | null, res?: { status: string }) => void): void;
  watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }>;
}

function healthClient(port: number): HealthClient {
  const Ctor = grpc.makeGenericClientConstructor(healthService, "Health");
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as HealthClient;
  onTestFinished(() => client.close());
  return client;
}

function check(client: HealthClient, service: string) {
  return new Promise<{ status?: string; code?: number }>((resolve) =>
    client.check({ service }, (e, res) =>
      resolve(e === null ? { status: res?.status ?? "" } : { code: e.code }),
    ),
  );
}

describe("grpc.health.v1", () => {
  it("Check and Watch answer SERVING, then NOT_SERVING while the server drains", async () => {
    const t = await startTestServer();
    const health = healthClient(t.grpcPort);
    expect(await check(health, "")).toEqual({ status: "SERVING" });
    expect(await check(health, "autoforge.admin.v1.AdminService")).toEqual({ status: "SERVING" });
    expect(await check(health, "autoforge.prompt.v1.PromptService")).toEqual({ status: "SERVING" });
    expect(await check(health, "no.such.Service")).toEqual({ code: grpc.status.NOT_FOUND });

    const statuses: string[] = [];
    const watch = health.watch({ service: "" });
    const ended = new Promise<void>((resolve) => {
      watch.on("data", (m: { status: string }) => statuses.push(m.status));
      watch.on("error", () => resolve());
      watch.on("end", () => resolve());
    });
    await pollUntil(() => statuses.length === 1);
    expect(statuses).toEqual(["SERVING"]);

    // Keep one call in flight so the drain lasts until we release it.
    let release!: () => void;
    t.probe.hold = new Promise((resolve) => {
      release = resolve;
    });
    const admin = await bearer("alice", ["admin"]);
    const held = grpcUnary(
      grpcClient(AdminService, t.grpcPort),
      AdminService.method.listAuditEvents,
      {
        resourceType: "hold",
      },
      admin,
    );
    await pollUntil(() => t.server.inFlight === 1);

    const stopped = t.server.shutdown({ graceMs: 10_000 });
    await ended;
    expect(statuses).toEqual(["SERVING", "NOT_SERVING"]);

    // While draining: /healthz says 503 and a new call is refused with UNAVAILABLE.
    expect((await fetch(`http://127.0.0.1:${t.connectPort}/healthz`)).status).toBe(503);
    const refused = await connectUnary(
      connectTransport("connect", t.connectPort),
      AdminService,
      AdminService.method.verifyAuditChain,
      {},
      admin,
    );
    expect(refused).toEqual({ ok: false, code: Code.Unavailable, message: "the server is shutting down" });

    // The in-flight call still completes normally.
    release();
    expect(await held).toMatchObject({ ok: true });
    await stopped;
  });
});

describe("gRPC server reflection", () => {
  const reflectionProto = join(
    dirname(require.resolve("@grpc/reflection")),
    "../proto/grpc/reflection/v1/reflection.proto",
  );

  interface ReflectionResponse {
    listServicesResponse?: { service: { name: string }[] };
    fileDescriptorResponse?: { fileDescriptorProto: Buffer[] };
    errorResponse?: { errorCode: number };
  }

  async function reflect(port: number, request: Record<string, string>): Promise<ReflectionResponse> {
    const definition = protoLoader.loadSync(reflectionProto, {
      keepCase: false,
      longs: String,
      defaults: true,
    });
    const pkg = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: grpc.ServiceClientConstructor } } };
    };
    const client = new pkg.grpc.reflection.v1.ServerReflection(
      `127.0.0.1:${port}`,
      grpc.credentials.createInsecure(),
    );
    onTestFinished(() => client.close());
    const stream = (
      client as unknown as { serverReflectionInfo(): grpc.ClientDuplexStream<unknown, ReflectionResponse> }
    ).serverReflectionInfo();
    const response = new Promise<ReflectionResponse>((resolve, reject) => {
      stream.once("data", resolve);
      stream.once("error", reject);
    });
    stream.write(request);
    stream.end();
    return response;
  }

  it("lists the services and resolves a symbol to its file (with dependencies)", async () => {
    const t = await startTestServer();
    onTestFinished(() => t.server.shutdown({ graceMs: 100 }));

    const list = await reflect(t.grpcPort, { listServices: "" });
    const names = list.listServicesResponse?.service.map((s) => s.name) ?? [];
    expect(names).toEqual(
      expect.arrayContaining([
        "autoforge.admin.v1.AdminService",
        "autoforge.prompt.v1.PromptService",
        "grpc.health.v1.Health",
      ]),
    );

    const file = await reflect(t.grpcPort, { fileContainingSymbol: "autoforge.admin.v1.AdminService" });
    const protos = file.fileDescriptorResponse?.fileDescriptorProto ?? [];
    expect(protos.length).toBeGreaterThanOrEqual(1);
    // The first file is the one that defines the symbol; its dependencies (timestamp, duration) follow.
    const text = protos.map((b) => Buffer.from(b).toString("latin1")).join("\n");
    expect(text).toContain("autoforge/admin/v1/admin_service.proto");
    expect(text).toContain("google/protobuf/timestamp.proto");

    const method = await reflect(t.grpcPort, {
      fileContainingSymbol: "autoforge.admin.v1.AdminService.ListAuditEvents",
    });
    expect(method.fileDescriptorResponse?.fileDescriptorProto.length).toBeGreaterThanOrEqual(1);
  });

  it("describes grpc.health.v1.Health with protoc's map entry names (strict clients such as grpcurl)", async () => {
    const t = await startTestServer();
    onTestFinished(() => t.server.shutdown({ graceMs: 100 }));

    const file = await reflect(t.grpcPort, { fileContainingSymbol: "grpc.health.v1.Health" });
    const protos = (file.fileDescriptorResponse?.fileDescriptorProto ?? []).map((b) =>
      fromBinary(FileDescriptorProtoSchema, b),
    );
    const listResponse = protos.flatMap((p) => p.messageType).find((m) => m.name === "HealthListResponse");
    expect(listResponse?.nestedType.map((n) => n.name)).toEqual(["StatusesEntry"]);
    expect(listResponse?.field.find((f) => f.name === "statuses")?.typeName).toBe(
      ".grpc.health.v1.HealthListResponse.StatusesEntry",
    );
  });
});
