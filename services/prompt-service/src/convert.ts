import {
  type ChatMessage,
  type ChatMessageSchema,
  ChatRole,
  type LabelMoveSchema,
  type PromptEventSchema,
  PromptEventType,
  PromptKind,
  type PromptSchema,
  PromptStatus,
  type PromptTemplateSchema,
  type PromptVersionSchema,
  type TemplateVariable,
  type TemplateVariableSchema,
  VariableType,
} from "@autoforge/contracts/prompt/v1";
import type {
  ChatMessage as ChatMessageValue,
  ChatRole as ChatRoleValue,
  JsonValue,
} from "@autoforge/render";
import { jsonToStruct, type ListView, structToJson } from "@autoforge/server";
import { fromJson, type MessageInitShape, type JsonValue as ProtoJson, toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs, type Value, ValueSchema } from "@bufbuild/protobuf/wkt";
import type {
  LabelMoveRow,
  PromptEventRow,
  PromptEventTypeValue,
  PromptRow,
  PromptStatusValue,
  PromptTemplateRow,
  PromptVersionRow,
} from "./db/schema.js";
import { InvalidArgumentError } from "./domain/errors.js";
import { computeEtag } from "./domain/etag.js";
import { labelsWithLatest } from "./domain/labels.js";
import type { VariableDeclaration, VariableKind } from "./domain/templates.js";

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

