import type {
  DatasetItemSchema,
  UploadDatasetItemsRequestSchema,
} from "@autoforge/contracts/evaluation/v1/datasets";
import { DatasetService } from "@autoforge/contracts/evaluation/v1/datasets";
import { BadRequestSchema } from "@autoforge/contracts/google/rpc/error_details";
import type { Database } from "@autoforge/db";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it } from "vitest";
import type { Schema } from "../src/db/schema.js";
import {
  Code,
  expectCode,
  must,
  openTestDatabase,
  pollUntil,
  signer,
  startEvaluationService,
  stubPromptClient,
} from "./helpers.js";

type Chunk = MessageInitShape<typeof UploadDatasetItemsRequestSchema>;
type ItemInit = MessageInitShape<typeof DatasetItemSchema>;

async function start() {
  const { db } = await openTestDatabase();
  const svc = await startEvaluationService(db, stubPromptClient(new Map()));
  const alice = await svc.clients.datasets("alice");
  const ds = must((await alice.createDataset({ name: "big" })).dataset);
  return { db, svc, alice, ds };
}

function item(i: number, overrides: Partial<ItemInit> = {}): ItemInit {
  return {
    itemId: `u-${String(i).padStart(6, "0")}`,
    input:
      i % 2 === 0 ? { case: "textInput", value: `question ${i}` } : { case: "jsonInput", value: { q: i } },
    expectedOutput: `answer ${i}`,
    ...overrides,
  } as ItemInit;
}

/** `count` items in chunks of `size`, the first chunk naming the dataset (and `header`). */
function chunks(datasetId: string, count: number, size = 1000, header: Partial<Chunk> = {}): Chunk[] {
  const out: Chunk[] = [];
  for (let start = 0; start < count; start += size) {
    const items = Array.from({ length: Math.min(size, count - start) }, (_, k) => item(start + k));
    out.push((start === 0 ? { datasetId, ...header, items } : { items }) as Chunk);
  }
  const last = out[out.length - 1];
  if (last !== undefined) last.finishUpload = true;
  return out;
}

async function* stream(list: Chunk[]): AsyncGenerator<Chunk> {
  for (const c of list) yield c;
}

async function rows(db: Database<Schema>): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const t of [
    "datasets",
    "dataset_versions",
    "dataset_items",
    "dataset_version_items",
    "idempotency_keys",
  ]) {
    out[t] = Number((await db.client.execute(`SELECT count(*) AS n FROM ${t}`)).rows[0]?.n ?? 0);
  }
  return out;
}

function violations(e: ConnectError): string[] {
  return e.findDetails(BadRequestSchema).flatMap((d) => d.fieldViolations.map((v) => v.field));
}

