import { AdminService } from "@autoforge/contracts/admin/v1";
import {
  PromptService,
  WatchPromptEventsRequestSchema,
  type WatchPromptEventsResponse,
} from "@autoforge/contracts/prompt/v1";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import * as grpc from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bearer,
  connectTransport,
  connectUnary,
  grpcClient,
  grpcUnary,
  type Outcome,
  type Protocol,
  pollUntil,
  signer,
  startTestServer,
  type TestServer,
  type WatchPromptEvents,
  watchThenAbort,
} from "./helpers.js";

const { listAuditEvents, verifyAuditChain, getDatabaseStats, runMaintenance } = AdminService.method;
const connectProtocols: Protocol[] = ["connect", "grpc-web", "grpc-h2c"];

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.server.shutdown({ graceMs: 1_000 });
});

/** The same call on the gRPC port (grpc-js client) and on the Connect port with every protocol. */
async function everywhere(
  call: (port: { grpc: grpc.Client } | { protocol: Protocol }) => Promise<Outcome>,
): Promise<Record<string, Outcome>> {
  const out: Record<string, Outcome> = { grpc: await call({ grpc: grpcClient(AdminService, t.grpcPort) }) };
  for (const protocol of connectProtocols) out[protocol] = await call({ protocol });
  return out;
}

function adminCall<M extends (typeof AdminService.method)[keyof typeof AdminService.method]>(
  method: M,
  request: Parameters<typeof grpcUnary<M>>[2],
  headers: Record<string, string>,
) {
  return (port: { grpc: grpc.Client } | { protocol: Protocol }) =>
    "grpc" in port
      ? grpcUnary(port.grpc, method, request, headers)
      : connectUnary(connectTransport(port.protocol, t.connectPort), AdminService, method, request, headers);
}

function expectAllEqual(outcomes: Record<string, Outcome>, expected: Outcome | ((o: Outcome) => void)) {
  for (const [port, outcome] of Object.entries(outcomes)) {
    if (typeof expected === "function") expected(outcome);
    else expect(outcome, port).toEqual(expected);
  }
}

describe("one handler, two ports", () => {
  it("answers a success with the same payload on gRPC, Connect, gRPC-Web and gRPC over h2c", async () => {
    const headers = await bearer("alice", ["admin"]);
    const outcomes = await everywhere(adminCall(verifyAuditChain, {}, headers));
    const first = outcomes.grpc;
    expect(first).toMatchObject({
      ok: true,
      value: { ok: true, checkedCount: 42n, reason: "checked for alice" },
    });
    expectAllEqual(outcomes, first as Outcome);
  });

  it("answers an error with the same code and message everywhere", async () => {
    const headers = await bearer("alice", ["admin"]);
    const outcomes = await everywhere(
      adminCall(listAuditEvents, { resourceType: "missing", resourceId: "r1" }, headers),
    );
    expectAllEqual(outcomes, { ok: false, code: Code.NotFound, message: "resource r1 not found" });
  });

  it("hides the cause of an unexpected error (INTERNAL) and logs it", async () => {
    const headers = await bearer("alice", ["admin"]);
    const outcomes = await everywhere(adminCall(listAuditEvents, { resourceType: "boom" }, headers));
    expectAllEqual(outcomes, { ok: false, code: Code.Internal, message: "internal error" });
    expect(
      t.lines.some((l) => l.msg === "unexpected error" && JSON.stringify(l).includes("secret database")),
    ).toBe(true);
  });

  it("serves curl-style JSON over HTTP/1.1 and echoes x-request-id", async () => {
    const headers = await bearer("alice", ["admin"]);
    const res = await fetch(
      `http://127.0.0.1:${t.connectPort}/autoforge.admin.v1.AdminService/VerifyAuditChain`,
      {
        method: "POST",
        headers: { ...headers, "content-type": "application/json", "x-request-id": "req-123" },
        body: "{}",
      },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("x-request-id")).toBe("req-123");
    expect(await res.json()).toEqual({ ok: true, checkedCount: "42", reason: "checked for alice" });
    const line = t.lines.find((l) => l.requestId === "req-123");
    expect(line).toMatchObject({
      rpc: "autoforge.admin.v1.AdminService/VerifyAuditChain",
      code: "OK",
      principal: "alice",
      protocol: "connect",
    });
    expect(typeof line?.durationMs).toBe("number");
  });

  it("streams the same messages on both ports (server streaming)", async () => {
    const headers = await bearer("consumer", ["service"]);
    // Connect port, gRPC-Web over HTTP/1.1 and gRPC over h2c.
    for (const protocol of ["grpc-web", "grpc-h2c"] as const) {
      const client = createClient(PromptService, connectTransport(protocol, t.connectPort)) as unknown as {
        watchPromptEvents: WatchPromptEvents;
      };
      const got = await watchThenAbort((req, opts) => client.watchPromptEvents(req, opts), headers);
      expect(got, protocol).toEqual([11n, 12n, 13n]);
    }
    // gRPC port: the grpc-js generic client built from the same descriptor.
    const client = grpcClient(PromptService, t.grpcPort) as unknown as {
      WatchPromptEvents(
        req: unknown,
        md: grpc.Metadata,
      ): grpc.ClientReadableStream<WatchPromptEventsResponse>;
    };
    const md = new grpc.Metadata();
    md.set("authorization", headers.authorization);
    const stream = client.WatchPromptEvents(
      create(WatchPromptEventsRequestSchema, { afterSequence: 10n }),
      md,
    );
    const got: bigint[] = [];
    await new Promise<void>((resolve) => {
      stream.on("error", () => {}); // CANCELLED, after we cancel
      stream.on("data", (res: WatchPromptEventsResponse) => {
        got.push(res.event?.sequence ?? 0n);
        if (got.length === 3) {
          stream.cancel();
          resolve();
        }
      });
    });
    expect(got).toEqual([11n, 12n, 13n]);
    // The server saw three cancelled streams end (logged as CANCELLED), and nothing is left in flight.
    await pollUntil(() => t.server.inFlight === 0);
  });
});

