import { and, asc, eq, gt, sql } from "drizzle-orm";
import { alias, type SQLiteColumn, unionAll } from "drizzle-orm/sqlite-core";
import type { Queryable } from "./repository.js";
import {
  type DatasetRow,
  type DatasetVersionRow,
  datasetItems,
  datasets,
  datasetVersionItems,
  datasetVersions,
} from "./schema.js";

/**
 * The dataset statements, built here so the plan tests `.toSQL()` the very same queries (query-plans.test.ts).
 * Every read of a version's items is a range of dataset_version_items' primary key (dataset_id, version,
 * item_id); SCHEMA.md has the plans.
 */

// ---- datasets --------------------------------------------------------------------------------------------

/** A dataset by id in the call's project (another project's is not found). */
export function datasetByIdQuery(db: Queryable, projectId: string, id: string) {
  return db
    .select()
    .from(datasets)
    .where(and(eq(datasets.id, id), eq(datasets.projectId, projectId)));
}

export function findDataset(db: Queryable, projectId: string, id: string) {
  return datasetByIdQuery(db, projectId, id).get();
}

export function datasetByNameQuery(db: Queryable, projectId: string, name: string) {
  return db
    .select({ id: datasets.id })
    .from(datasets)
    .where(and(eq(datasets.projectId, projectId), eq(datasets.name, name)));
}

export function findDatasetByName(db: Queryable, projectId: string, name: string) {
  return datasetByNameQuery(db, projectId, name).get();
}

export async function insertDataset(db: Queryable, row: DatasetRow): Promise<void> {
  await db.insert(datasets).values(row);
}

/** ListDatasets by name: datasets_project_name_idx walked forwards from the last name of the previous page. */
export function listDatasetsQuery(
  db: Queryable,
  f: { projectId: string; afterName?: string | undefined; limit: number },
) {
  return db
    .select()
    .from(datasets)
    .where(
      and(
        eq(datasets.projectId, f.projectId),
        f.afterName === undefined ? undefined : gt(datasets.name, f.afterName),
      ),
    )
    .orderBy(asc(datasets.projectId), asc(datasets.name))
    .limit(f.limit);
}

/** Moves the dataset to its just-committed version (the datasets_latest_version trigger checks the move). */
export async function advanceDataset(
  db: Queryable,
  d: { id: string; version: number; itemCount: number; at: number },
): Promise<void> {
  await db
    .update(datasets)
    .set({ latestVersion: d.version, latestItemCount: d.itemCount, updatedAt: d.at })
    .where(eq(datasets.id, d.id));
}

// ---- versions --------------------------------------------------------------------------------------------

/** A committed version (an uncommitted one exists only inside the transaction that writes it). */
export function versionQuery(db: Queryable, datasetId: string, version: number) {
  return db
    .select()
    .from(datasetVersions)
    .where(
      and(
        eq(datasetVersions.datasetId, datasetId),
        eq(datasetVersions.version, version),
        eq(datasetVersions.committed, 1),
      ),
    );
}

export function findVersion(db: Queryable, datasetId: string, version: number) {
  return versionQuery(db, datasetId, version).get();
}

/** Written uncommitted; `commitVersion` seals it once its items are in. */
export async function insertVersion(db: Queryable, row: Omit<DatasetVersionRow, "committed">): Promise<void> {
  await db.insert(datasetVersions).values({ ...row, committed: 0 });
}

/** The commit: the dataset_versions_commit_count trigger checks item_count against the rows written. */
export async function commitVersion(db: Queryable, datasetId: string, version: number): Promise<void> {
  await db
    .update(datasetVersions)
    .set({ committed: 1 })
    .where(and(eq(datasetVersions.datasetId, datasetId), eq(datasetVersions.version, version)));
}

// ---- items -----------------------------------------------------------------------------------------------

