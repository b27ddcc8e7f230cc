import { AdminService } from "@autoforge/contracts/admin/v1";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// A real server of the kit (packages/server) stands up the services; its test helpers are reused as they are.
import {
  bearer,
  pollUntil,
  startTestServer,
  type TestServer,
  watchThenAbort,
} from "../../server/test/helpers.js";
import { createGrpcJsTransport, type GrpcJsTransport } from "../src/node/index.js";

let t: TestServer;
let transport: GrpcJsTransport;
beforeAll(async () => {
  t = await startTestServer();
  transport = createGrpcJsTransport({ address: `http://127.0.0.1:${t.grpcPort}` });
});
afterAll(async () => {
  transport.close();
  await t.server.shutdown({ graceMs: 1_000 });
});

async function codeOf(promise: Promise<unknown>) {
  const err = ConnectError.from(
    await promise.then(
      () => undefined,
      (e: unknown) => e,
    ),
  );
  return { code: err.code, message: err.rawMessage };
}

describe("createGrpcJsTransport (connect clients over a grpc-js channel)", () => {
  it("sends headers, returns the message and the response headers", async () => {
    const admin = createClient(AdminService, transport);
    let responseHeaders: Headers | undefined;
    const res = await admin.verifyAuditChain(
      {},
      {
        headers: { ...(await bearer("alice", ["admin"])), "x-request-id": "req-grpc-js" },
        onHeader: (h) => {
          responseHeaders = h;
        },
        timeoutMs: 5_000,
      },
    );
    expect(res).toMatchObject({ ok: true, checkedCount: 42n, reason: "checked for alice" });
    expect(responseHeaders?.get("x-request-id")).toBe("req-grpc-js");
  });

  it("turns gRPC statuses into ConnectErrors with the same code and message", async () => {
    const admin = createClient(AdminService, transport);
    const headers = await bearer("alice", ["admin"]);
    expect(
      await codeOf(admin.listAuditEvents({ resourceType: "missing", resourceId: "r1" }, { headers })),
    ).toEqual({
      code: Code.NotFound,
      message: "resource r1 not found",
    });
    expect((await codeOf(admin.verifyAuditChain({}))).code).toBe(Code.Unauthenticated);
    const abort = new AbortController();
    abort.abort();
    expect((await codeOf(admin.verifyAuditChain({}, { headers, signal: abort.signal }))).code).toBe(
      Code.Canceled,
    );
  });

  it("streams server messages until the caller aborts", async () => {
    const prompts = createClient(PromptService, transport);
    const headers = await bearer("consumer", ["service"]);
    const got = await watchThenAbort((req, opts) => prompts.watchPromptEvents(req, opts), headers);
    expect(got).toEqual([11n, 12n, 13n]);
    await pollUntil(() => t.server.inFlight === 0);
  });

  it("answers UNAVAILABLE when nothing listens", async () => {
    const down = createGrpcJsTransport({ address: "127.0.0.1:1" });
    try {
      const admin = createClient(AdminService, down);
      expect((await codeOf(admin.verifyAuditChain({}, { timeoutMs: 2_000 }))).code).toBe(Code.Unavailable);
    } finally {
      down.close();
    }
  });
});
