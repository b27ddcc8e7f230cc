import {
  type CreatePromptRequest,
  CreatePromptResponseSchema,
  type DeletePromptRequest,
  type GetPromptRequest,
  type ListPromptsRequest,
  PromptSchema,
  type PromptService,
  type PurgePromptRequest,
  type RestorePromptRequest,
  type UpdatePromptRequest,
} from "@autoforge/contracts/prompt/v1";
import { inferDeclarations, type PromptBody } from "@autoforge/render";
import {
  cappedKeysetPage,
  decodePageToken,
  encodedItemSize,
  filterDigest,
  listView,
  requestDigest,
  resolvePageSize,
  type ServiceHandlers,
} from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { uuidv7 } from "uuidv7";
import { chatMessagesFromProto, promptMessage, statusToDb, structToJson } from "../convert.js";
import {
  findPrompt,
  findPromptByKey,
  findPromptView,
  findTemplate,
  insertEvent,
  insertPrompt,
  insertVersion,
  listPromptsQuery,
  purgePrompt,
  replaceTags,
  requestIds,
  updatePromptRow,
} from "../db/repository.js";
import type { PromptRow } from "../db/schema.js";
import {
  concurrentChange,
  InvalidArgumentError,
  nameTaken,
  promptDeleted,
  promptNotFound,
  staleEtag,
  templateNotFound,
} from "../domain/errors.js";
import { etagMatches } from "../domain/etag.js";
import { bodyOf, checkVersion, storedBody, versionChanged, versionDiff } from "../domain/prompt-body.js";
import type { VariableDeclaration } from "../domain/templates.js";
import { maskFields } from "../validators.js";
import {
  auditSnapshot,
  type Ctx,
  findShownPrompt,
  type HandlerDeps,
  newId,
  type PromptTx,
  promptView,
  requestDeclarations,
  requestIdOwner,
  requirePrompt,
  shownPrompt,
} from "./common.js";

type H = ServiceHandlers<typeof PromptService, PromptTx>;

const promptSize = encodedItemSize(PromptSchema);

/** Tags as stored and shown: duplicates merged, sorted. */
export function normalizeTags(tags: readonly string[]): string[] {
  return [...new Set(tags)].sort();
}

/** The declarations of a template that `body` uses, in the template's order. */
function fromTemplate(body: PromptBody, declarations: readonly VariableDeclaration[]): VariableDeclaration[] {
  const used = new Set(inferDeclarations(body).map((d) => d.name));
  return declarations.filter((d) => used.has(d.name));
}

/** The body of a create or update: text (`content`) or chat (`messages`). */
function requestBody(
  kind: "text" | "chat",
  content: string,
  messages: Parameters<typeof chatMessagesFromProto>[0],
): PromptBody {
  if (kind === "text") return { kind, text: content };
  const converted = chatMessagesFromProto(messages);
  if ("field" in converted) throw new InvalidArgumentError(converted.field, converted.reason);
  return { kind, messages: converted };
}