/** The digests of those of `itemIds` that a version holds: one primary-key lookup per id (json_each). */
export function versionDigestsQuery(db: Queryable, datasetId: string, version: number, itemIds: string[]) {
  return db
    .select({ itemId: datasetVersionItems.itemId, digest: datasetVersionItems.digest })
    .from(datasetVersionItems)
    .where(
      and(
        eq(datasetVersionItems.datasetId, datasetId),
        eq(datasetVersionItems.version, version),
        sql`${datasetVersionItems.itemId} IN (SELECT value FROM json_each(${JSON.stringify(itemIds)}))`,
      ),
    );
}

/**
 * The items of a version with one of `digests`, in item_id order: the version's primary-key range, filtered by
 * digest (no index on digest: this runs once per version from scratch that has items without ids).
 */
export function itemsWithDigestsQuery(db: Queryable, datasetId: string, version: number, digests: string[]) {
  return db
    .select({ itemId: datasetVersionItems.itemId, digest: datasetVersionItems.digest })
    .from(datasetVersionItems)
    .where(
      and(
        eq(datasetVersionItems.datasetId, datasetId),
        eq(datasetVersionItems.version, version),
        sql`${datasetVersionItems.digest} IN (SELECT value FROM json_each(${JSON.stringify(digests)}))`,
      ),
    )
    .orderBy(
      asc(datasetVersionItems.datasetId),
      asc(datasetVersionItems.version),
      asc(datasetVersionItems.itemId),
    );
}

/** The contents the dataset holds under any of `itemIds` (every digest of each): primary-key lookups. */
export function storedContentsQuery(db: Queryable, datasetId: string, itemIds: string[]) {
  return db
    .select({ itemId: datasetItems.itemId, digest: datasetItems.digest })
    .from(datasetItems)
    .where(
      and(
        eq(datasetItems.datasetId, datasetId),
        sql`${datasetItems.itemId} IN (SELECT value FROM json_each(${JSON.stringify(itemIds)}))`,
      ),
    );
}

/** Ids per probe of existing contents: one json_each list bound as a single value. */
const probeChunk = 5000;

/**
 * Rows per INSERT of a version's rows. Each statement binds its rows as ONE JSON text that SQLite unpacks with
 * json_each: on a remote database (sqld) every statement is a round trip inside the version's one transaction,
 * and every bound value a JSON object on the wire, so 100,000 items as 900,000 bound values in 250-row
 * statements took 7 s there; as JSON texts it is the rows' own size, a few dozen round trips.
 */
const contentRowsPerStatement = 5000;
/**
 * ... and at most this many bytes of JSON per statement: an embedded replica delegates each statement to its
 * primary over gRPC, which broke off on one of about 10 MB (items of up to 64 KiB each add up fast).
 */
const statementMaxBytes = 2 * 1024 * 1024;
/** 5,000 memberships of at most ~200 bytes of JSON each: within `statementMaxBytes`. */
const memberRowsPerStatement = 5000;

type ContentRow = typeof datasetItems.$inferInsert;

/**
 * Item contents not stored yet. A content the dataset already holds under the same id (same digest: an item
 * sent again unchanged, or changed back) is kept as it is, so the probe (primary-key lookups) comes first and
 * only the new rows are inserted. Every CHECK applies as to any INSERT: json_each only carries the values.
 */