describe("UploadDatasetItems", () => {
  it("streams 100,000 items in 100 chunks into one version, committed at the end", async () => {
    const { db, alice, ds } = await start();
    const started = performance.now();
    const res = await alice.uploadDatasetItems(stream(chunks(ds.id, 100_000)));
    console.info(`100,000-item upload (100 chunks, gRPC) took ${Math.round(performance.now() - started)} ms`);
    expect(res.chunkCount).toBe(100);
    expect(res.version).toMatchObject({
      version: 1,
      itemCount: 100_000,
      addedCount: 100_000,
      parentVersion: 0,
    });
    expect(res.dataset).toMatchObject({ latestVersion: 1, latestItemCount: 100_000 });
    expect(await rows(db)).toMatchObject({ dataset_versions: 1, dataset_version_items: 100_000 });
    const page = await alice.listDatasetItems({ datasetId: ds.id, pageSize: 2 });
    expect(page.items.map((i) => i.itemId)).toEqual(["u-000000", "u-000001"]);

    // 100,001 over the stream: refused naming `items`, nothing written
    const before = await rows(db);
    const over = await expectCode(
      alice.uploadDatasetItems(stream(chunks(ds.id, 100_001))),
      Code.InvalidArgument,
      /more than 100000 items \(chunk 101\)/,
    );
    expect(violations(over)).toEqual(["items"]);
    // derived from the 100,000: one more is refused in the transaction, before anything is written
    const derived = await expectCode(
      alice.uploadDatasetItems(
        stream([{ datasetId: ds.id, baseVersion: 1, items: [item(100_000)], finishUpload: true }]),
      ),
      Code.InvalidArgument,
      /100001 items: at most 100000/,
    );
    expect(violations(derived)).toEqual(["items"]);
    expect(await rows(db)).toEqual(before);
  }, 120_000);

  it("a client that cancels midway leaves no version and no row", async () => {
    const { db, svc, alice, ds } = await start();
    const before = await rows(db);
    const controller = new AbortController();
    const all = chunks(ds.id, 60_000);
    async function* cancelling(): AsyncGenerator<Chunk> {
      for (const [i, c] of all.entries()) {
        if (i === 30) {
          // the server holds the call with 30 chunks received: cancel it there
          await pollUntil(() => svc.app.server.inFlight === 1, 10_000, "the upload in flight");
          controller.abort();
          // a killed client: the stream is never closed (a closed stream is a complete upload, and commits)
          await new Promise(() => {});
        }
        yield c;
      }
    }
    await expectCode(alice.uploadDatasetItems(cancelling(), { signal: controller.signal }), Code.Canceled);
    await pollUntil(() => svc.app.server.inFlight === 0, 10_000, "the cancelled upload ended");
    expect(await rows(db)).toEqual(before);
    expect((await alice.getDataset({ id: ds.id })).dataset?.latestVersion).toBe(0);
    // and the next upload is version 1
    const next = await alice.uploadDatasetItems(stream(chunks(ds.id, 10)));
    expect(next.version?.version).toBe(1);
  });

  it("a bad chunk anywhere in the stream is INVALID_ARGUMENT naming the field and the chunk, writing nothing", async () => {
    const { db, alice, ds } = await start();
    const before = await rows(db);
    const good = chunks(ds.id, 5000);
    const withBad = [
      ...good.slice(0, 3),
      { items: [item(9_999_001), item(9_999_002, { itemId: "bad id" })] },
    ];
    const bad = await expectCode(
      alice.uploadDatasetItems(stream(withBad)),
      Code.InvalidArgument,
      /message 4 of the stream/,
    );
    expect(violations(bad)).toEqual(["items[1].item_id"]);
    // an oversized chunk (1,001 items)
    const oversized = await expectCode(
      alice.uploadDatasetItems(
        stream([...good.slice(0, 2), { items: chunks(ds.id, 1001, 1001)[0]?.items ?? [] }]),
      ),
      Code.InvalidArgument,
      /at most 1000 items/,
    );
    expect(violations(oversized)).toEqual(["items"]);
    // an item id in two chunks
    const twice = await expectCode(
      alice.uploadDatasetItems(stream([...good.slice(0, 2), { items: [item(5)] }])),
      Code.InvalidArgument,
      /chunks 1 and 3/,
    );
    expect(violations(twice)).toEqual(["items[0].item_id"]);
    // another dataset or project in a later chunk, and no dataset at all
    const header = await expectCode(
      alice.uploadDatasetItems(
        stream([good[0] as Chunk, { datasetId: "01900000-0000-7000-8000-000000000009" }]),
      ),
      Code.InvalidArgument,
    );
    expect(violations(header)).toEqual(["dataset_id"]);
    const project = await expectCode(
      alice.uploadDatasetItems(stream([good[0] as Chunk, { project: "acme" }])),
      Code.InvalidArgument,
    );
    expect(violations(project)).toEqual(["project"]);
    expect(violations(await expectCode(alice.uploadDatasetItems(stream([])), Code.InvalidArgument))).toEqual([
      "dataset_id",
    ]);
    // a stream that ends without finish_upload (a client closing its stream as it is cancelled) commits nothing
    const unfinished = await expectCode(
      alice.uploadDatasetItems(stream(good.slice(0, 4))),
      Code.InvalidArgument,
      /ended after 4 chunks without one setting finish_upload/,
    );
    expect(violations(unfinished)).toEqual(["finish_upload"]);
    const afterFinish = await expectCode(
      alice.uploadDatasetItems(stream([...good, { items: [item(9_999_003)] }])),
      Code.InvalidArgument,
      /earlier chunk than the last \(chunk 6\)/,
    );
    expect(violations(afterFinish)).toEqual(["finish_upload"]);
    // more than 10,000 removed ids over the stream
    const removals = Array.from(
      { length: 11 },
      (_, c): Chunk => ({
        ...(c === 0 ? { datasetId: ds.id, baseVersion: 1 } : {}),
        removedItemIds: Array.from({ length: 1000 }, (_, k) => `gone-${c}-${k}`),
      }),
    );
    const tooManyRemovals = await expectCode(
      alice.uploadDatasetItems(stream(removals)),
      Code.InvalidArgument,
      /removes more than 10000 items \(chunk 11\)/,
    );
    expect(violations(tooManyRemovals)).toEqual(["removed_item_ids"]);
    const bob = await (await startEvaluationService(db, stubPromptClient(new Map()))).clients.datasets("bob");
    await expectCode(
      bob.uploadDatasetItems(stream(chunks(ds.id, 10))),
      Code.NotFound,
      /dataset .* not found/,
    );
    expect(await rows(db)).toEqual(before);
  });

  it("a retried upload with the same request_id returns the first version; other chunks with it are refused", async () => {
    const { db, alice, ds } = await start();
    const upload = chunks(ds.id, 2500, 1000, { requestId: "upload-1" });
    const first = await alice.uploadDatasetItems(stream(upload));
    expect(first.version?.version).toBe(1);
    const after = await rows(db);
    expect(await alice.uploadDatasetItems(stream(upload))).toEqual(first);
    expect(await rows(db)).toEqual(after);
    await expectCode(
      alice.uploadDatasetItems(stream(chunks(ds.id, 2400, 1000, { requestId: "upload-1" }))),
      Code.AlreadyExists,
    );
    // a derived upload: changes and removals across chunks
    const v2 = await alice.uploadDatasetItems(
      stream([
        {
          datasetId: ds.id,
          baseVersion: 1,
          items: [item(1, { expectedOutput: "new" })],
          removedItemIds: ["u-000002"],
        },
        { items: [item(3_000)], removedItemIds: ["u-000004"], finishUpload: true },
      ]),
    );
    expect(v2.version).toMatchObject({
      version: 2,
      itemCount: 2499,
      addedCount: 1,
      changedCount: 1,
      removedCount: 2,
    });
    expect(await rows(db)).toMatchObject({ dataset_versions: 2 });
  });

  it("works on the Connect port too (Connect protocol over HTTP/2)", async () => {
    const { db } = await openTestDatabase();
    const { connectPort } = await startEvaluationService(db, stubPromptClient(new Map()));
    const token = await signer.signToken({ sub: "alice", roles: ["user"] });
    const client = createClient(
      DatasetService,
      createConnectTransport({
        baseUrl: `http://127.0.0.1:${connectPort}`,
        httpVersion: "2",
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${token}`);
            return next(req);
          },
        ],
      }),
    );
    const ds = must((await client.createDataset({ name: "c" })).dataset);
    const res = await client.uploadDatasetItems(stream(chunks(ds.id, 2500)));
    expect(res.version).toMatchObject({ version: 1, itemCount: 2500 });
    const bad = await expectCode(
      client.uploadDatasetItems(stream([...chunks(ds.id, 1500), { items: [item(1, { tags: ["", "x"] })] }])),
      Code.InvalidArgument,
    );
    expect(violations(bad)).toEqual(["items[0].tags[0]"]);
  });
});