describe("auth", () => {
  const cases: [string, () => Promise<Record<string, string>>, Code][] = [
    ["no token", async () => ({}), Code.Unauthenticated],
    ["not a bearer token", async () => ({ authorization: "Basic abc" }), Code.Unauthenticated],
    [
      "bad signature",
      async () => {
        const token = await signer.signToken({ sub: "mallory", roles: ["admin"] });
        return { authorization: `Bearer ${token.slice(0, -2)}xx` };
      },
      Code.Unauthenticated,
    ],
    [
      "expired",
      async () => ({
        authorization: `Bearer ${await signer.signToken({ sub: "old", roles: ["admin"], ttl: -60 })}`,
      }),
      Code.Unauthenticated,
    ],
    ["missing role", () => bearer("bob", ["user", "publisher"]), Code.PermissionDenied],
  ];
  it.each(cases)("%s -> the same code on both ports", async (_name, headers, code) => {
    const h = await headers();
    const outcomes = await everywhere(adminCall(verifyAuditChain, {}, h));
    expectAllEqual(outcomes, (o) => expect(o).toMatchObject({ ok: false, code }));
  });

  it("a method's own roles replace the service's; denials are logged at warn", async () => {
    const service = await bearer("svc", ["service"]);
    expect(
      await grpcUnary(grpcClient(AdminService, t.grpcPort), getDatabaseStats, {}, service),
    ).toMatchObject({
      ok: true,
    });
    const denied = await grpcUnary(grpcClient(AdminService, t.grpcPort), verifyAuditChain, {}, service);
    expect(denied).toEqual({
      ok: false,
      code: Code.PermissionDenied,
      message: "VerifyAuditChain requires one of the roles: admin",
    });
    const line = t.lines.find((l) => l.code === "PERMISSION_DENIED" && l.principal === "svc");
    expect(line?.level).toBe(40); // pino warn
  });
});

describe("limits and validation", () => {
  it("a 5 MiB request -> RESOURCE_EXHAUSTED on both ports", async () => {
    const headers = await bearer("alice", ["admin"]);
    const before = t.probe.calls.listAuditEvents ?? 0;
    const big = "x".repeat(5 * 1024 * 1024);
    const outcomes = await everywhere(adminCall(listAuditEvents, { pageToken: big }, headers));
    expectAllEqual(outcomes, (o) => expect(o).toMatchObject({ ok: false, code: Code.ResourceExhausted }));
    expect(t.probe.calls.listAuditEvents ?? 0).toBe(before);
  });

  it("invalid input -> INVALID_ARGUMENT naming the proto field; the handler does not run", async () => {
    const headers = await bearer("alice", ["admin"]);
    const before = t.probe.calls.listAuditEvents ?? 0;
    const outcomes = await everywhere(adminCall(listAuditEvents, { pageSize: 500 }, headers));
    expectAllEqual(outcomes, (o) => {
      expect(o).toMatchObject({ ok: false, code: Code.InvalidArgument });
      expect((o as { message: string }).message).toMatch(/^page_size: .*100/);
    });
    expect(t.probe.calls.listAuditEvents ?? 0).toBe(before);

    const repeated = await grpcUnary(
      grpcClient(AdminService, t.grpcPort),
      runMaintenance,
      { tasks: [1, 0] },
      headers,
    );
    expect(repeated).toMatchObject({ ok: false, code: Code.InvalidArgument });
    expect((repeated as { message: string }).message).toMatch(/^tasks\[1\]: /);
    expect(t.probe.calls.runMaintenance ?? 0).toBe(0);
  });

  it("a deadline the handler does not meet -> DEADLINE_EXCEEDED (client timeout is honoured)", async () => {
    const headers = await bearer("alice", ["admin"]);
    const client = createClient(AdminService, connectTransport("connect", t.connectPort)) as unknown as {
      listAuditEvents(
        req: { resourceType: string },
        opts: { headers: Record<string, string>; timeoutMs: number },
      ): Promise<unknown>;
    };
    const err = await client.listAuditEvents({ resourceType: "slow" }, { headers, timeoutMs: 50 }).then(
      () => undefined,
      (e: unknown) => ConnectError.from(e),
    );
    expect(err?.code).toBe(Code.DeadlineExceeded);
    const grpcOutcome = await grpcUnary(
      grpcClient(AdminService, t.grpcPort),
      listAuditEvents,
      { resourceType: "slow" },
      headers,
      50,
    );
    expect(grpcOutcome).toMatchObject({ ok: false, code: Code.DeadlineExceeded });
  });
});

describe("Connect port HTTP", () => {
  it("GET /healthz answers 200 while serving, GET /metrics exposes RPC counters", async () => {
    const health = await fetch(`http://127.0.0.1:${t.connectPort}/healthz`);
    expect(health.status).toBe(200);
    const metrics = await (await fetch(`http://127.0.0.1:${t.connectPort}/metrics`)).text();
    expect(metrics).toMatch(/rpc_server_handled_total\{grpc_service="autoforge.admin.v1.AdminService"/);
  });
});
