import * as http2 from "node:http2";
import {
  DatasetService,
  type UploadDatasetItemsRequest,
  UploadDatasetItemsRequestSchema,
} from "@autoforge/contracts/evaluation/v1/datasets";
import { create, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import {
  access,
  createValidators,
  defineService,
  defineValidator,
  type RegisteredService,
  type ServiceHandlers,
} from "../src/index.js";
import { type Probe, pollUntil, signer, startTestServer } from "./helpers.js";

/**
 * Client-streaming methods through the kit: the same chain as unary calls on both ports (auth and the project
 * on the first message, validation of every message, the error mapping, logging and metrics, the deadline),
 * with UploadDatasetItems as the example method and a handler that only counts what it receives.
 */
type Chunk = MessageInitShape<typeof UploadDatasetItemsRequestSchema>;

const notUsed = async () => {
  throw new Error("not used in this test");
};

function uploadService(probe: Probe): RegisteredService {
  const handlers = {
    createDataset: notUsed,
    getDataset: notUsed,
    listDatasets: notUsed,
    createDatasetVersion: notUsed,
    listDatasetItems: notUsed,
    diffDatasetVersions: notUsed,
    async uploadDatasetItems(
      requests: AsyncIterable<UploadDatasetItemsRequest>,
      ctx: { project: { id: string } },
    ) {
      probe.calls.upload = (probe.calls.upload ?? 0) + 1;
      let chunks = 0;
      let items = 0;
      for await (const r of requests) {
        chunks++;
        items += r.removedItemIds.length;
        if (r.requestId === "hold") await probe.hold;
      }
      probe.calls.completed = (probe.calls.completed ?? 0) + 1;
      return { chunkCount: chunks, version: { itemCount: items, creatorId: ctx.project.id } };
    },
  } as unknown as ServiceHandlers<typeof DatasetService>;
  return defineService({
    service: DatasetService,
    handlers,
    validators: createValidators(
      defineValidator(UploadDatasetItemsRequestSchema, {
        removedItemIds: z.array(z.string().min(1, "must not be empty")).max(3, "at most 3 item ids"),
      }),
    ),
    access: { default: access.editor() },
  });
}

async function start() {
  return startTestServer({ services: (probe) => [uploadService(probe)] });
}

function withToken(token: string): Interceptor[] {
  return [
    (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    },
  ];
}

/** The client of each port and protocol that can stream requests. */
function transports(t: { grpcPort: number; connectPort: number }, token?: string): [string, Transport][] {
  const interceptors = token === undefined ? [] : withToken(token);
  return [
    ["grpc port", createGrpcTransport({ baseUrl: `http://127.0.0.1:${t.grpcPort}`, interceptors })],
    [
      "connect port, gRPC",
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${t.connectPort}`, interceptors }),
    ],
    [
      "connect port, Connect h2",
      createConnectTransport({
        baseUrl: `http://127.0.0.1:${t.connectPort}`,
        httpVersion: "2",
        interceptors,
      }),
    ],
  ];
}

async function* stream(chunks: Chunk[]): AsyncGenerator<Chunk> {
  for (const c of chunks) yield c;
}

async function outcome(p: Promise<unknown>) {
  try {
    return { ok: true, value: await p };
  } catch (e) {
    const err = ConnectError.from(e);
    return { ok: false, code: Code[err.code], message: err.rawMessage };
  }
}

/** gRPC frames written straight onto an HTTP/2 stream: the second one need not decode. */
function rawGrpcStream(
  port: number,
  token: string,
  frames: Uint8Array[],
): Promise<{ status: string; message: string }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    session.on("error", reject);
    const req = session.request({
      ":method": "POST",
      ":path": "/autoforge.evaluation.v1.DatasetService/UploadDatasetItems",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: `Bearer ${token}`,
    });
    let status = "";
    let message = "";
    const read = (headers: http2.IncomingHttpHeaders) => {
      if (headers["grpc-status"] !== undefined) status = String(headers["grpc-status"]);
      if (headers["grpc-message"] !== undefined)
        message = decodeURIComponent(String(headers["grpc-message"]));
    };
    req.on("response", read);
    req.on("trailers", read);
    req.on("data", () => {});
    req.on("end", () => {
      session.close();
      resolve({ status, message });
    });
    req.on("error", reject);
    for (const f of frames) {
      const frame = new Uint8Array(5 + f.length);
      new DataView(frame.buffer).setUint32(1, f.length);
      frame.set(f, 5);
      req.write(frame);
    }
    req.end();
  });
}

