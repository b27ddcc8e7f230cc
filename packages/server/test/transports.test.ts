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
import { type RawProtocol, rawCall } from "../../../test/support/raw-rpc.js";
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
    expect(metrics).toMatch(/grpc_server_handled_total\{[^}]*grpc_service="autoforge.admin.v1.AdminService"/);
  });
});

describe("requests that do not decode, strict JSON, responses over the limit", () => {
  const listPath = "autoforge.admin.v1.AdminService/ListAuditEvents";
  const watchPath = "autoforge.prompt.v1.PromptService/WatchPromptEvents";
  // A bad wire type (the GetPrompt body), a string field holding a lone surrogate (not UTF-8),
  // field number 0, and a length that runs past the end.
  const undecodable: [string, Uint8Array][] = [
    ["bad wire type", new Uint8Array([0x1c, 0x01, 0x02, 0x03])],
    ["invalid UTF-8", new Uint8Array([0x12, 0x03, 0xed, 0xa0, 0x80])],
    ["field number 0", new Uint8Array([0x00, 0x01])],
    ["truncated field", new Uint8Array([0x12, 0x09, 0x41])],
  ];
  const ports = (): [string, RawProtocol, string][] => [
    ["gRPC port", "grpc", `http://127.0.0.1:${t.grpcPort}`],
    ["Connect port, gRPC", "grpc", `http://127.0.0.1:${t.connectPort}`],
    ["Connect port, gRPC-Web", "grpc-web", `http://127.0.0.1:${t.connectPort}`],
    ["Connect port, Connect", "connect-proto", `http://127.0.0.1:${t.connectPort}`],
  ];

  it.each(undecodable)(
    "%s -> INVALID_ARGUMENT, unary and streaming, on every port and protocol",
    async (_name, body) => {
      const admin = await bearer("alice", ["admin"]);
      const feed = await bearer("consumer", ["service"]);
      const before = t.probe.calls.listAuditEvents ?? 0;
      for (const [port, protocol, baseUrl] of ports()) {
        for (const [path, streaming, headers] of [
          [listPath, false, admin],
          [watchPath, true, feed],
        ] as const) {
          const answer = await rawCall({ baseUrl, path, protocol, body, streaming, headers });
          expect(answer, `${port} ${path}`).toMatchObject({ code: Code.InvalidArgument });
          expect(answer.message, `${port} ${path}`).toMatch(/^request could not be decoded: /);
        }
      }
      expect(t.probe.calls.listAuditEvents ?? 0).toBe(before);
    },
  );

  it("on the gRPC port the chain logs the undecodable request as INVALID_ARGUMENT, before auth", async () => {
    const requestId = "undecodable-1";
    const answer = await rawCall({
      baseUrl: `http://127.0.0.1:${t.grpcPort}`,
      path: listPath,
      protocol: "grpc",
      body: new Uint8Array([0x1c, 0x01]),
      streaming: false,
      headers: { "x-request-id": requestId },
    });
    expect(answer.code).toBe(Code.InvalidArgument);
    expect(t.lines.find((l) => l.requestId === requestId)).toMatchObject({
      code: "INVALID_ARGUMENT",
      error: expect.stringMatching(/^request could not be decoded: /),
    });
  });

  it("an unauthenticated undecodable request is INVALID_ARGUMENT everywhere, never INTERNAL", async () => {
    for (const [port, protocol, baseUrl] of ports()) {
      const answer = await rawCall({
        baseUrl,
        path: listPath,
        protocol,
        body: new Uint8Array([0x1c]),
        streaming: false,
      });
      expect(answer.code, port).toBe(Code.InvalidArgument);
    }
  });

  it("Connect port: a compressed frame that is not gzip, a truncated frame, a bad timeout -> INVALID_ARGUMENT", async () => {
    const admin = await bearer("alice", ["admin"]);
    const baseUrl = `http://127.0.0.1:${t.connectPort}`;
    for (const protocol of ["grpc", "grpc-web"] as const) {
      const common = { baseUrl, path: listPath, protocol, streaming: false };
      const gzip = { ...admin, "grpc-encoding": "gzip" };
      const cases = [
        rawCall({ ...common, body: new Uint8Array([1, 2, 3]), flags: 1, headers: gzip }),
        rawCall({ ...common, body: new Uint8Array([0x0a, 0x01, 0x41]), truncateTo: 4, headers: admin }),
        rawCall({ ...common, body: new Uint8Array(), headers: { ...admin, "grpc-timeout": "soon" } }),
      ];
      for (const answer of await Promise.all(cases)) expect(answer.code, protocol).toBe(Code.InvalidArgument);
    }
  });

  it("gRPC port: grpc-js answers a truncated frame itself, with a client-side code (not INTERNAL/UNKNOWN)", async () => {
    const answer = await rawCall({
      baseUrl: `http://127.0.0.1:${t.grpcPort}`,
      path: listPath,
      protocol: "grpc",
      body: new Uint8Array([0x0a, 0x01, 0x41]),
      truncateTo: 4,
      streaming: false,
      headers: await bearer("alice", ["admin"]),
    });
    expect(answer.code).toBe(Code.Unimplemented);
  });

  it("strict JSON: an unknown field or enum name -> INVALID_ARGUMENT naming it; the handler does not run", async () => {
    const headers = await bearer("alice", ["admin"]);
    const before = { ...t.probe.calls };
    const baseUrl = `http://127.0.0.1:${t.connectPort}`;
    const json = (path: string, body: string) =>
      rawCall({ baseUrl, path, protocol: "connect-json", body, streaming: false, headers });
    const unknownField = await json(listPath, '{"colour":"red"}');
    expect(unknownField.message).toBe("request could not be decoded: colour: unknown field");
    const unknownEnum = await json(
      "autoforge.prompt.v1.PromptService/ListPrompts",
      '{"project":"p","status":"ACTIVE_TYPO"}',
    );
    expect(unknownEnum).toMatchObject({
      code: Code.InvalidArgument,
      message: expect.stringMatching(/^request could not be decoded: status: .*ACTIVE_TYPO/),
    });
    expect(unknownEnum.message).toContain("ACTIVE_TYPO");
    const notUtf8 = await json(listPath, '{"actor":"\\ud800"}');
    expect(notUtf8).toMatchObject({ code: Code.InvalidArgument, message: expect.stringContaining("actor") });
    expect(t.probe.calls).toEqual(before);
  });

  it("JSON field masks: snake_case paths decode like lowerCamelCase ones", async () => {
    const headers = await bearer("alice", ["user"]);
    const baseUrl = `http://127.0.0.1:${t.connectPort}`;
    const path = "autoforge.prompt.v1.PromptService/UpdatePrompt";
    for (const mask of ["modelConfig,tags", "model_config,tags"]) {
      const body = JSON.stringify({ id: "p1", etag: "e", updateMask: mask });
      const answer = await rawCall({
        baseUrl,
        path,
        protocol: "connect-json",
        body,
        streaming: false,
        headers,
      });
      // Decoded, so it reached the (test) handler, which answers UNIMPLEMENTED.
      expect(answer, mask).toMatchObject({ code: Code.Unimplemented });
    }
    const nested = await rawCall({
      baseUrl,
      path,
      protocol: "connect-json",
      body: JSON.stringify({ id: "p1", messages: [{ content: "hi" }, { role: "CHAT_ROLE_BOT" }] }),
      streaming: false,
      headers,
    });
    expect(nested).toMatchObject({
      code: Code.InvalidArgument,
      message: expect.stringMatching(/^request could not be decoded: messages\[1\]\.role: .*CHAT_ROLE_BOT/),
    });
  });

  it("a response over the message limit -> RESOURCE_EXHAUSTED, and the log and metrics say so", async () => {
    const small = await startTestServer({ limits: { maxMessageBytes: 420 } });
    try {
      const headers = await bearer("alice", ["admin"]);
      // The request fits (about 403 bytes, or 417 as JSON); the response echoes the id plus more.
      const resourceId = "r".repeat(400);
      const requestHeaders = (n: number) => ({ ...headers, "x-request-id": `too-big-${n}` });
      const outcomes: Outcome[] = [
        await grpcUnary(
          grpcClient(AdminService, small.grpcPort),
          listAuditEvents,
          { resourceId },
          requestHeaders(0),
        ),
      ];
      for (const [i, protocol] of connectProtocols.entries()) {
        const transport = connectTransport(protocol, small.connectPort);
        outcomes.push(
          await connectUnary(transport, AdminService, listAuditEvents, { resourceId }, requestHeaders(i + 1)),
        );
      }
      const json = await rawCall({
        baseUrl: `http://127.0.0.1:${small.connectPort}`,
        path: listPath,
        protocol: "connect-json",
        body: JSON.stringify({ resourceId }),
        streaming: false,
        headers: requestHeaders(4),
      });
      outcomes.push({ ok: false, code: json.code, message: json.message });
      for (const outcome of outcomes)
        expect(outcome).toMatchObject({ ok: false, code: Code.ResourceExhausted });
      for (let n = 0; n < outcomes.length; n++) {
        expect(
          small.lines.find((l) => l.requestId === `too-big-${n}`),
          `call ${n}`,
        ).toMatchObject({
          code: "RESOURCE_EXHAUSTED",
        });
      }
      const metrics = await (await fetch(`http://127.0.0.1:${small.connectPort}/metrics`)).text();
      const counted = (code: string) =>
        metrics
          .split("\n")
          .filter((l) => /^\w+_server_handled_total\{/.test(l) && l.includes('grpc_method="ListAuditEvents"'))
          .filter((l) => l.includes(`grpc_code="${code}"`))
          .reduce((sum, l) => sum + Number(l.split(" ").at(-1)), 0);
      expect(counted("ResourceExhausted")).toBe(outcomes.length);
      expect(counted("OK")).toBe(0);
    } finally {
      await small.server.shutdown({ graceMs: 1_000 });
    }
  });
});