export async function insertItemContents(
  db: Queryable,
  datasetId: string,
  createdAt: number,
  rows: readonly ContentRow[],
): Promise<void> {
  const stored = new Set<string>();
  for (let start = 0; start < rows.length; start += probeChunk) {
    const ids = rows.slice(start, start + probeChunk).map((r) => r.itemId);
    const found = await storedContentsQuery(db, datasetId, ids);
    for (const f of found) stored.add(`${f.itemId}\0${f.digest}`);
  }
  const fresh = rows.filter((r) => !stored.has(`${r.itemId}\0${r.digest}`));
  let batch: string[] = [];
  let batchBytes = 0;
  const flush = async () => {
    if (batch.length === 0) return;
    const t = datasetItems;
    await db.run(
      sql`INSERT INTO ${t} (${sql.identifier(t.datasetId.name)}, ${sql.identifier(t.itemId.name)}, ${sql.identifier(t.digest.name)}, ${sql.identifier(t.inputKind.name)}, ${sql.identifier(t.input.name)}, ${sql.identifier(t.expectedOutput.name)}, ${sql.identifier(t.metadata.name)}, ${sql.identifier(t.tags.name)}, ${sql.identifier(t.createdAt.name)})
        SELECT ${datasetId}, j.value ->> 0, j.value ->> 1, j.value ->> 2, j.value ->> 3, j.value ->> 4, j.value ->> 5, j.value ->> 6, ${createdAt}
        FROM json_each(${`[${batch.join(",")}]`}) AS j`,
    );
    batch = [];
    batchBytes = 0;
  };
  for (const r of fresh) {
    const row = JSON.stringify([
      r.itemId,
      r.digest,
      r.inputKind,
      r.input,
      r.expectedOutput ?? "",
      r.metadata ?? "{}",
      r.tags ?? "[]",
    ]);
    const bytes = Buffer.byteLength(row, "utf8");
    if (
      batch.length >= contentRowsPerStatement ||
      (batch.length > 0 && batchBytes + bytes > statementMaxBytes)
    ) {
      await flush();
    }
    batch.push(row);
    batchBytes += bytes;
  }
  await flush();
}

/** A version's new memberships (never a conflict: the version is new), as json_each texts like the contents. */
export async function insertMembers(
  db: Queryable,
  datasetId: string,
  version: number,
  rows: readonly { itemId: string; digest: string }[],
): Promise<void> {
  const m = datasetVersionItems;
  for (let start = 0; start < rows.length; start += memberRowsPerStatement) {
    const values = rows.slice(start, start + memberRowsPerStatement).map((r) => [r.itemId, r.digest]);
    await db.run(
      sql`INSERT INTO ${m} (${sql.identifier(m.datasetId.name)}, ${sql.identifier(m.version.name)}, ${sql.identifier(m.itemId.name)}, ${sql.identifier(m.digest.name)})
        SELECT ${datasetId}, ${version}, j.value ->> 0, j.value ->> 1 FROM json_each(${JSON.stringify(values)}) AS j`,
    );
  }
}

/**
 * A derived version's unchanged items: one INSERT ... SELECT over the base version's primary-key range. It runs
 * after the new and changed items are in, and skips every id the new version already holds (a key probe), so
 * only the removed ids need a list. Contents are not copied: the new rows point at the same ones.
 */
export function copyMembersQuery(
  db: Queryable,
  f: { datasetId: string; fromVersion: number; toVersion: number; excludeIds: readonly string[] },
) {
  const m = datasetVersionItems;
  return db.insert(m).select(
    db
      .select({
        datasetId: m.datasetId,
        version: sql<number>`${f.toVersion}`.as("version"),
        itemId: m.itemId,
        digest: m.digest,
      })
      .from(m)
      .where(
        and(
          eq(m.datasetId, f.datasetId),
          eq(m.version, f.fromVersion),
          sql`${m.itemId} NOT IN (SELECT value FROM json_each(${JSON.stringify(f.excludeIds)}))`,
          sql`NOT EXISTS (SELECT 1 FROM ${m} AS n WHERE n.dataset_id = ${f.datasetId} AND n.version = ${f.toVersion} AND n.item_id = ${m.itemId})`,
        ),
      ),
  );
}

/** ListDatasetItems: a keyset range of the version's primary key, joined to the contents by their key. */
export function listItemsQuery(
  db: Queryable,
  f: { datasetId: string; version: number; afterItemId?: string | undefined; limit: number },
) {
  const m = datasetVersionItems;
  return db
    .select({
      itemId: datasetItems.itemId,
      inputKind: datasetItems.inputKind,
      input: datasetItems.input,
      expectedOutput: datasetItems.expectedOutput,
      metadata: datasetItems.metadata,
      tags: datasetItems.tags,
    })
    .from(m)
    .innerJoin(
      datasetItems,
      and(
        eq(datasetItems.datasetId, m.datasetId),
        eq(datasetItems.itemId, m.itemId),
        eq(datasetItems.digest, m.digest),
      ),
    )
    .where(
      and(
        eq(m.datasetId, f.datasetId),
        eq(m.version, f.version),
        f.afterItemId === undefined ? undefined : gt(m.itemId, f.afterItemId),
      ),
    )
    .orderBy(asc(m.datasetId), asc(m.version), asc(m.itemId))
    .limit(f.limit);
}