describe("client streaming", () => {
  it("the handler receives every message in order on both ports, and the call is logged and counted once", async () => {
    const t = await start();
    const token = await signer.signToken({ sub: "alice", roles: ["user"] });
    const chunks: Chunk[] = [
      { datasetId: "d", removedItemIds: ["a", "b"] },
      { removedItemIds: ["c"] },
      { removedItemIds: [], project: "user:alice" },
    ];
    for (const [name, transport] of transports(t, token)) {
      const client = createClient(DatasetService, transport);
      const res = await client.uploadDatasetItems(stream(chunks));
      expect(res, name).toMatchObject({ chunkCount: 3, version: { itemCount: 3, creatorId: "user:alice" } });
      // an empty stream reaches the handler with one empty message (the validators decide what it needs)
      expect((await client.uploadDatasetItems(stream([]))).chunkCount, name).toBe(1);
    }
    const lines = t.lines.filter(
      (l) => l.rpc === "autoforge.evaluation.v1.DatasetService/UploadDatasetItems",
    );
    expect(lines.map((l) => [l.code, l.principal])).toEqual(Array(6).fill(["OK", "alice"]));
    const metrics = await t.server.metrics.metrics();
    const received = [
      ...metrics.matchAll(/^grpc_server_msg_received_total\{[^}]*UploadDatasetItems[^}]*\} (\d+)$/gm),
    ];
    expect(received.reduce((n, m) => n + Number(m[1]), 0)).toBe(3 * 4);
    expect(metrics).toMatch(/grpc_type="client_stream"/);
  });

  it("auth and the project come from the first message: no token is UNAUTHENTICATED, another project later is INVALID_ARGUMENT", async () => {
    const t = await start();
    for (const [name, transport] of transports(t)) {
      const answer = await outcome(createClient(DatasetService, transport).uploadDatasetItems(stream([{}])));
      expect(answer, name).toMatchObject({ ok: false, code: "Unauthenticated" });
    }
    const token = await signer.signToken({ sub: "alice", roles: ["user"] });
    for (const [name, transport] of transports(t, token)) {
      const client = createClient(DatasetService, transport);
      const other = await outcome(client.uploadDatasetItems(stream([{}, { project: "acme" }])));
      expect(other, name).toMatchObject({ ok: false, code: "InvalidArgument", message: /^project: / });
      // a team project the caller is no member of: NOT_FOUND, before the handler runs
      const foreign = await outcome(client.uploadDatasetItems(stream([{ project: "acme" }])));
      expect(foreign, name).toMatchObject({ ok: false, code: "NotFound" });
    }
    expect(t.probe.calls.completed ?? 0).toBe(0);
  });

  it("every message is validated: a bad later one is INVALID_ARGUMENT naming the field and the message", async () => {
    const t = await start();
    const token = await signer.signToken({ sub: "alice", roles: ["user"] });
    for (const [name, transport] of transports(t, token)) {
      const client = createClient(DatasetService, transport);
      const first = await outcome(
        client.uploadDatasetItems(stream([{ removedItemIds: ["a", "b", "c", "d"] }])),
      );
      expect(first, name).toMatchObject({
        code: "InvalidArgument",
        message: "removed_item_ids: at most 3 item ids",
      });
      const later = await outcome(client.uploadDatasetItems(stream([{}, {}, { removedItemIds: ["x", ""] }])));
      expect(later, name).toMatchObject({
        code: "InvalidArgument",
        message: "removed_item_ids[1]: must not be empty (message 3 of the stream)",
      });
    }
    expect(t.probe.calls.completed ?? 0).toBe(0);
  });

  it("a later message that does not decode is INVALID_ARGUMENT on both ports, never INTERNAL", async () => {
    const t = await start();
    const token = await signer.signToken({ sub: "alice", roles: ["user"] });
    const good = toBinary(
      UploadDatasetItemsRequestSchema,
      create(UploadDatasetItemsRequestSchema, { datasetId: "d" }),
    );
    const bad = new Uint8Array([0x0a, 0x05, 0x61]); // a string field whose length runs past the end
    for (const port of [t.grpcPort, t.connectPort]) {
      const answer = await rawGrpcStream(port, token, [good, bad]);
      expect(answer.status, String(port)).toBe(String(Code.InvalidArgument));
      expect(answer.message).toMatch(/^request could not be decoded: /);
      const first = await rawGrpcStream(port, token, [bad]);
      expect(first.status, String(port)).toBe(String(Code.InvalidArgument));
    }
    expect(t.probe.calls.completed ?? 0).toBe(0);
    const lines = t.lines.filter(
      (l) => l.rpc === "autoforge.evaluation.v1.DatasetService/UploadDatasetItems",
    );
    expect(lines.map((l) => l.code)).toEqual(Array(4).fill("INVALID_ARGUMENT"));
  });

  it("a stream open past the client's deadline ends with DEADLINE_EXCEEDED on both ports", async () => {
    const t = await start();
    const token = await signer.signToken({ sub: "alice", roles: ["user"] });
    let release: () => void = () => {};
    t.probe.hold = new Promise((resolve) => {
      release = resolve;
    });
    for (const [name, transport] of transports(t, token)) {
      async function* slow(): AsyncGenerator<Chunk> {
        yield {};
        // never closes: the deadline ends the call
        await new Promise(() => {});
      }
      const answer = await outcome(
        createClient(DatasetService, transport).uploadDatasetItems(slow(), { timeoutMs: 300 }),
      );
      expect(answer, name).toMatchObject({ ok: false, code: "DeadlineExceeded" });
    }
    release();
    // connect-node closes the request stream when it gives up, and the cancel follows a moment later: the
    // handler may see a complete-looking stream (and the server log an OK the client never read). Handlers
    // that commit what they receive need an explicit last message for that reason (UploadDatasetItems'
    // finish_upload). What the kit guarantees: the client's deadline is honoured, and no call is left open.
    await pollUntil(() => t.server.inFlight === 0);
  });
});
