import {
  advanceDataset,
  commitVersion,
  copyMembersQuery,
  findDataset,
  findVersion,
  insertItemContents,
  insertMembers,
  insertVersion,
  versionDigestsQuery,
} from "../db/dataset-repository.js";
import type { Queryable } from "../db/repository.js";
import type { DatasetRow, DatasetVersionRow } from "../db/schema.js";
import type { ItemContent } from "../domain/dataset-items.js";
import { planVersion } from "../domain/dataset-versions.js";
import { datasetNotFound, datasetVersionNotFound } from "../domain/errors.js";

/** Another project's dataset and a missing one look the same: NOT_FOUND. */
export async function requireDataset(tx: Queryable, projectId: string, id: string): Promise<DatasetRow> {
  const row = await findDataset(tx, projectId, id);
  if (row === undefined) throw datasetNotFound(id);
  return row;
}

/** A committed version of a dataset the caller has already found in its project. */
export async function requireVersion(
  tx: Queryable,
  datasetId: string,
  version: number,
): Promise<DatasetVersionRow> {
  const row = version < 1 ? undefined : await findVersion(tx, datasetId, version);
  if (row === undefined) throw datasetVersionNotFound(datasetId, version);
  return row;
}

export interface NewVersionItem {
  /** Final: a server-assigned id is filled in before. */
  readonly itemId: string;
  readonly content: ItemContent;
  readonly digest: string;
}

/**
 * Writes and commits the dataset's next version inside the caller's write transaction: the version row
 * (uncommitted), the new contents and memberships, the unchanged members of the base copied by one
 * INSERT ... SELECT, then the commit (its trigger checks the count) and the dataset's move to it. Any error
 * rolls the whole transaction back: no version is ever partly written.
 */
export async function commitDatasetVersion(
  tx: Queryable,
  input: {
    projectId: string;
    datasetId: string;
    /** 0: from scratch. */
    baseVersion: number;
    items: readonly NewVersionItem[];
    removedItemIds: readonly string[];
    creatorId: string;
    at: number;
  },
): Promise<{ dataset: DatasetRow; version: DatasetVersionRow }> {
  const dataset = await requireDataset(tx, input.projectId, input.datasetId);
  const base = input.baseVersion === 0 ? undefined : await requireVersion(tx, dataset.id, input.baseVersion);
  const named = base === undefined ? [] : [...input.items.map((i) => i.itemId), ...input.removedItemIds];
  const digests =
    base === undefined || named.length === 0
      ? new Map<string, string>()
      : new Map(
          (await versionDigestsQuery(tx, dataset.id, base.version, named)).map((r) => [r.itemId, r.digest]),
        );
  const plan = planVersion({
    items: input.items,
    removedItemIds: input.removedItemIds,
    base: digests,
    baseCount: base?.itemCount ?? 0,
    baseVersion: input.baseVersion,
  });
  const version: DatasetVersionRow = {
    datasetId: dataset.id,
    version: dataset.latestVersion + 1,
    parentVersion: base?.version ?? null,
    itemCount: plan.itemCount,
    addedCount: plan.addedCount,
    changedCount: plan.changedCount,
    removedCount: plan.removedCount,
    creatorId: input.creatorId,
    committed: 1,
    createdAt: Math.max(input.at, dataset.updatedAt),
  };
  await insertVersion(tx, version);
  const written = plan.write.map((i) => input.items[i] as NewVersionItem);
  await insertItemContents(
    tx,
    dataset.id,
    written.map((item) => ({
      datasetId: dataset.id,
      itemId: item.itemId,
      digest: item.digest,
      ...item.content,
      createdAt: version.createdAt,
    })),
  );
  await insertMembers(
    tx,
    written.map((item) => ({
      datasetId: dataset.id,
      version: version.version,
      itemId: item.itemId,
      digest: item.digest,
    })),
  );
  if (base !== undefined) {
    await copyMembersQuery(tx, {
      datasetId: dataset.id,
      fromVersion: base.version,
      toVersion: version.version,
      excludeIds: plan.excludeFromCopy,
    });
  }
  await commitVersion(tx, dataset.id, version.version);
  await advanceDataset(tx, {
    id: dataset.id,
    version: version.version,
    itemCount: version.itemCount,
    at: version.createdAt,
  });
  return {
    dataset: {
      ...dataset,
      latestVersion: version.version,
      latestItemCount: version.itemCount,
      updatedAt: version.createdAt,
    },
    version,
  };
}
