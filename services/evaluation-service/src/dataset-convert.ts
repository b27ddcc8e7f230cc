import type {
  DatasetItem,
  DatasetItemSchema,
  DatasetSchema,
  DatasetVersionSchema,
} from "@autoforge/contracts/evaluation/v1/datasets";
import { jsonToStruct, structToJson } from "@autoforge/server";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { DatasetItemRow, DatasetRow, DatasetVersionRow } from "./db/schema.js";
import type { ItemContent } from "./domain/dataset-items.js";

/** Dataset rows <-> protobuf-es messages. No I/O, no rules: those live in domain/ and handlers/. */

export function datasetMessage(row: DatasetRow): MessageInitShape<typeof DatasetSchema> {
  return {
    id: row.id,
    project: row.projectId,
    name: row.name,
    description: row.description,
    latestVersion: row.latestVersion,
    latestItemCount: row.latestItemCount,
    ownerId: row.ownerId,
    createTime: timestampFromMs(row.createdAt),
    updateTime: timestampFromMs(row.updatedAt),
  };
}

export function datasetVersionMessage(
  row: Omit<DatasetVersionRow, "committed">,
): MessageInitShape<typeof DatasetVersionSchema> {
  return {
    datasetId: row.datasetId,
    version: row.version,
    parentVersion: row.parentVersion ?? 0,
    itemCount: row.itemCount,
    addedCount: row.addedCount,
    changedCount: row.changedCount,
    removedCount: row.removedCount,
    creatorId: row.creatorId,
    createTime: timestampFromMs(row.createdAt),
  };
}

/** An item as stored: the JSON input and metadata with sorted keys, so equal contents have equal digests. */
export function itemContent(item: DatasetItem): ItemContent {
  const { input } = item;
  return {
    inputKind: input.case === "jsonInput" ? "json" : "text",
    input:
      input.case === "jsonInput" ? structToJson(input.value) : input.case === "textInput" ? input.value : "",
    expectedOutput: item.expectedOutput,
    metadata: structToJson(item.metadata),
    tags: JSON.stringify(item.tags),
  };
}

export function datasetItemMessage(
  row: Pick<DatasetItemRow, "itemId" | "inputKind" | "input" | "expectedOutput" | "metadata" | "tags">,
): MessageInitShape<typeof DatasetItemSchema> {
  return {
    itemId: row.itemId,
    input:
      row.inputKind === "json"
        ? { case: "jsonInput", value: jsonToStruct(row.input) }
        : { case: "textInput", value: row.input },
    expectedOutput: row.expectedOutput,
    metadata: jsonToStruct(row.metadata),
    tags: JSON.parse(row.tags) as string[],
  };
}
