import { AdminService } from "@autoforge/contracts/admin/v1";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { Code, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bearer,
  connectTransport,
  connectUnary,
  grpcClient,
  grpcUnary,
  type Protocol,
  startTestServer,
  type TestServer,
  watchThenAbort,
} from "./helpers.js";

const { listAuditEvents, verifyAuditChain } = AdminService.method;

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.server.shutdown({ graceMs: 1_000 });
});

/** The value of one sample: `name{labels}` with exactly these labels, in any order (0 when absent). */
function sample(text: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort();
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`)) continue;
    const close = line.lastIndexOf("}");
    const got = line
      .slice(name.length + 1, close)
      .split(/,(?=\w+=")/)
      .sort();
    if (got.length === wanted.length && got.every((g, i) => g === wanted[i])) {
      return Number(line.slice(close + 2));
    }
  }
  return 0;
}

async function scrape(): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${t.connectPort}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

const admin = "autoforge.admin.v1.AdminService";

describe("RPC metrics: the go-grpc-prometheus family with a protocol label", () => {
  it("counts started, handled (by grpc-go's code name), messages and handling time per protocol", async () => {
    const headers = await bearer("alice", ["admin"]);
    // two OKs and one NOT_FOUND on each of the four ways in
    const grpc = grpcClient(AdminService, t.grpcPort);
    for (let i = 0; i < 2; i++) expect((await grpcUnary(grpc, verifyAuditChain, {}, headers)).ok).toBe(true);
    expect(await grpcUnary(grpc, listAuditEvents, { resourceType: "missing" }, headers)).toMatchObject({
      code: Code.NotFound,
    });
    const protocols: [Protocol, string][] = [
      ["connect", "connect"],
      ["grpc-web", "grpc-web"],
      ["grpc-h2c", "grpc"],
    ];
    for (const [protocol] of protocols) {
      const transport = connectTransport(protocol, t.connectPort);
      for (let i = 0; i < 2; i++) {
        expect((await connectUnary(transport, AdminService, verifyAuditChain, {}, headers)).ok).toBe(true);
      }
      expect(
        await connectUnary(transport, AdminService, listAuditEvents, { resourceType: "missing" }, headers),
      ).toMatchObject({ code: Code.NotFound });
    }

    const text = await scrape();
    expect(text).toContain("# TYPE grpc_server_handled_total counter");
    expect(text).toContain("# TYPE grpc_server_handling_seconds histogram");
    expect(text).not.toMatch(/^rpc_server_/m); // the names before go-grpc-prometheus's
    const unary = (method: string, protocol: string) => ({
      grpc_type: "unary",
      grpc_service: admin,
      grpc_method: method,
      protocol,
    });
    // the gRPC port's calls are protocol "grpc" too: together with gRPC over h2c on the Connect port
    const perProtocol: [string, number][] = [
      ["grpc", 2],
      ["connect", 1],
      ["grpc-web", 1],
    ];
    for (const [protocol, ports] of perProtocol) {
      const verify = unary("VerifyAuditChain", protocol);
      const list = unary("ListAuditEvents", protocol);
      expect(sample(text, "grpc_server_started_total", verify), protocol).toBe(2 * ports);
      expect(sample(text, "grpc_server_handled_total", { ...verify, grpc_code: "OK" }), protocol).toBe(
        2 * ports,
      );
      expect(sample(text, "grpc_server_handled_total", { ...list, grpc_code: "NotFound" }), protocol).toBe(
        ports,
      );
      expect(sample(text, "grpc_server_msg_received_total", verify), protocol).toBe(2 * ports);
      expect(sample(text, "grpc_server_msg_sent_total", verify), protocol).toBe(2 * ports);
      // a call that failed sent no message
      expect(sample(text, "grpc_server_msg_sent_total", list), protocol).toBe(0);
      expect(sample(text, "grpc_server_handling_seconds_count", verify), protocol).toBe(2 * ports);
      expect(sample(text, "grpc_server_handling_seconds_bucket", { ...verify, le: "+Inf" })).toBe(2 * ports);
    }
  });

  it("labels a server stream server_stream and counts each message it sent", async () => {
    const headers = await bearer("consumer", ["service"]);
    const client = createClient(PromptService, connectTransport("grpc-web", t.connectPort));
    const got = await watchThenAbort((req, opts) => client.watchPromptEvents(req, opts), headers, 3);
    expect(got).toHaveLength(3);
    const labels = {
      grpc_type: "server_stream",
      grpc_service: "autoforge.prompt.v1.PromptService",
      grpc_method: "WatchPromptEvents",
      protocol: "grpc-web",
    };
    // the stream ends on the server once it sees the cancel: poll for its handled line
    const deadline = Date.now() + 5_000;
    let text = await scrape();
    while (sample(text, "grpc_server_handled_total", { ...labels, grpc_code: "Canceled" }) !== 1) {
      if (Date.now() > deadline) throw new Error(`stream not counted as Canceled:\n${text}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
      text = await scrape();
    }
    expect(sample(text, "grpc_server_started_total", labels)).toBe(1);
    expect(sample(text, "grpc_server_msg_received_total", labels)).toBe(1);
    expect(sample(text, "grpc_server_msg_sent_total", labels)).toBeGreaterThanOrEqual(3);
  });

  it("an unauthenticated call is started and handled as Unauthenticated, with no message sent", async () => {
    const transport = connectTransport("connect", t.connectPort);
    const outcome = await connectUnary(transport, AdminService, AdminService.method.getDatabaseStats, {});
    expect(outcome).toMatchObject({ code: Code.Unauthenticated });
    const text = await scrape();
    const labels = {
      grpc_type: "unary",
      grpc_service: admin,
      grpc_method: "GetDatabaseStats",
      protocol: "connect",
    };
    expect(sample(text, "grpc_server_started_total", labels)).toBe(1);
    expect(sample(text, "grpc_server_handled_total", { ...labels, grpc_code: "Unauthenticated" })).toBe(1);
    expect(sample(text, "grpc_server_msg_sent_total", labels)).toBe(0);
  });
});
