import * as http from "node:http";
import * as http2 from "node:http2";
import type { AddressInfo } from "node:net";
import { AdminService } from "@autoforge/contracts/admin/v1";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { connectNodeAdapter } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAutoforgeClient } from "../src/index.js";
import { connectTransport, grpcTransport, type NodeTransport } from "../src/node/index.js";
import { connectTransport as webTransport } from "../src/web/index.js";

/**
 * A connect-node server whose AdminService fails with error details (a google.protobuf.Duration stands in for
 * the google.rpc details the server will send) and error metadata, served over HTTP/1.1 and h2c.
 */
let h1: http.Server;
let h2: http2.Http2Server;
let h1Port: number;
let h2Port: number;
const calls: Record<string, number> = {};

function failure(code: Code, n: number): ConnectError {
  const e = new ConnectError(`failed ${n}`, code, { "x-why": `attempt-${n}` });
  e.details = [{ desc: DurationSchema, value: { seconds: BigInt(n), nanos: 7 } }];
  return e;
}

beforeAll(async () => {
  const handler = connectNodeAdapter({
    routes: (router) =>
      router.service(AdminService, {
        getDatabaseStats() {
          calls.getDatabaseStats = (calls.getDatabaseStats ?? 0) + 1;
          throw failure(Code.Unavailable, calls.getDatabaseStats);
        },
        listAuditEvents() {
          throw failure(Code.FailedPrecondition, 1);
        },
      }),
  });
  h1 = http.createServer(handler);
  h2 = http2.createServer(handler);
  await new Promise<void>((resolve) => h1.listen(0, "127.0.0.1", resolve));
  await new Promise<void>((resolve) => h2.listen(0, "127.0.0.1", resolve));
  h1Port = (h1.address() as AddressInfo).port;
  h2Port = (h2.address() as AddressInfo).port;
});

afterAll(async () => {
  h1.closeAllConnections();
  await new Promise((resolve) => h1.close(resolve));
  await new Promise((resolve) => h2.close(resolve));
});

const transports: [string, () => Transport & Partial<NodeTransport>][] = [
  ["grpc-js", () => grpcTransport({ address: `127.0.0.1:${h2Port}` })],
  ["connect-node grpc", () => connectTransport({ baseUrl: `http://127.0.0.1:${h2Port}`, protocol: "grpc" })],
  ["connect-node connect", () => connectTransport({ baseUrl: `http://127.0.0.1:${h1Port}` })],
  [
    "connect-node connect, JSON, HTTP/2",
    () => connectTransport({ baseUrl: `http://127.0.0.1:${h2Port}`, httpVersion: "2", useJson: true }),
  ],
  [
    "connect-node grpc-web",
    () => connectTransport({ baseUrl: `http://127.0.0.1:${h1Port}`, protocol: "grpc-web" }),
  ],
  ["connect-web (fetch)", () => webTransport({ baseUrl: `http://127.0.0.1:${h1Port}` })],
  [
    "connect-web grpc-web (fetch)",
    () => webTransport({ baseUrl: `http://127.0.0.1:${h1Port}`, protocol: "grpc-web" }),
  ],
];

describe.each(transports)("error details and metadata over %s", (_name, make) => {
  it("reach the caller intact, through the token, deadline and retry layers", async () => {
    const transport = make();
    try {
      const client = createAutoforgeClient({
        transport,
        token: "t",
        retry: { initialDelayMs: 1, maxDelayMs: 2 },
      });

      // A read failing UNAVAILABLE: retried (4 attempts), the last attempt's error as the server sent it.
      calls.getDatabaseStats = 0;
      const retried = await client.adminService.getDatabaseStats({}).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(retried).toBeInstanceOf(ConnectError);
      const err = retried as ConnectError;
      expect(calls.getDatabaseStats).toBe(4);
      expect(err.code).toBe(Code.Unavailable);
      expect(err.rawMessage).toBe("failed 4");
      expect(err.metadata.get("x-why")).toBe("attempt-4");
      expect(err.findDetails(DurationSchema).map((d) => [d.seconds, d.nanos])).toEqual([[4n, 7]]);

      const plain = (await client.adminService.listAuditEvents({}).then(
        () => undefined,
        (e: unknown) => e,
      )) as ConnectError;
      expect(plain.code).toBe(Code.FailedPrecondition);
      expect(plain.findDetails(DurationSchema)).toHaveLength(1);
    } finally {
      transport.close?.();
    }
  });
});
