import {
  CreatePromptRequestSchema,
  CreatePromptTemplateRequestSchema,
  DeletePromptRequestSchema,
  DiffPromptVersionsRequestSchema,
  GetPromptRequestSchema,
  GetPromptTemplateRequestSchema,
  ListPromptEventsRequestSchema,
  ListPromptLabelHistoryRequestSchema,
  ListPromptsRequestSchema,
  ListPromptTemplatesRequestSchema,
  ListPromptVersionsRequestSchema,
  PromptStatus,
  PurgePromptRequestSchema,
  RemovePromptLabelRequestSchema,
  RenderPromptRequestSchema,
  RenderPromptTemplateRequestSchema,
  RestorePromptRequestSchema,
  SetPromptLabelRequestSchema,
  UpdatePromptRequestSchema,
  WatchPromptEventsRequestSchema,
} from "@autoforge/contracts/prompt/v1";
import {
  createValidators,
  defineValidator,
  InvalidArgumentError,
  pageSizeRule,
  pageTokenRule,
  type Validators,
  type Violations,
} from "@autoforge/server";
import type { JsonObject } from "@bufbuild/protobuf";
import type { FieldMask } from "@bufbuild/protobuf/wkt";
import { z } from "zod";
import {
  charLength,
  labelPattern,
  limits,
  namePattern,
  namePrefixPattern,
  tagPattern,
  templateNamePattern,
  utf8Bytes,
  uuidPattern,
} from "./domain/limits.js";

/**
 * One declaration of constraints per request message, run by the server kit before any handler: bad input
 * answers INVALID_ARGUMENT naming the field and changes nothing. Rules that need the database (ownership,
 * existence, etags) live in the handlers.
 */

const uuid = z.string().regex(uuidPattern, "must be a UUID");
const optionalUuid = z.union([z.literal(""), uuid]);
// libSQL binds TEXT as a C string: everything after a NUL would be silently dropped, so NUL is refused.
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
const maxBytes = (max: number, required: boolean) =>
  z
    .string()
    .refine((s) => !required || s.length > 0, "is required")
    .refine((s) => !s.includes("\0"), noNul)
    .refine((s) => utf8Bytes(s) <= max, `at most ${max} bytes`);
const tag = z.string().regex(tagPattern, "each tag must be 1 to 50 characters of [A-Za-z0-9_.:-]");
const tags = z.array(tag).max(limits.tagsMax, `at most ${limits.tagsMax} tags`);
const struct = z
  .custom<JsonObject>((v) => typeof v === "object" && v !== null, "must be an object")
  .optional()
  .refine(
    // the stored text (structToJson) sorts the keys: same members, so the same length as JSON.stringify's
    (v) => v === undefined || utf8Bytes(JSON.stringify(v)) <= limits.structMaxBytes,
    `at most ${limits.structMaxBytes} bytes as JSON`,
  );
const requestId = z
  .string()
  .refine((s) => !s.includes("\0"), noNul)
  .refine((s) => charLength(s) <= limits.requestIdMaxChars, "at most 64 characters");
const label = z.string().regex(labelPattern, "must match [a-z0-9_-]{1,36}");
const sequence = z.bigint().min(0n, "must be >= 0").max(BigInt(Number.MAX_SAFE_INTEGER), "is too large");
const knownStatus = z.enum(PromptStatus, "is not a known PromptStatus");
const promptName = z.string().regex(namePattern, "must match ^[a-z0-9][a-z0-9._/-]{0,127}$");
const optionalName = z.union([z.literal(""), promptName]);
const declarations = z
  .array(z.any())
  .max(limits.templateVariablesMax, `at most ${limits.templateVariablesMax} variables`);
const messages = z.array(z.any()).max(limits.messagesMax, `at most ${limits.messagesMax} messages`);
const expectedVersion = z.int().min(0, "must be >= 0 (0: the label must be absent)").optional();
const reason = chars(0, limits.changeNoteMaxChars);
const renderVariables = (m: { variables: Record<string, unknown> }, v: Violations) => {
  if (Object.keys(m.variables).length > limits.templateVariablesMax) {
    v.add("variables", `at most ${limits.templateVariablesMax} variables`);
  }
};

/** GetPrompt-shaped requests: exactly one of id and name; at most one of version and label. */
const promptSelector = {
  rules: {
    id: optionalUuid,
    name: optionalName,
    version: z.int().min(0, "must be >= 0"),
    label: z.union([z.literal(""), label]),
  },
  check(m: { id: string; name: string; version: number; label: string }, v: Violations) {
    if ((m.id === "") === (m.name === "")) v.add("id", "set exactly one of id and name");
    if (m.version !== 0 && m.label !== "") v.add("label", "set version or label, not both");
  },
};

export const updatableFields = [
  "title",
  "content",
  "messages",
  "model_config",
  "variables",
  "status",
  "tags",
  "metadata",
  "name",
] as const;
export type UpdatableField = (typeof updatableFields)[number];

/**
 * Mask paths as sent (snake_case in binary; camelCase accepted too, as the JSON mapping produces). An unknown
 * path is reported to `violations`, or thrown as INVALID_ARGUMENT without it.
 */
export function maskFields(mask: FieldMask | undefined, violations?: Violations): Set<UpdatableField> {
  const out = new Set<UpdatableField>();
  for (const [i, path] of (mask?.paths ?? []).entries()) {
    const snake = path.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (!(updatableFields as readonly string[]).includes(snake)) {
      const description = `unknown path ${JSON.stringify(path)}; allowed: ${updatableFields.join(", ")}`;
      if (violations === undefined) throw new InvalidArgumentError(`update_mask.paths[${i}]`, description);
      violations.add(`update_mask.paths[${i}]`, description);
      continue;
    }
    out.add(snake as UpdatableField);
  }
  return out;
}

