import { uuidv7 } from "uuidv7";
import {
  advanceDataset,
  commitVersion,
  copyMembersQuery,
  findDataset,
  findVersion,
  insertItemContents,
  insertMembers,
  insertVersion,
  itemsWithDigestsQuery,
  versionDigestsQuery,
} from "../db/dataset-repository.js";
import type { Queryable } from "../db/repository.js";
import type { DatasetRow, DatasetVersionRow } from "../db/schema.js";
import type { ItemContent } from "../domain/dataset-items.js";
import { planVersion } from "../domain/dataset-versions.js";
import { datasetNotFound, datasetVersionNotFound } from "../domain/errors.js";

/** Ids or digests bound (as one json_each text) per lookup in a version. */
const idsPerLookup = 5000;

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

/**
 * Ids for the items given without one. In a version from scratch, an item whose content is that of an item of
 * the latest version keeps that item's id (each id once, and not one the request names itself): re-sending a
 * dataset whole keeps the ids of what did not change, so diffs and results stay comparable. Any other item
 * gets a new UUIDv7; in a derived version an item without id is always new.
 */
async function assignItemIds(
  tx: Queryable,
  dataset: DatasetRow,
  fromScratch: boolean,
  items: readonly NewVersionItem[],
): Promise<NewVersionItem[]> {
  const unnamed = items.filter((i) => i.itemId === "");
  const previous = new Map<string, string[]>();
  if (fromScratch && dataset.latestVersion > 0 && unnamed.length > 0) {
    const given = new Set(items.map((i) => i.itemId));
    const digests = [...new Set(unnamed.map((i) => i.digest))];
    const found: { itemId: string; digest: string }[] = [];
    for (let start = 0; start < digests.length; start += idsPerLookup) {
      const slice = digests.slice(start, start + idsPerLookup);
      found.push(...(await itemsWithDigestsQuery(tx, dataset.id, dataset.latestVersion, slice)));
    }
    // in item_id order, whichever slice found them: the same request always maps to the same ids
    found.sort((a, b) => (a.itemId < b.itemId ? -1 : a.itemId > b.itemId ? 1 : 0));
    for (const row of found) {
      if (given.has(row.itemId)) continue;
      const ids = previous.get(row.digest) ?? [];
      ids.push(row.itemId);
      previous.set(row.digest, ids);
    }
  }
  return items.map((i) =>
    i.itemId === "" ? { ...i, itemId: previous.get(i.digest)?.shift() ?? uuidv7() } : i,
  );
}

export interface NewVersionItem {
  /** The caller's id; empty: assigned here (`assignItemIds`). */
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
  const items = await assignItemIds(tx, dataset, base === undefined, input.items);
  const named = base === undefined ? [] : [...items.map((i) => i.itemId), ...input.removedItemIds];
  const digests = new Map<string, string>();
  // in slices, so that no bound list grows with an upload's 100,000 ids
  for (let start = 0; base !== undefined && start < named.length; start += idsPerLookup) {
    const slice = named.slice(start, start + idsPerLookup);
    for (const r of await versionDigestsQuery(tx, dataset.id, base.version, slice))
      digests.set(r.itemId, r.digest);
  }
  const plan = planVersion({
    items,
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
  const written = plan.write.map((i) => items[i] as NewVersionItem);
  await insertItemContents(
    tx,
    dataset.id,
    version.createdAt,
    written.map((item) => ({
      datasetId: dataset.id,
      itemId: item.itemId,
      digest: item.digest,
      ...item.content,
      createdAt: version.createdAt,
    })),
  );
  await insertMembers(tx, dataset.id, version.version, written);
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
