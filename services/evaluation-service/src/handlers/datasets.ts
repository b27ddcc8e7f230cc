import {
  type CreateDatasetRequest,
  CreateDatasetResponseSchema,
  type CreateDatasetVersionRequest,
  CreateDatasetVersionResponseSchema,
  DatasetItemSchema,
  DatasetSchema,
  type DatasetService,
  type DiffDatasetVersionsRequest,
  type GetDatasetRequest,
  type ListDatasetItemsRequest,
  type ListDatasetsRequest,
} from "@autoforge/contracts/evaluation/v1/datasets";
import {
  cappedKeysetPage,
  decodePageToken,
  encodedItemSize,
  filterDigest,
  keysetPage,
  requestDigest,
  resolvePageSize,
  type ServiceHandlers,
} from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import {
  datasetItemMessage,
  datasetMessage,
  datasetVersionMessage,
  itemContent,
} from "../dataset-convert.js";
import {
  diffCountsQuery,
  diffQuery,
  findDatasetByName,
  insertDataset,
  listDatasetsQuery,
  listItemsQuery,
} from "../db/dataset-repository.js";
import { requestIds } from "../db/repository.js";
import type { DatasetRow } from "../db/schema.js";
import { type ItemContent, itemDigest } from "../domain/dataset-items.js";
import { datasetNameTaken } from "../domain/errors.js";
import { type Ctx, type EvaluationTx, type HandlerDeps, newId, requestIdScope } from "./common.js";
import { createUploadHandler } from "./dataset-upload.js";
import { commitDatasetVersion, requireDataset, requireVersion } from "./dataset-versions.js";

type H = ServiceHandlers<typeof DatasetService, EvaluationTx>;

const datasetSize = encodedItemSize(DatasetSchema);
const itemSize = encodedItemSize(DatasetItemSchema);

