import { randomBytes } from "node:crypto";
import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { access, type DatabaseBinding, defineService, type ServiceHandlers } from "../src/index.js";
import { bearer, connectTransport, startTestServer, type TestServer } from "./helpers.js";

/**
 * Server streams are flow-controlled end to end: the handler's next message is pulled only once the transport
 * has taken the previous one, so a client that stops reading stops the handler (it holds one message, not a
 * queue of them). Measured with 256 KiB incompressible messages (the Connect port would gzip a repeated
 * character to a few bytes) and a client that takes one and then stops reading.
 */
const messageBytes = 256 * 1024;
const produced = { count: 0, ended: false };
/** Units of work the handler ran, and how many were open at once at most. */
const units = { count: 0, open: 0, maxOpen: 0 };

/** A database binding that only counts: the handler's units of work get a dummy transaction. */
const countingDatabase: DatabaseBinding<unknown> = {
  db: {
    async read(fn) {
      units.count++;
      units.open++;
      units.maxOpen = Math.max(units.maxOpen, units.open);
      try {
        return await fn({});
      } finally {
        units.open--;
      }
    },
    write: (fn) => fn({}),
  },
  appendAudit: () => undefined,
};

function exportingService() {
  const handlers: Record<string, unknown> = {};
  for (const m of EvaluationService.methods) {
    handlers[m.localName] = async () => {
      throw new ConnectError("not implemented in this test", Code.Unimplemented);
    };
  }
  const exportTestResults: ServiceHandlers<typeof EvaluationService, unknown>["exportTestResults"] =
    async function* (req, ctx) {
      try {
        for (let i = 0; i < req.batchSize; i++) {
          // one short read unit per message, as a real export reads each batch
          const input = await ctx.unitOfWork(async () => randomBytes(messageBytes / 2).toString("hex"));
          produced.count++;
          yield { testResults: [{ name: `r${i}`, input }] };
        }
        if (req.afterId === "overlap") {
          // two at once are refused: units of work of one call run one after the other
          await Promise.all([ctx.unitOfWork(async () => 1), ctx.unitOfWork(async () => 2)]);
        }
      } finally {
        produced.ended = true;
      }
    };
  handlers.exportTestResults = exportTestResults;
  return defineService({
    service: EvaluationService,
    handlers: handlers as ServiceHandlers<typeof EvaluationService>,
    access: { default: access.viewer() },
  });
}

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ services: () => [exportingService()], database: countingDatabase });
});
afterAll(() => t.server.shutdown({ graceMs: 100 }));

const ports = ["grpc", "connect"] as const;
async function exportClient(port: (typeof ports)[number]) {
  const headers = await bearer("alice", ["user"]);
  const client = createClient(
    EvaluationService,
    connectTransport("grpc-h2c", port === "grpc" ? t.grpcPort : t.connectPort),
  );
  return { client, headers };
}

describe("server streaming: flow control and units of work", () => {
  for (const port of ports) {
    it(`the ${port} port pulls the handler only as fast as the client reads`, async () => {
      produced.count = 0;
      produced.ended = false;
      const { client, headers } = await exportClient(port);
      const abort = new AbortController();
      const iterator = client
        .exportTestResults({ evaluationId: "x", batchSize: 200 }, { headers, signal: abort.signal })
        [Symbol.asyncIterator]();
      expect((await iterator.next()).done).toBe(false);
      // the client reads nothing more: whatever the handler produces now waits in buffers
      await new Promise((resolve) => setTimeout(resolve, 500));
      const ahead = produced.count;
      console.info(`${port} port: ${ahead} messages produced while the client took 1`);
      abort.abort();
      await iterator.next().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 100));
      // one taken, one being sent, one waiting for the transport (before the fix, the gRPC port: 16)
      expect(ahead).toBeLessThanOrEqual(4);
      expect(produced.ended).toBe(true);
    });

    it(`the ${port} port delivers every message of a stream read to its end, one unit of work per message`, async () => {
      units.count = 0;
      units.maxOpen = 0;
      const { client, headers } = await exportClient(port);
      let n = 0;
      for await (const res of client.exportTestResults({ evaluationId: "x", batchSize: 40 }, { headers })) {
        expect(res.testResults[0]?.name).toBe(`r${n}`);
        n++;
      }
      expect(n).toBe(40);
      expect(units).toMatchObject({ count: 40, maxOpen: 1 });
      // two units of work open at once in one call: INTERNAL (a bug in the handler)
      const overlapping = async () => {
        for await (const _ of client.exportTestResults(
          { evaluationId: "x", batchSize: 1, afterId: "overlap" },
          { headers },
        ));
      };
      await expect(overlapping()).rejects.toMatchObject({ code: Code.Internal });
      expect(
        t.lines.some((l) => l.msg === "unexpected error" && JSON.stringify(l).includes("one at a time")),
      ).toBe(true);
    });
  }
});