// ---- diff ------------------------------------------------------------------------------------------------

/** Codes of the diff's `change` column: the DatasetItemChange numbers. */
export const changeCode = { added: 1, removed: 2, changed: 3 } as const;

export interface DiffFilter {
  datasetId: string;
  fromVersion: number;
  toVersion: number;
  afterItemId?: string | undefined;
  limit: number;
}

/**
 * DiffDatasetVersions, in item_id order: the items of `to` that `from` lacks or holds with another digest,
 * then those of `from` that `to` lacks, merged in item_id order (each arm walks a primary-key range of
 * dataset_version_items in order and probes the other version by key, so no sort is needed).
 */
export function diffQuery(db: Queryable, f: DiffFilter) {
  const to = alias(datasetVersionItems, "t");
  const from = alias(datasetVersionItems, "f");
  const after = (c: SQLiteColumn) => (f.afterItemId === undefined ? undefined : gt(c, f.afterItemId));
  const addedOrChanged = db
    .select({
      itemId: to.itemId,
      change:
        sql<number>`CASE WHEN ${from.itemId} IS NULL THEN ${changeCode.added} ELSE ${changeCode.changed} END`.as(
          "change",
        ),
    })
    .from(to)
    .leftJoin(
      from,
      and(eq(from.datasetId, to.datasetId), eq(from.version, f.fromVersion), eq(from.itemId, to.itemId)),
    )
    .where(
      and(
        eq(to.datasetId, f.datasetId),
        eq(to.version, f.toVersion),
        after(to.itemId),
        sql`(${from.itemId} IS NULL OR ${from.digest} <> ${to.digest})`,
      ),
    );
  const removed = db
    .select({ itemId: from.itemId, change: sql<number>`${changeCode.removed}`.as("change") })
    .from(from)
    .where(
      and(
        eq(from.datasetId, f.datasetId),
        eq(from.version, f.fromVersion),
        after(from.itemId),
        sql`NOT EXISTS (SELECT 1 FROM ${datasetVersionItems} AS o WHERE o.dataset_id = ${from.datasetId} AND o.version = ${f.toVersion} AND o.item_id = ${from.itemId})`,
      ),
    );
  return unionAll(addedOrChanged, removed).orderBy(sql`1`).limit(f.limit);
}

/** The diff's totals: three counts, each over one version's primary-key range with key probes into the other. */
export function diffCountsQuery(db: Queryable, f: Omit<DiffFilter, "afterItemId" | "limit">) {
  const m = datasetVersionItems;
  const inVersion = (version: number, outer: string) =>
    sql`SELECT 1 FROM ${m} AS x WHERE x.dataset_id = ${f.datasetId} AND x.version = ${version} AND x.item_id = ${sql.raw(outer)}.item_id`;
  return db
    .select({
      added:
        sql<number>`(SELECT count(*) FROM ${m} AS t WHERE t.dataset_id = ${f.datasetId} AND t.version = ${f.toVersion} AND NOT EXISTS (${inVersion(f.fromVersion, "t")}))`.mapWith(
          Number,
        ),
      removed:
        sql<number>`(SELECT count(*) FROM ${m} AS fr WHERE fr.dataset_id = ${f.datasetId} AND fr.version = ${f.fromVersion} AND NOT EXISTS (${inVersion(f.toVersion, "fr")}))`.mapWith(
          Number,
        ),
      changed:
        sql<number>`(SELECT count(*) FROM ${m} AS t JOIN ${m} AS fr ON fr.dataset_id = t.dataset_id AND fr.version = ${f.fromVersion} AND fr.item_id = t.item_id WHERE t.dataset_id = ${f.datasetId} AND t.version = ${f.toVersion} AND fr.digest <> t.digest)`.mapWith(
          Number,
        ),
    })
    .from(sql`(SELECT 1)`);
}
