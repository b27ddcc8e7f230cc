import {
  CreateDatasetRequestSchema,
  CreateDatasetVersionRequestSchema,
  type DatasetItem,
  DiffDatasetVersionsRequestSchema,
  GetDatasetRequestSchema,
  ListDatasetItemsRequestSchema,
  ListDatasetsRequestSchema,
  UploadDatasetItemsRequestSchema,
} from "@autoforge/contracts/evaluation/v1/datasets";
import {
  createValidators,
  defineValidator,
  pageSizeRule,
  pageTokenRule,
  type Validators,
  type Violations,
} from "@autoforge/server";
import { z } from "zod";
import { limits, utf8Bytes } from "./domain/limits.js";
import { chars, datasetItemId, jsonObjectMaxBytes, maxBytes, noNul, requestId, uuid } from "./field-rules.js";

/**
 * DatasetService's request rules, run by the server kit before any handler: bad input answers INVALID_ARGUMENT
 * naming every bad field (`items[3].tags[1]`) and writes nothing. Rules that need the database (the base
 * version holds a removed id, the version stays within 100,000 items) are checked in the handler's
 * transaction, before anything is written.
 */

const version = z.int().min(0, "must be >= 0");

const item = z.object({
  itemId: z.union([z.literal(""), datasetItemId]),
  expectedOutput: maxBytes(limits.datasetItemTextMaxBytes),
  metadata: jsonObjectMaxBytes(limits.datasetItemMetadataMaxBytes).optional(),
  tags: z
    .array(chars(1, limits.datasetItemTagMaxChars))
    .max(limits.datasetItemTagsMax, `at most ${limits.datasetItemTagsMax} tags`)
    .refine((tags) => new Set(tags).size === tags.length, "must not repeat a tag"),
});

/**
 * The `input` oneof of each item (zod sees it as `{ case, value }`, and would name it `input.value`): reported
 * under the proto field names, `items[i].json_input` / `items[i].text_input`.
 */
export function checkItemInputs(
  items: readonly DatasetItem[],
  violations: Violations,
  field = (i: number) => `items[${i}]`,
): void {
  const max = limits.datasetItemTextMaxBytes;
  items.forEach((it, i) => {
    const { input } = it;
    if (input.case === undefined) {
      violations.add(`${field(i)}.input`, "is required: json_input or text_input");
    } else if (input.case === "jsonInput" && utf8Bytes(JSON.stringify(input.value)) > max) {
      violations.add(`${field(i)}.json_input`, `at most ${max} bytes as JSON`);
    } else if (input.case === "textInput") {
      if (input.value.includes("\0")) violations.add(`${field(i)}.text_input`, noNul);
      else if (utf8Bytes(input.value) > max) violations.add(`${field(i)}.text_input`, `at most ${max} bytes`);
    }
  });
}

/** Items of one request: at most `max`, no item id twice (server-assigned empty ids aside). */
export const datasetItemsRule = (max: number) =>
  z
    .array(item)
    .max(max, `at most ${max} items`)
    .superRefine((items, ctx) => {
      const seen = new Set<string>();
      items.forEach((it, i) => {
        if (it.itemId === "") return;
        if (seen.has(it.itemId)) {
          ctx.addIssue({ code: "custom", path: [i, "itemId"], message: "is given twice" });
        }
        seen.add(it.itemId);
      });
    });

export const datasetValidators: Validators = createValidators(
  defineValidator(CreateDatasetRequestSchema, {
    name: chars(1, limits.datasetNameMaxChars),
    description: chars(0, limits.datasetDescriptionMaxChars),
    requestId,
  }),
  defineValidator(GetDatasetRequestSchema, { id: uuid }),
  defineValidator(ListDatasetsRequestSchema, { pageSize: pageSizeRule(), pageToken: pageTokenRule }),
  defineValidator(
    CreateDatasetVersionRequestSchema,
    {
      datasetId: uuid,
      baseVersion: version,
      items: datasetItemsRule(limits.datasetItemsPerRequestMax),
      removedItemIds: z
        .array(datasetItemId)
        .max(limits.datasetItemsPerRequestMax, `at most ${limits.datasetItemsPerRequestMax} item ids`),
      requestId,
    },
    (req, violations) => {
      checkItemInputs(req.items, violations);
      if (req.baseVersion === 0 && req.removedItemIds.length > 0) {
        violations.add("removed_item_ids", "needs a base_version: a version from scratch removes nothing");
      }
      const given = new Set(req.items.map((i) => i.itemId));
      const removed = new Set<string>();
      req.removedItemIds.forEach((id, i) => {
        if (given.has(id)) violations.add(`removed_item_ids[${i}]`, "is also in items");
        else if (removed.has(id)) violations.add(`removed_item_ids[${i}]`, "is given twice");
        removed.add(id);
      });
    },
  ),
  // one chunk of a stream (each is validated as it arrives); the rules across chunks are the handler's
  defineValidator(
    UploadDatasetItemsRequestSchema,
    {
      datasetId: z.union([z.literal(""), uuid]),
      baseVersion: version,
      items: datasetItemsRule(limits.datasetItemsPerRequestMax),
      removedItemIds: z
        .array(datasetItemId)
        .max(limits.datasetItemsPerRequestMax, `at most ${limits.datasetItemsPerRequestMax} item ids`),
      requestId,
    },
    (req, violations) => checkItemInputs(req.items, violations),
  ),
  defineValidator(ListDatasetItemsRequestSchema, {
    datasetId: uuid,
    version,
    pageSize: pageSizeRule(),
    pageToken: pageTokenRule,
  }),
  defineValidator(DiffDatasetVersionsRequestSchema, {
    datasetId: uuid,
    fromVersion: z.int().min(1, "must be >= 1"),
    toVersion: z.int().min(1, "must be >= 1"),
    pageSize: pageSizeRule(),
    pageToken: pageTokenRule,
  }),
);