export function createPromptCrudHandlers(deps: HandlerDeps) {
  const now = deps.now ?? Date.now;

  const createPrompt: H["createPrompt"] = async (req: CreatePromptRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const actor = ctx.principal.subject;
    const tags = normalizeTags(req.tags);
    const kind = req.messages.length > 0 ? "chat" : "text";
    const body = requestBody(kind, req.content, req.messages);
    const explicit = req.variables.length > 0 ? requestDeclarations(req.variables) : null;
    const digest = requestDigest({
      name: req.name,
      title: req.title,
      content: req.content,
      messages: body.kind === "chat" ? body.messages : null,
      variables: explicit,
      tags: req.tags,
      metadata: req.metadata ?? null,
      modelConfig: req.modelConfig ?? null,
      parentId: req.parentId,
      templateId: req.templateId,
    });
    const requestId = {
      ownerId: requestIdOwner(ctx),
      method: "CreatePrompt",
      requestId: req.requestId,
      digest,
      responseSchema: CreatePromptResponseSchema,
    };
    const outcome = await ctx.unitOfWork(async (tx, { audit }) => {
      const earlier = await requestIds.replay(tx, requestId);
      if (earlier !== undefined) return { response: earlier, created: false };
      if (req.parentId !== "" && (await findPrompt(tx, project, req.parentId)) === undefined) {
        throw promptNotFound(req.parentId, { field: "parent_id" });
      }
      let declared = explicit;
      if (req.templateId !== "") {
        const template = await findTemplate(tx, project, req.templateId);
        if (template === undefined) throw templateNotFound(req.templateId, { field: "template_id" });
        // Declared nothing itself: the version declares the template's variables that its body uses (a body
        // made by rendering the template uses none of them, and must not require them at render).
        declared ??= fromTemplate(body, JSON.parse(template.variables) as VariableDeclaration[]);
      }
      checkVersion(body, declared);
      const { id, createdAt } = newId();
      const name = req.name === "" ? id : req.name;
      if ((await findPromptByKey(tx, project, { name })) !== undefined) {
        throw nameTaken("prompt", name, project);
      }
      const row: PromptRow = {
        id,
        projectId: project,
        name,
        kind,
        ownerId: actor,
        title: req.title,
        status: "draft",
        currentVersion: 1,
        parentId: req.parentId === "" ? null : req.parentId,
        templateId: req.templateId === "" ? null : req.templateId,
        metadata: structToJson(req.metadata),
        revision: 1,
        createdAt,
        updatedAt: createdAt,
        deletedAt: null,
      };
      const version = {
        promptId: id,
        version: 1,
        ...storedBody(body),
        variables: declared === null ? null : JSON.stringify(declared),
        modelConfig: structToJson(req.modelConfig),
        diff: "",
        changeNote: "",
        createdBy: actor,
        createdAt,
      };
      await insertPrompt(tx, row, version, tags);
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "created",
        promptId: id,
        projectId: project,
        name,
        ownerId: actor,
        version: 1,
        occurredAt: createdAt,
      });
      await audit({
        action: "prompt.create",
        resourceType: "prompt",
        resourceId: id,
        after: auditSnapshot(row, { tags }),
      });
      const response = create(CreatePromptResponseSchema, { prompt: promptMessage(row, version, tags, []) });
      await requestIds.remember(tx, requestId, response, createdAt);
      return { response, created: true };
    });
    if (outcome.created) deps.notifier.notify();
    return outcome.response;
  };

  /** One statement: the prompt (by id or name), the version to show, tags and labels. */
  const getPrompt: H["getPrompt"] = async (req: GetPromptRequest, ctx: Ctx) => {
    return ctx.unitOfWork(async (tx) => {
      const { found, version } = await findShownPrompt(tx, ctx.project.id, req);
      return { prompt: shownPrompt(found, version) };
    });
  };

  const listPrompts: H["listPrompts"] = async (req: ListPromptsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const pageSize = resolvePageSize(req.pageSize);
    const status = statusToDb[req.status];
    const tag = req.tag === "" ? undefined : req.tag;
    const namePrefix = req.namePrefix === "" ? undefined : req.namePrefix;
    const titleContains = req.titleContains === "" ? undefined : req.titleContains;
    const digest = filterDigest("ListPrompts", {
      project,
      status: status ?? null,
      tag: tag ?? null,
      includeDeleted: req.includeDeleted,
      namePrefix: namePrefix ?? null,
      titleContains: titleContains ?? null,
    });
    const key = decodePageToken(req.pageToken, digest, ["number", "string"]);
    const view = listView(req.view);
    return ctx.unitOfWork(async (tx) => {
      const rows = await listPromptsQuery(tx, {
        projectId: project,
        status,
        tag,
        namePrefix,
        titleContains,
        includeDeleted: req.includeDeleted,
        after: key === undefined ? undefined : { createdAt: key[0] as number, id: key[1] as string },
        limit: pageSize + 1,
      });
      const { page, nextPageToken } = cappedKeysetPage(rows, {
        pageSize,
        digest,
        keyOf: (r) => [r.prompt.createdAt, r.prompt.id],
        toItem: (r) => create(PromptSchema, promptMessage(r.prompt, r.version, r.tags, r.labels, view)),
        sizeOf: promptSize,
      });
      return { prompts: page, nextPageToken };
    });
  };

  const updatePrompt: H["updatePrompt"] = async (req: UpdatePromptRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const actor = ctx.principal.subject;
    const fields = maskFields(req.updateMask);
    const outcome = await ctx.unitOfWork(async (tx, { audit }) => {
      // the prompt, its current version, tags and labels in one statement
      const found = await findPromptView(tx, project, { id: req.id }, { by: "current" });
      if (found === undefined) throw promptNotFound(req.id);
      const { prompt: row, version: current, tags: oldTags, labels } = found;
      if (!etagMatches(row.id, row.revision, req.etag)) {
        throw staleEtag(row.id);
      }
      if (row.deletedAt !== null) {
        throw promptDeleted(row.id, "updating");
      }
      if (current === null) throw new Error(`prompt ${row.id} has no version ${row.currentVersion}`);
      if (fields.has("content") && row.kind === "chat") {
        throw new InvalidArgumentError("content", `prompt ${row.id} is a chat prompt: set messages`);
      }
      if (fields.has("messages") && row.kind === "text") {
        throw new InvalidArgumentError("messages", `prompt ${row.id} is a text prompt: set content`);
      }

      const currentBody = { content: current.content, messages: current.messages };
      const nextBody =
        fields.has("content") || fields.has("messages")
          ? storedBody(requestBody(row.kind, req.content, req.messages))
          : currentBody;
      const nextVariables = fields.has("variables")
        ? JSON.stringify(requestDeclarations(req.variables))
        : current.variables;
      const next = {
        name: fields.has("name") ? req.name : row.name,
        title: fields.has("title") ? req.title : row.title,
        status: fields.has("status") ? (statusToDb[req.status] ?? row.status) : row.status,
        metadata: fields.has("metadata") ? structToJson(req.metadata) : row.metadata,
        modelConfig: fields.has("model_config") ? structToJson(req.modelConfig) : current.modelConfig,
        tags: fields.has("tags") ? normalizeTags(req.tags) : oldTags,
      };
      const newVersion = versionChanged(
        { body: currentBody, modelConfig: current.modelConfig, variables: current.variables },
        { body: nextBody, modelConfig: next.modelConfig, variables: nextVariables },
      );
      const tagsChanged = next.tags.join("\n") !== oldTags.join("\n");
      const rowChanged =
        next.name !== row.name ||
        next.title !== row.title ||
        next.status !== row.status ||
        next.metadata !== row.metadata;
      if (!newVersion && !tagsChanged && !rowChanged) {
        return { prompt: promptMessage(row, current, oldTags, labels), changed: false };
      }
      if (newVersion) {
        checkVersion(
          bodyOf(nextBody),
          nextVariables === null ? null : (JSON.parse(nextVariables) as VariableDeclaration[]),
        );
      }
      if (next.name !== row.name && (await findPromptByKey(tx, project, { name: next.name })) !== undefined) {
        throw nameTaken("prompt", next.name, project);
      }
      const at = Math.max(now(), row.updatedAt);
      let currentVersion = row.currentVersion;
      if (newVersion) {
        currentVersion = row.currentVersion + 1;
        await insertVersion(tx, {
          promptId: row.id,
          version: currentVersion,
          ...nextBody,
          variables: nextVariables,
          modelConfig: next.modelConfig,
          diff: versionDiff(
            { version: row.currentVersion, body: currentBody, modelConfig: current.modelConfig },
            { version: currentVersion, body: nextBody, modelConfig: next.modelConfig },
          ),
          changeNote: req.changeNote,
          createdBy: actor,
          createdAt: at,
        });
      }
      if (tagsChanged) await replaceTags(tx, row.id, project, next.tags);
      const changes = {
        name: next.name,
        title: next.title,
        status: next.status,
        metadata: next.metadata,
        currentVersion,
        updatedAt: at,
      };
      if (!(await updatePromptRow(tx, row.id, row.revision, changes))) {
        throw concurrentChange(row.id);
      }
      const updated: PromptRow = { ...row, ...changes, revision: row.revision + 1 };
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "updated",
        promptId: row.id,
        projectId: project,
        name: updated.name,
        ownerId: row.ownerId,
        version: currentVersion,
        occurredAt: at,
      });
      await audit({
        action: "prompt.update",
        resourceType: "prompt",
        resourceId: row.id,
        before: auditSnapshot(row, { tags: oldTags }),
        after: auditSnapshot(updated, { tags: next.tags }),
      });
      // What a re-read would return: the version just shown or written, the tags just set (both sorted the
      // same way: tags are ASCII), the labels read above (an update moves none).
      const shown = {
        version: currentVersion,
        ...nextBody,
        modelConfig: next.modelConfig,
        variables: nextVariables,
      };
      return { prompt: promptMessage(updated, shown, next.tags, labels), changed: true };
    });
    if (outcome.changed) deps.notifier.notify();
    return { prompt: outcome.prompt };
  };

  const deletePrompt: H["deletePrompt"] = async (req: DeletePromptRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const outcome = await ctx.unitOfWork(async (tx, { audit }) => {
      const row = await requirePrompt(tx, project, req.id);
      if (req.etag !== "" && !etagMatches(row.id, row.revision, req.etag)) {
        throw staleEtag(row.id);
      }
      if (row.deletedAt !== null) return { prompt: await promptView(tx, row), changed: false };
      const at = Math.max(now(), row.updatedAt);
      if (!(await updatePromptRow(tx, row.id, row.revision, { deletedAt: at, updatedAt: at }))) {
        throw concurrentChange(row.id);
      }
      const updated: PromptRow = { ...row, deletedAt: at, updatedAt: at, revision: row.revision + 1 };
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "deleted",
        promptId: row.id,
        projectId: project,
        name: row.name,
        ownerId: row.ownerId,
        version: row.currentVersion,
        occurredAt: at,
      });
      await audit({
        action: "prompt.delete",
        resourceType: "prompt",
        resourceId: row.id,
        before: auditSnapshot(row),
        after: auditSnapshot(updated),
      });
      return { prompt: await promptView(tx, updated), changed: true };
    });
    if (outcome.changed) deps.notifier.notify();
    return { prompt: outcome.prompt };
  };

  const restorePrompt: H["restorePrompt"] = async (req: RestorePromptRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const outcome = await ctx.unitOfWork(async (tx, { audit }) => {
      const row = await requirePrompt(tx, project, req.id);
      if (row.deletedAt === null) return { prompt: await promptView(tx, row), changed: false };
      const at = Math.max(now(), row.updatedAt);
      if (!(await updatePromptRow(tx, row.id, row.revision, { deletedAt: null, updatedAt: at }))) {
        throw concurrentChange(row.id);
      }
      const updated: PromptRow = { ...row, deletedAt: null, updatedAt: at, revision: row.revision + 1 };
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "restored",
        promptId: row.id,
        projectId: project,
        name: row.name,
        ownerId: row.ownerId,
        version: row.currentVersion,
        occurredAt: at,
      });
      await audit({
        action: "prompt.restore",
        resourceType: "prompt",
        resourceId: row.id,
        before: auditSnapshot(row),
        after: auditSnapshot(updated),
      });
      return { prompt: await promptView(tx, updated), changed: true };
    });
    if (outcome.changed) deps.notifier.notify();
    return { prompt: outcome.prompt };
  };

  const purge: H["purgePrompt"] = async (req: PurgePromptRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    await ctx.unitOfWork(async (tx, { audit }) => {
      const row = await requirePrompt(tx, project, req.id);
      if (!(await purgePrompt(tx, project, row.id))) throw promptNotFound(req.id);
      const at = now();
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "purged",
        promptId: row.id,
        projectId: project,
        name: row.name,
        ownerId: row.ownerId,
        version: row.currentVersion,
        occurredAt: at,
      });
      await audit({
        action: "prompt.purge",
        resourceType: "prompt",
        resourceId: row.id,
        before: auditSnapshot(row),
      });
    });
    deps.notifier.notify();
    return { id: req.id };
  };

  return {
    createPrompt,
    getPrompt,
    listPrompts,
    updatePrompt,
    deletePrompt,
    restorePrompt,
    purgePrompt: purge,
  };
}
