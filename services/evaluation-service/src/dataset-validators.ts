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
import type { JsonObject } from "@bufbuild/protobuf";
import { z } from "zod";
import { charLength, datasetItemIdPattern, limits, utf8Bytes, uuidPattern } from "./domain/limits.js";

/**
 * DatasetService's request rules, run by the server kit before any handler: bad input answers INVALID_ARGUMENT
 * naming every bad field (`items[3].tags[1]`) and writes nothing. Rules that need the database (the base
 * version holds a removed id, the version stays within 100,000 items) are checked in the handler's
 * transaction, before anything is written.
 */

const uuid = z.string().regex(uuidPattern, "must be a UUID");
const noNul = "must not contain NUL characters";
const chars = (min: number, max: number) =>
  z
    .string()
    .refine((s) => !s.includes("\0"), noNul)
    .refine(
      (s) => {
        const n = charLength(s);
        return n >= min && n <= max;
      },
      min === 0 ? `at most ${max} characters` : `must be ${min} to ${max} characters`,
    );
const maxBytes = (max: number) =>
  z
    .string()
    .refine((s) => !s.includes("\0"), noNul)
    .refine((s) => utf8Bytes(s) <= max, `at most ${max} bytes`);
const jsonMaxBytes = (max: number) =>
  z
    .custom<JsonObject>((v) => typeof v === "object" && v !== null, "must be an object")
    // the stored text sorts the keys: same members, so the same length as JSON.stringify's
    .refine((v) => utf8Bytes(JSON.stringify(v)) <= max, `at most ${max} bytes as JSON`);
const itemId = z
  .string()
  .max(limits.datasetItemIdMaxChars, `at most ${limits.datasetItemIdMaxChars} characters`)
  .regex(datasetItemIdPattern, "must be 1 or more of A-Z a-z 0-9 . _ : -");
const requestId = chars(0, limits.requestIdMaxChars);
const version = z.int().min(0, "must be >= 0");

const item = z.object({
  itemId: z.union([z.literal(""), itemId]),
  expectedOutput: maxBytes(limits.datasetItemTextMaxBytes),
  metadata: jsonMaxBytes(limits.datasetItemMetadataMaxBytes).optional(),
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
        .array(itemId)
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
        .array(itemId)
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
