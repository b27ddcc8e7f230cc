import {
  type CreatePromptRequest,
  CreatePromptResponseSchema,
  type DeletePromptRequest,
  type GetPromptRequest,
  type ListPromptsRequest,
  type PromptService,
  type PurgePromptRequest,
  type RestorePromptRequest,
  type UpdatePromptRequest,
} from "@autoforge/contracts/prompt/v1";
import {
  decodePageToken,
  filterDigest,
  keysetPage,
  requestDigest,
  resolvePageSize,
  type ServiceHandlers,
} from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { uuidv7 } from "uuidv7";
import { promptMessage, statusToDb, structToJson } from "../convert.js";
import {
  findPrompt,
  findPromptView,
  findPromptViewByLabel,
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
import { AbortedError, FailedPreconditionError, NotFoundError } from "../domain/errors.js";
import { etagMatches } from "../domain/etag.js";
import { latestLabel } from "../domain/labels.js";
import { needsNewVersion, unifiedDiff } from "../domain/versioning.js";
import { maskFields } from "../validators.js";
import {
  auditSnapshot,
  type Ctx,
  type HandlerDeps,
  newId,
  type PromptTx,
  promptView,
  requirePrompt,
  shownPrompt,
} from "./common.js";

type H = ServiceHandlers<typeof PromptService, PromptTx>;

/** Tags as stored and shown: duplicates merged, sorted. */
export function normalizeTags(tags: readonly string[]): string[] {
  return [...new Set(tags)].sort();
}

export function createPromptCrudHandlers(deps: HandlerDeps) {
  const now = deps.now ?? Date.now;

  const createPrompt: H["createPrompt"] = async (req: CreatePromptRequest, ctx: Ctx) => {
    const owner = ctx.principal.subject;
    const tags = normalizeTags(req.tags);
    const digest = requestDigest({
      title: req.title,
      content: req.content,
      tags: req.tags,
      metadata: req.metadata ?? null,
      modelConfig: req.modelConfig ?? null,
      parentId: req.parentId,
      templateId: req.templateId,
    });
    const requestId = {
      ownerId: owner,
      method: "CreatePrompt",
      requestId: req.requestId,
      digest,
      responseSchema: CreatePromptResponseSchema,
    };
    const outcome = await ctx.unitOfWork(async (tx, { audit }) => {
      const earlier = await requestIds.replay(tx, requestId);
      if (earlier !== undefined) return { response: earlier, created: false };
      if (req.parentId !== "" && (await findPrompt(tx, owner, req.parentId)) === undefined) {
        throw new NotFoundError(`parent_id: prompt ${req.parentId} not found`);
      }
      if (req.templateId !== "" && (await findTemplate(tx, owner, req.templateId)) === undefined) {
        throw new NotFoundError(`template_id: template ${req.templateId} not found`);
      }
      const { id, createdAt } = newId();
      const row: PromptRow = {
        id,
        ownerId: owner,
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
        content: req.content,
        modelConfig: structToJson(req.modelConfig),
        diff: "",
        changeNote: "",
        createdBy: owner,
        createdAt,
      };
      await insertPrompt(tx, row, version, tags);
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "created",
        promptId: id,
        ownerId: owner,
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

  /** One statement: the prompt, the version to show, tags and labels (NOT_FOUND names what is missing). */
  const getPrompt: H["getPrompt"] = async (req: GetPromptRequest, ctx: Ctx) => {
    const owner = ctx.principal.subject;
    return ctx.unitOfWork(async (tx) => {
      if (req.label !== "" && req.label !== latestLabel) {
        const found = await findPromptViewByLabel(tx, owner, req.id, req.label);
        if (found === undefined) throw new NotFoundError(`prompt ${req.id} not found`);
        if (found.labelVersion === null) {
          throw new NotFoundError(`label ${req.label} of prompt ${found.prompt.id} not found`);
        }
        return { prompt: shownPrompt(found, found.labelVersion) };
      }
      const version = req.version === 0 ? undefined : req.version;
      const found = await findPromptView(tx, owner, req.id, version);
      if (found === undefined) throw new NotFoundError(`prompt ${req.id} not found`);
      return { prompt: shownPrompt(found, version ?? found.prompt.currentVersion) };
    });
  };

  const listPrompts: H["listPrompts"] = async (req: ListPromptsRequest, ctx: Ctx) => {
    const owner = ctx.principal.subject;
    const pageSize = resolvePageSize(req.pageSize);
    const status = statusToDb[req.status];
    const tag = req.tag === "" ? undefined : req.tag;
    const digest = filterDigest("ListPrompts", {
      owner,
      status: status ?? null,
      tag: tag ?? null,
      includeDeleted: req.includeDeleted,
    });
    const key = decodePageToken(req.pageToken, digest, ["number", "string"]);
    return ctx.unitOfWork(async (tx) => {
      const rows = await listPromptsQuery(tx, {
        ownerId: owner,
        status,
        tag,
        includeDeleted: req.includeDeleted,
        after: key === undefined ? undefined : { createdAt: key[0] as number, id: key[1] as string },
        limit: pageSize + 1,
      });
      const { page, nextPageToken } = keysetPage(rows, pageSize, digest, (last) => [
        last.prompt.createdAt,
        last.prompt.id,
      ]);
      return {
        prompts: page.map((r) => promptMessage(r.prompt, r.version, r.tags, r.labels)),
        nextPageToken,
      };
    });
  };

  const updatePrompt: H["updatePrompt"] = async (req: UpdatePromptRequest, ctx: Ctx) => {
    const owner = ctx.principal.subject;
    const fields = maskFields(req.updateMask);
    const outcome = await ctx.unitOfWork(async (tx, { audit }) => {
      // the prompt, its current version, tags and labels in one statement
      const found = await findPromptView(tx, owner, req.id, undefined);
      if (found === undefined) throw new NotFoundError(`prompt ${req.id} not found`);
      const { prompt: row, version: current, tags: oldTags, labels } = found;
      if (!etagMatches(row.id, row.revision, req.etag)) {
        throw new AbortedError(`etag of prompt ${row.id} is stale: read it again and retry`);
      }
      if (row.deletedAt !== null) {
        throw new FailedPreconditionError(`prompt ${row.id} is deleted: restore it before updating`);
      }
      if (current === null) throw new Error(`prompt ${row.id} has no version ${row.currentVersion}`);

      const next = {
        title: fields.has("title") ? req.title : row.title,
        status: fields.has("status") ? (statusToDb[req.status] ?? row.status) : row.status,
        metadata: fields.has("metadata") ? structToJson(req.metadata) : row.metadata,
        content: fields.has("content") ? req.content : current.content,
        modelConfig: fields.has("model_config") ? structToJson(req.modelConfig) : current.modelConfig,
        tags: fields.has("tags") ? normalizeTags(req.tags) : oldTags,
      };
      const newVersion = needsNewVersion(
        { content: current.content, modelConfigJson: current.modelConfig },
        { content: next.content, modelConfigJson: next.modelConfig },
      );
      const tagsChanged = next.tags.join("\n") !== oldTags.join("\n");
      const rowChanged =
        next.title !== row.title || next.status !== row.status || next.metadata !== row.metadata;
      if (!newVersion && !tagsChanged && !rowChanged) {
        return { prompt: promptMessage(row, current, oldTags, labels), changed: false };
      }
      const at = Math.max(now(), row.updatedAt);
      let currentVersion = row.currentVersion;
      if (newVersion) {
        currentVersion = row.currentVersion + 1;
        await insertVersion(tx, {
          promptId: row.id,
          version: currentVersion,
          content: next.content,
          modelConfig: next.modelConfig,
          diff: unifiedDiff(row.currentVersion, currentVersion, current.content, next.content),
          changeNote: req.changeNote,
          createdBy: owner,
          createdAt: at,
        });
      }
      if (tagsChanged) await replaceTags(tx, row.id, owner, next.tags);
      const changes = {
        title: next.title,
        status: next.status,
        metadata: next.metadata,
        currentVersion,
        updatedAt: at,
      };
      if (!(await updatePromptRow(tx, row.id, row.revision, changes))) {
        throw new AbortedError(`prompt ${row.id} changed concurrently: read it again and retry`);
      }
      const updated: PromptRow = { ...row, ...changes, revision: row.revision + 1 };
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "updated",
        promptId: row.id,
        ownerId: owner,
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
      const shown = { version: currentVersion, content: next.content, modelConfig: next.modelConfig };
      return { prompt: promptMessage(updated, shown, next.tags, labels), changed: true };
    });
    if (outcome.changed) deps.notifier.notify();
    return { prompt: outcome.prompt };
  };

  const deletePrompt: H["deletePrompt"] = async (req: DeletePromptRequest, ctx: Ctx) => {
    const owner = ctx.principal.subject;
    const outcome = await ctx.unitOfWork(async (tx, { audit }) => {
      const row = await requirePrompt(tx, owner, req.id);
      if (req.etag !== "" && !etagMatches(row.id, row.revision, req.etag)) {
        throw new AbortedError(`etag of prompt ${row.id} is stale: read it again and retry`);
      }
      if (row.deletedAt !== null) return { prompt: await promptView(tx, row), changed: false };
      const at = Math.max(now(), row.updatedAt);
      if (!(await updatePromptRow(tx, row.id, row.revision, { deletedAt: at, updatedAt: at }))) {
        throw new AbortedError(`prompt ${row.id} changed concurrently: read it again and retry`);
      }
      const updated: PromptRow = { ...row, deletedAt: at, updatedAt: at, revision: row.revision + 1 };
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "deleted",
        promptId: row.id,
        ownerId: owner,
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
    const owner = ctx.principal.subject;
    const outcome = await ctx.unitOfWork(async (tx, { audit }) => {
      const row = await requirePrompt(tx, owner, req.id);
      if (row.deletedAt === null) return { prompt: await promptView(tx, row), changed: false };
      const at = Math.max(now(), row.updatedAt);
      if (!(await updatePromptRow(tx, row.id, row.revision, { deletedAt: null, updatedAt: at }))) {
        throw new AbortedError(`prompt ${row.id} changed concurrently: read it again and retry`);
      }
      const updated: PromptRow = { ...row, deletedAt: null, updatedAt: at, revision: row.revision + 1 };
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "restored",
        promptId: row.id,
        ownerId: owner,
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
    const owner = ctx.principal.subject;
    await ctx.unitOfWork(async (tx, { audit }) => {
      const row = await requirePrompt(tx, owner, req.id);
      if (!(await purgePrompt(tx, owner, row.id))) throw new NotFoundError(`prompt ${req.id} not found`);
      const at = now();
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "purged",
        promptId: row.id,
        ownerId: owner,
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
