import {
  type PromptEventSchema,
  PromptEventType,
  type PromptSchema,
  PromptStatus,
  type PromptTemplateSchema,
  type PromptVersionSchema,
  type TemplateVariable,
  type TemplateVariableSchema,
  VariableType,
} from "@autoforge/contracts/prompt/v1";
import { jsonToStruct, structToJson } from "@autoforge/server";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs, type Value, type ValueSchema } from "@bufbuild/protobuf/wkt";
import type {
  PromptEventRow,
  PromptEventTypeValue,
  PromptRow,
  PromptStatusValue,
  PromptTemplateRow,
  PromptVersionRow,
} from "./db/schema.js";
import { computeEtag } from "./domain/etag.js";
import { labelsWithLatest } from "./domain/labels.js";
import type { InputValue, ScalarValue, VariableDeclaration, VariableKind } from "./domain/templates.js";

/** Rows <-> protobuf-es messages. No I/O, no rules: those live in domain/ and handlers/. */

export const statusToDb: Partial<Record<PromptStatus, PromptStatusValue>> = {
  [PromptStatus.DRAFT]: "draft",
  [PromptStatus.ACTIVE]: "active",
  [PromptStatus.ARCHIVED]: "archived",
};
const statusFromDb: Record<PromptStatusValue, PromptStatus> = {
  draft: PromptStatus.DRAFT,
  active: PromptStatus.ACTIVE,
  archived: PromptStatus.ARCHIVED,
};

const eventTypeFromDb: Record<PromptEventTypeValue, PromptEventType> = {
  created: PromptEventType.CREATED,
  updated: PromptEventType.UPDATED,
  deleted: PromptEventType.DELETED,
  restored: PromptEventType.RESTORED,
  purged: PromptEventType.PURGED,
  label_set: PromptEventType.LABEL_SET,
  label_removed: PromptEventType.LABEL_REMOVED,
};

function ts(ms: number): Timestamp {
  return timestampFromMs(ms);
}

export { jsonToStruct, structToJson };

export function promptMessage(
  row: PromptRow,
  shown: Pick<PromptVersionRow, "version" | "content" | "modelConfig">,
  tags: readonly string[],
  labels: readonly { label: string; version: number }[],
): MessageInitShape<typeof PromptSchema> {
  return {
    id: row.id,
    ownerId: row.ownerId,
    title: row.title,
    content: shown.content,
    version: shown.version,
    currentVersion: row.currentVersion,
    status: statusFromDb[row.status],
    tags: [...tags],
    labels: labelsWithLatest(labels, row.currentVersion),
    metadata: jsonToStruct(row.metadata),
    modelConfig: jsonToStruct(shown.modelConfig),
    parentId: row.parentId ?? "",
    templateId: row.templateId ?? "",
    etag: computeEtag(row.id, row.revision),
    createTime: ts(row.createdAt),
    updateTime: ts(row.updatedAt),
    ...(row.deletedAt === null ? {} : { deleteTime: ts(row.deletedAt) }),
  };
}

export function versionMessage(row: PromptVersionRow): MessageInitShape<typeof PromptVersionSchema> {
  return {
    promptId: row.promptId,
    version: row.version,
    content: row.content,
    modelConfig: jsonToStruct(row.modelConfig),
    diff: row.diff,
    changeNote: row.changeNote,
    createdBy: row.createdBy,
    createTime: ts(row.createdAt),
  };
}

export function eventMessage(row: PromptEventRow): MessageInitShape<typeof PromptEventSchema> {
  return {
    sequence: BigInt(row.sequence),
    eventId: row.eventId,
    type: eventTypeFromDb[row.type],
    promptId: row.promptId,
    ownerId: row.ownerId,
    version: row.version,
    label: row.label ?? "",
    occurTime: ts(row.occurredAt),
  };
}

// ---- template variables ----------------------------------------------------------------------------------

const kindFromProto: Partial<Record<VariableType, VariableKind>> = {
  [VariableType.STRING]: "string",
  [VariableType.NUMBER]: "number",
  [VariableType.BOOLEAN]: "boolean",
  [VariableType.ENUM]: "enum",
};
const kindToProto: Record<VariableKind, VariableType> = {
  string: VariableType.STRING,
  number: VariableType.NUMBER,
  boolean: VariableType.BOOLEAN,
  enum: VariableType.ENUM,
};

/** google.protobuf.Value -> the domain's input value (lists and structs kept only as their kind). */
export function valueToInput(value: Value | undefined): InputValue | undefined {
  const kind = value?.kind;
  switch (kind?.case) {
    case "stringValue":
    case "numberValue":
    case "boolValue":
      return kind.value;
    case "nullValue":
      return null;
    case "listValue":
      return { kind: "list" };
    case "structValue":
      return { kind: "struct" };
    default:
      return undefined;
  }
}

function scalarToValue(v: ScalarValue): MessageInitShape<typeof ValueSchema> {
  if (typeof v === "string") return { kind: { case: "stringValue", value: v } };
  if (typeof v === "number") return { kind: { case: "numberValue", value: v } };
  return { kind: { case: "boolValue", value: v } };
}

/**
 * A declaration from the request. Returns the field at fault (`variables[i].type` / `.default_value`) as an
 * error string when the proto shape itself is unusable; domain validation does the rest.
 */
export function declarationFromProto(
  v: TemplateVariable,
  index: number,
): VariableDeclaration | { field: string; reason: string } {
  const type = kindFromProto[v.type];
  if (type === undefined)
    return { field: `variables[${index}].type`, reason: "must be STRING, NUMBER, BOOLEAN or ENUM" };
  const dv = valueToInput(v.defaultValue);
  if (dv !== undefined && (dv === null || typeof dv === "object")) {
    return { field: `variables[${index}].default_value`, reason: "must be a string, number or boolean" };
  }
  return {
    name: v.name,
    type,
    required: v.required,
    ...(dv === undefined ? {} : { defaultValue: dv }),
    enumValues: [...v.enumValues],
    description: v.description,
  };
}

export function declarationToProto(d: VariableDeclaration): MessageInitShape<typeof TemplateVariableSchema> {
  return {
    name: d.name,
    type: kindToProto[d.type],
    required: d.required,
    ...(d.defaultValue === undefined ? {} : { defaultValue: scalarToValue(d.defaultValue) }),
    enumValues: [...d.enumValues],
    description: d.description,
  };
}

export function templateMessage(row: PromptTemplateRow): MessageInitShape<typeof PromptTemplateSchema> {
  const variables = JSON.parse(row.variables) as VariableDeclaration[];
  return {
    id: row.id,
    ownerId: row.ownerId,
    name: row.name,
    description: row.description,
    body: row.body,
    variables: variables.map(declarationToProto),
    createTime: ts(row.createdAt),
    updateTime: ts(row.updatedAt),
  };
}