/** A prompt at its shown version. The BASIC view (lists) leaves out the version's text: `content` and `messages`. */
export function promptMessage(
  row: PromptRow,
  shown: Pick<PromptVersionRow, "version" | "content" | "messages" | "modelConfig" | "variables">,
  tags: readonly string[],
  labels: readonly { label: string; version: number }[],
  view: ListView = "full",
): MessageInitShape<typeof PromptSchema> {
  const full = view === "full";
  return {
    id: row.id,
    project: row.projectId,
    name: row.name,
    kind: kindFromDb[row.kind],
    ownerId: row.ownerId,
    title: row.title,
    content: full ? shown.content : "",
    messages: full ? messagesFromDb(shown.messages).map(chatMessageToProto) : [],
    variables: declarationsFromDb(shown).map(declarationToProto),
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

/** One version. The BASIC view (lists) leaves out its text and diff: `content`, `messages` and `diff`. */
export function versionMessage(
  row: PromptVersionRow,
  view: ListView = "full",
): MessageInitShape<typeof PromptVersionSchema> {
  const full = view === "full";
  return {
    promptId: row.promptId,
    version: row.version,
    content: full ? row.content : "",
    messages: full ? messagesFromDb(row.messages).map(chatMessageToProto) : [],
    variables: declarationsFromDb(row).map(declarationToProto),
    modelConfig: jsonToStruct(row.modelConfig),
    diff: full ? row.diff : "",
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
    project: row.projectId,
    name: row.name,
    ownerId: row.ownerId,
    version: row.version,
    label: row.label ?? "",
    occurTime: ts(row.occurredAt),
  };
}

export function labelMoveMessage(row: LabelMoveRow): MessageInitShape<typeof LabelMoveSchema> {
  return {
    sequence: BigInt(row.sequence),
    promptId: row.promptId,
    label: row.label,
    fromVersion: row.fromVersion ?? 0,
    toVersion: row.toVersion ?? 0,
    actor: row.actor,
    reason: row.reason,
    moveTime: ts(row.occurredAt),
  };
}

// ---- kinds and chat messages -----------------------------------------------------------------------------

const kindFromDb: Record<PromptRow["kind"], PromptKind> = { text: PromptKind.TEXT, chat: PromptKind.CHAT };

const roleFromProto: Partial<Record<ChatRole, ChatRoleValue>> = {
  [ChatRole.SYSTEM]: "system",
  [ChatRole.USER]: "user",
  [ChatRole.ASSISTANT]: "assistant",
  [ChatRole.TOOL]: "tool",
};
const roleToProto: Record<ChatRoleValue, ChatRole> = {
  system: ChatRole.SYSTEM,
  user: ChatRole.USER,
  assistant: ChatRole.ASSISTANT,
  tool: ChatRole.TOOL,
};

/** Request messages -> the stored shape; an unset role names its field. */
export function chatMessagesFromProto(
  messages: readonly ChatMessage[],
  field = "messages",
): ChatMessageValue[] | { field: string; reason: string } {
  const out: ChatMessageValue[] = [];
  for (const [i, m] of messages.entries()) {
    const role = roleFromProto[m.role];
    if (role === undefined)
      return { field: `${field}[${i}].role`, reason: "must be SYSTEM, USER, ASSISTANT or TOOL" };
    out.push(m.name === "" ? { role, content: m.content } : { role, content: m.content, name: m.name });
  }
  return out;
}

export function chatMessageToProto(m: ChatMessageValue): MessageInitShape<typeof ChatMessageSchema> {
  return { role: roleToProto[m.role], content: m.content, name: m.name ?? "" };
}

/** The `messages` column: NULL for text prompts. */
export function messagesFromDb(json: string | null): ChatMessageValue[] {
  return json === null ? [] : (JSON.parse(json) as ChatMessageValue[]);
}

/** A version's declarations as stored: NULL (declared none: its `{{var}}`s are inferred at use) -> []. */
export function declarationsFromDb(version: { variables: string | null }): VariableDeclaration[] {
  return version.variables === null ? [] : (JSON.parse(version.variables) as VariableDeclaration[]);
}

// ---- template variables ----------------------------------------------------------------------------------

const kindFromProto: Partial<Record<VariableType, VariableKind>> = {
  [VariableType.STRING]: "string",
  [VariableType.NUMBER]: "number",
  [VariableType.BOOLEAN]: "boolean",
  [VariableType.ENUM]: "enum",
  [VariableType.JSON]: "json",
};
const kindToProto: Record<VariableKind, VariableType> = {
  string: VariableType.STRING,
  number: VariableType.NUMBER,
  boolean: VariableType.BOOLEAN,
  enum: VariableType.ENUM,
  json: VariableType.JSON,
};

/** google.protobuf.Value -> its JSON value; undefined when the Value has no kind set. */
export function valueToInput(value: Value | undefined): JsonValue | undefined {
  if (value?.kind.case === undefined) return undefined;
  return toJson(ValueSchema, value) as JsonValue;
}

/** Variable values of a render request (`map<string, Value>`); a Value without a kind names its key. */
export function variableInputs(variables: Readonly<Record<string, Value>>): Record<string, JsonValue> {
  const input: Record<string, JsonValue> = {};
  for (const [name, value] of Object.entries(variables)) {
    const v = valueToInput(value);
    if (v === undefined) throw new InvalidArgumentError(`variables.${name}`, "has no value");
    input[name] = v;
  }
  return input;
}

function jsonToValue(v: JsonValue): MessageInitShape<typeof ValueSchema> {
  return fromJson(ValueSchema, v as ProtoJson);
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
    return { field: `variables[${index}].type`, reason: "must be STRING, NUMBER, BOOLEAN, ENUM or JSON" };
  const dv = valueToInput(v.defaultValue);
  if (type !== "json" && dv !== undefined && (dv === null || typeof dv === "object")) {
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
    ...(d.defaultValue === undefined ? {} : { defaultValue: jsonToValue(d.defaultValue) }),
    enumValues: [...d.enumValues],
    description: d.description,
  };
}

/** A template. The BASIC view (lists) leaves out its `body`. */
export function templateMessage(
  row: PromptTemplateRow,
  view: ListView = "full",
): MessageInitShape<typeof PromptTemplateSchema> {
  const variables = JSON.parse(row.variables) as VariableDeclaration[];
  return {
    id: row.id,
    project: row.projectId,
    ownerId: row.ownerId,
    name: row.name,
    description: row.description,
    body: view === "full" ? row.body : "",
    variables: variables.map(declarationToProto),
    createTime: ts(row.createdAt),
    updateTime: ts(row.updatedAt),
  };
}