export const promptValidators: Validators = createValidators(
  defineValidator(
    CreatePromptRequestSchema,
    {
      name: optionalName,
      title: chars(1, limits.titleMaxChars),
      content: maxBytes(limits.contentMaxBytes, false),
      messages,
      variables: declarations,
      tags,
      metadata: struct,
      modelConfig: struct,
      parentId: optionalUuid,
      templateId: optionalUuid,
      requestId,
    },
    (m, v) => {
      if (m.messages.length > 0 && m.content !== "") {
        v.add("content", "set content (a text prompt) or messages (a chat prompt), not both");
      }
      if (m.messages.length === 0 && m.content === "") v.add("content", "is required");
    },
  ),
  defineValidator(GetPromptRequestSchema, promptSelector.rules, promptSelector.check),
  defineValidator(RenderPromptRequestSchema, promptSelector.rules, (m, v) => {
    promptSelector.check(m, v);
    renderVariables(m, v);
  }),
  defineValidator(ListPromptsRequestSchema, {
    pageSize: pageSizeRule(),
    pageToken: pageTokenRule,
    status: knownStatus,
    tag: z.union([z.literal(""), tag]),
    namePrefix: z.string().regex(namePrefixPattern, "must be at most 128 characters of [a-z0-9._/-]"),
    titleContains: chars(0, limits.titleMaxChars),
  }),
  defineValidator(
    UpdatePromptRequestSchema,
    {
      id: uuid,
      etag: z.string().min(1, "is required").max(64, "is not an etag this service returned"),
      title: chars(0, limits.titleMaxChars),
      content: maxBytes(limits.contentMaxBytes, false),
      messages,
      variables: declarations,
      name: optionalName,
      modelConfig: struct,
      status: knownStatus,
      tags,
      metadata: struct,
      changeNote: chars(0, limits.changeNoteMaxChars),
    },
    (m, v) => {
      const fields = maskFields(m.updateMask, v);
      if ((m.updateMask?.paths.length ?? 0) === 0)
        v.add("update_mask", "is required: name the fields to change");
      if (fields.has("title") && m.title === "") v.add("title", "must be 1 to 255 characters");
      if (fields.has("content") && m.content === "") v.add("content", "is required");
      if (fields.has("messages") && m.messages.length === 0) {
        v.add("messages", "a chat prompt needs at least one message");
      }
      if (fields.has("name") && m.name === "") v.add("name", "is required");
      if (fields.has("status") && m.status === PromptStatus.UNSPECIFIED) {
        v.add("status", "must be DRAFT, ACTIVE or ARCHIVED");
      }
    },
  ),
  defineValidator(DeletePromptRequestSchema, {
    id: uuid,
    etag: z.string().max(64, "is not an etag this service returned"),
  }),
  defineValidator(RestorePromptRequestSchema, { id: uuid }),
  defineValidator(PurgePromptRequestSchema, { id: uuid }),
  defineValidator(ListPromptVersionsRequestSchema, {
    promptId: uuid,
    pageSize: pageSizeRule(),
    pageToken: pageTokenRule,
  }),
  defineValidator(DiffPromptVersionsRequestSchema, {
    id: uuid,
    fromVersion: z.int().min(1, "must be >= 1"),
    toVersion: z.int().min(0, "must be >= 0"),
  }),
  defineValidator(SetPromptLabelRequestSchema, {
    id: uuid,
    label,
    version: z.int().min(1, "must be >= 1"),
    expectedVersion,
    reason,
  }),
  defineValidator(RemovePromptLabelRequestSchema, { id: uuid, label, expectedVersion, reason }),
  defineValidator(ListPromptLabelHistoryRequestSchema, {
    promptId: uuid,
    label: z.union([z.literal(""), label]),
    pageSize: pageSizeRule(),
    pageToken: pageTokenRule,
  }),
  defineValidator(CreatePromptTemplateRequestSchema, {
    name: z.string().regex(templateNamePattern, "must match [A-Za-z0-9_.-]{1,100}"),
    description: chars(0, limits.templateDescriptionMaxChars),
    body: maxBytes(limits.templateBodyMaxBytes, true),
    variables: z
      .array(z.any())
      .max(limits.templateVariablesMax, `at most ${limits.templateVariablesMax} variables`),
    requestId,
  }),
  defineValidator(GetPromptTemplateRequestSchema, { id: uuid }),
  defineValidator(ListPromptTemplatesRequestSchema, { pageSize: pageSizeRule(), pageToken: pageTokenRule }),
  defineValidator(
    RenderPromptTemplateRequestSchema,
    {
      id: optionalUuid,
      name: z.union([
        z.literal(""),
        z.string().regex(templateNamePattern, "must match [A-Za-z0-9_.-]{1,100}"),
      ]),
    },
    (m, v) => {
      if ((m.id === "") === (m.name === "")) v.add("id", "set exactly one of id and name");
      renderVariables(m, v);
    },
  ),
  defineValidator(ListPromptEventsRequestSchema, {
    afterSequence: sequence,
    pageSize: pageSizeRule(limits.eventPageSizeMax),
  }),
  defineValidator(WatchPromptEventsRequestSchema, { afterSequence: sequence }),
);