export function createDatasetHandlers(deps: HandlerDeps): H {
  const now = deps.now ?? Date.now;

  const createDataset: H["createDataset"] = async (req: CreateDatasetRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const requestId = requestIdScope(ctx, "CreateDataset", {
      requestId: req.requestId,
      digest: requestDigest({ name: req.name, description: req.description }),
      responseSchema: CreateDatasetResponseSchema,
    });
    return ctx.unitOfWork(async (tx, { audit }) => {
      const earlier = await requestIds.replay(tx, requestId);
      if (earlier !== undefined) return earlier;
      // the unique index is the backstop; this answers with the name and project
      if ((await findDatasetByName(tx, project, req.name)) !== undefined) {
        throw datasetNameTaken(req.name, project);
      }
      const { id, createdAt } = newId();
      const row: DatasetRow = {
        id,
        projectId: project,
        ownerId: ctx.principal.subject,
        name: req.name,
        description: req.description,
        latestVersion: 0,
        latestItemCount: 0,
        createdAt,
        updatedAt: createdAt,
      };
      await insertDataset(tx, row);
      await audit({ action: "dataset.create", resourceType: "dataset", resourceId: id, after: { ...row } });
      const response = create(CreateDatasetResponseSchema, { dataset: datasetMessage(row) });
      await requestIds.remember(tx, requestId, response, createdAt);
      return response;
    });
  };

  const getDataset: H["getDataset"] = async (req: GetDatasetRequest, ctx: Ctx) => {
    const row = await ctx.unitOfWork((tx) => requireDataset(tx, ctx.project.id, req.id));
    return { dataset: datasetMessage(row) };
  };

  const listDatasets: H["listDatasets"] = async (req: ListDatasetsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const pageSize = resolvePageSize(req.pageSize);
    const digest = filterDigest("ListDatasets", { project });
    const key = decodePageToken(req.pageToken, digest, ["string"]);
    const rows = await ctx.unitOfWork((tx) =>
      listDatasetsQuery(tx, {
        projectId: project,
        afterName: key?.[0] as string | undefined,
        limit: pageSize + 1,
      }),
    );
    const { page, nextPageToken } = cappedKeysetPage(rows, {
      pageSize,
      digest,
      keyOf: (r) => [r.name],
      toItem: (r) => create(DatasetSchema, datasetMessage(r)),
      sizeOf: datasetSize,
    });
    return { datasets: page, nextPageToken };
  };

  const createDatasetVersion: H["createDatasetVersion"] = async (
    req: CreateDatasetVersionRequest,
    ctx: Ctx,
  ) => {
    // Contents and digests are computed before the write transaction: it holds the single writer.
    const items = req.items.map((item) => {
      const content: ItemContent = itemContent(item);
      return { itemId: item.itemId, content, digest: itemDigest(content) };
    });
    const requestId = requestIdScope(ctx, "CreateDatasetVersion", {
      requestId: req.requestId,
      digest: requestDigest({
        datasetId: req.datasetId,
        baseVersion: req.baseVersion,
        items: items.map((i) => [i.itemId, i.digest]),
        removed: req.removedItemIds,
      }),
      responseSchema: CreateDatasetVersionResponseSchema,
    });
    return ctx.unitOfWork(async (tx, { audit }) => {
      const earlier = await requestIds.replay(tx, requestId);
      if (earlier !== undefined) return earlier;
      const { dataset, version } = await commitDatasetVersion(tx, {
        projectId: ctx.project.id,
        datasetId: req.datasetId,
        baseVersion: req.baseVersion,
        items,
        removedItemIds: req.removedItemIds,
        creatorId: ctx.principal.subject,
        at: now(),
      });
      await audit({
        action: "dataset.version.create",
        resourceType: "dataset",
        resourceId: dataset.id,
        after: { ...version, latestVersion: dataset.latestVersion },
      });
      const response = create(CreateDatasetVersionResponseSchema, {
        version: datasetVersionMessage(version),
        dataset: datasetMessage(dataset),
      });
      await requestIds.remember(tx, requestId, response, version.createdAt);
      return response;
    });
  };

  const listDatasetItems: H["listDatasetItems"] = async (req: ListDatasetItemsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const pageSize = resolvePageSize(req.pageSize);
    const digest = filterDigest("ListDatasetItems", {
      project,
      datasetId: req.datasetId,
      version: req.version,
    });
    // the token carries the version listed, so "latest" (0) keeps listing the version of its first page
    const key = decodePageToken(req.pageToken, digest, ["number", "string"]);
    const { version, rows } = await ctx.unitOfWork(async (tx) => {
      const dataset = await requireDataset(tx, project, req.datasetId);
      const wanted =
        (key?.[0] as number | undefined) ?? (req.version === 0 ? dataset.latestVersion : req.version);
      const version = await requireVersion(tx, dataset.id, wanted);
      const rows = await listItemsQuery(tx, {
        datasetId: dataset.id,
        version: version.version,
        afterItemId: key?.[1] as string | undefined,
        limit: pageSize + 1,
      });
      return { version, rows };
    });
    const { page, nextPageToken } = cappedKeysetPage(rows, {
      pageSize,
      digest,
      keyOf: (r) => [version.version, r.itemId],
      toItem: (r) => create(DatasetItemSchema, datasetItemMessage(r)),
      sizeOf: itemSize,
    });
    return { items: page, nextPageToken, version: datasetVersionMessage(version) };
  };

  const diffDatasetVersions: H["diffDatasetVersions"] = async (req: DiffDatasetVersionsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const pageSize = resolvePageSize(req.pageSize);
    const digest = filterDigest("DiffDatasetVersions", {
      project,
      datasetId: req.datasetId,
      from: req.fromVersion,
      to: req.toVersion,
    });
    const key = decodePageToken(req.pageToken, digest, ["string"]);
    const { rows, counts } = await ctx.unitOfWork(async (tx) => {
      const dataset = await requireDataset(tx, project, req.datasetId);
      await requireVersion(tx, dataset.id, req.fromVersion);
      await requireVersion(tx, dataset.id, req.toVersion);
      const filter = { datasetId: dataset.id, fromVersion: req.fromVersion, toVersion: req.toVersion };
      const rows = await diffQuery(tx, {
        ...filter,
        afterItemId: key?.[0] as string | undefined,
        limit: pageSize + 1,
      });
      const counts = await diffCountsQuery(tx, filter).get();
      return { rows, counts };
    });
    const { page, nextPageToken } = keysetPage(rows, pageSize, digest, (r) => [r.itemId]);
    return {
      diffs: page.map((r) => ({ itemId: r.itemId, change: Number(r.change) })),
      nextPageToken,
      addedCount: counts?.added ?? 0,
      removedCount: counts?.removed ?? 0,
      changedCount: counts?.changed ?? 0,
    };
  };

  return {
    createDataset,
    getDataset,
    listDatasets,
    createDatasetVersion,
    uploadDatasetItems: createUploadHandler(deps),
    listDatasetItems,
    diffDatasetVersions,
  };
}
