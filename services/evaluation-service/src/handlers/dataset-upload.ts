import { createHash } from "node:crypto";
import {
  type DatasetService,
  type UploadDatasetItemsRequest,
  UploadDatasetItemsResponseSchema,
} from "@autoforge/contracts/evaluation/v1/datasets";
import { InvalidArgumentError, requestDigest, type ServiceHandlers } from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { datasetMessage, datasetVersionMessage, itemContent } from "../dataset-convert.js";
import { requestIds } from "../db/repository.js";
import { itemDigest } from "../domain/dataset-items.js";
import { limits } from "../domain/limits.js";
import { type Ctx, type EvaluationTx, type HandlerDeps, requestIdScope } from "./common.js";
import { commitDatasetVersion, type NewVersionItem } from "./dataset-versions.js";

type H = ServiceHandlers<typeof DatasetService, EvaluationTx>;

/** What the stream's chunks add up to, before anything is written. */
interface Upload {
  readonly first: UploadDatasetItemsRequest;
  readonly items: NewVersionItem[];
  readonly removedItemIds: string[];
  readonly chunks: number;
  /** Over every item id, digest and removed id in stream order: the request_id's payload. */
  readonly digest: string;
}

/**
 * Reads the whole stream (each chunk already validated by the server kit) and checks the rules across chunks:
 * the first chunk names the dataset, later ones repeat or leave out its header fields, item ids are unique over
 * the stream, at most 100,000 items, and the last chunk (only it) sets finish_upload. Throws INVALID_ARGUMENT naming the field and the chunk; a cancel or a
 * deadline ends the iteration with its own error. Nothing is written here.
 */
async function receive(requests: AsyncIterable<UploadDatasetItemsRequest>): Promise<Upload> {
  let first: UploadDatasetItemsRequest | undefined;
  const items: NewVersionItem[] = [];
  const removedItemIds: string[] = [];
  const chunkOf = new Map<string, number>();
  const hash = createHash("sha256");
  let chunks = 0;
  let size = 0;
  let finished = false;
  for await (const chunk of requests) {
    chunks++;
    const where = `(chunk ${chunks})`;
    if (finished) {
      throw new InvalidArgumentError("finish_upload", `was set on an earlier chunk than the last ${where}`);
    }
    finished = chunk.finishUpload;
    if (first === undefined) {
      first = chunk;
      if (chunk.datasetId === "")
        throw new InvalidArgumentError("dataset_id", "is required in the first chunk");
    } else {
      const header: [string, boolean][] = [
        ["dataset_id", chunk.datasetId !== "" && chunk.datasetId !== first.datasetId],
        ["base_version", chunk.baseVersion !== 0 && chunk.baseVersion !== first.baseVersion],
        ["request_id", chunk.requestId !== "" && chunk.requestId !== first.requestId],
      ];
      const [bad, ...more] = header
        .filter(([, differs]) => differs)
        .map(([field]) => ({ field, description: `must be empty or the first chunk's ${where}` }));
      if (bad !== undefined) throw new InvalidArgumentError([bad, ...more]);
    }
    chunk.items.forEach((item, i) => {
      if (items.length >= limits.datasetVersionItemsMax) {
        throw new InvalidArgumentError(
          "items",
          `the upload holds more than ${limits.datasetVersionItemsMax} items ${where}`,
        );
      }
      if (item.itemId !== "") {
        const earlier = chunkOf.get(item.itemId);
        if (earlier !== undefined) {
          throw new InvalidArgumentError(
            `items[${i}].item_id`,
            `is given twice (chunks ${earlier} and ${chunks})`,
          );
        }
        chunkOf.set(item.itemId, chunks);
      }
      const content = itemContent(item);
      size +=
        content.input.length + content.expectedOutput.length + content.metadata.length + content.tags.length;
      if (size > limits.datasetUploadMaxChars) {
        throw new InvalidArgumentError(
          "items",
          `the upload is larger than ${limits.datasetUploadMaxChars} characters ${where}`,
        );
      }
      const digest = itemDigest(content);
      hash.update(`${item.itemId}\0${digest}\n`);
      // an empty id is assigned in the commit (commitDatasetVersion)
      items.push({ itemId: item.itemId, content, digest });
    });
    chunk.removedItemIds.forEach((id, i) => {
      if (removedItemIds.length >= limits.datasetUploadRemovedMax) {
        throw new InvalidArgumentError(
          "removed_item_ids",
          `the upload removes more than ${limits.datasetUploadRemovedMax} items ${where}: upload the version from scratch`,
        );
      }
      if (chunkOf.has(id))
        throw new InvalidArgumentError(`removed_item_ids[${i}]`, `is also in items ${where}`);
      chunkOf.set(id, chunks);
      hash.update(`-${id}\n`);
      removedItemIds.push(id);
    });
  }
  if (first === undefined) throw new InvalidArgumentError("dataset_id", "is required in the first chunk");
  if (!finished) {
    throw new InvalidArgumentError(
      "finish_upload",
      `the stream ended after ${chunks} chunks without one setting finish_upload: nothing was committed`,
    );
  }
  if (first.baseVersion === 0 && removedItemIds.length > 0) {
    throw new InvalidArgumentError(
      "removed_item_ids",
      "needs a base_version: a version from scratch removes nothing",
    );
  }
  return { first, items, removedItemIds, chunks, digest: hash.digest("hex") };
}

/**
 * UploadDatasetItems: the stream is received completely, then the version is written and committed in ONE write
 * unit of work (the same `commitDatasetVersion` as CreateDatasetVersion). A client that cancels midway, a
 * deadline, or an invalid chunk ends the call before the unit of work starts: no version, no row.
 */
export function createUploadHandler(deps: HandlerDeps): H["uploadDatasetItems"] {
  const now = deps.now ?? Date.now;
  return async (requests, ctx: Ctx) => {
    const upload = await receive(requests);
    const { first } = upload;
    const requestId = requestIdScope(ctx, "UploadDatasetItems", {
      requestId: first.requestId,
      digest: requestDigest({
        datasetId: first.datasetId,
        baseVersion: first.baseVersion,
        stream: upload.digest,
      }),
      responseSchema: UploadDatasetItemsResponseSchema,
    });
    return ctx.unitOfWork(async (tx, { audit }) => {
      const earlier = await requestIds.replay(tx, requestId);
      if (earlier !== undefined) return earlier;
      const { dataset, version } = await commitDatasetVersion(tx, {
        projectId: ctx.project.id,
        datasetId: first.datasetId,
        baseVersion: first.baseVersion,
        items: upload.items,
        removedItemIds: upload.removedItemIds,
        creatorId: ctx.principal.subject,
        at: now(),
      });
      await audit({
        action: "dataset.version.create",
        resourceType: "dataset",
        resourceId: dataset.id,
        after: { ...version, latestVersion: dataset.latestVersion, chunks: upload.chunks },
      });
      const response = create(UploadDatasetItemsResponseSchema, {
        version: datasetVersionMessage(version),
        dataset: datasetMessage(dataset),
        chunkCount: upload.chunks,
      });
      await requestIds.remember(tx, requestId, response, version.createdAt);
      return response;
    });
  };
}
