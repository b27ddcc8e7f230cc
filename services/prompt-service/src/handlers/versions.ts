import {
  type DiffPromptVersionsRequest,
  LabelMoveSchema,
  type ListPromptLabelHistoryRequest,
  type ListPromptVersionsRequest,
  type PromptService,
  PromptVersionSchema,
  type RemovePromptLabelRequest,
  type SetPromptLabelRequest,
} from "@autoforge/contracts/prompt/v1";
import {
  cappedKeysetPage,
  decodePageToken,
  encodedItemSize,
  filterDigest,
  listView,
  resolvePageSize,
  type ServiceHandlers,
} from "@autoforge/server";
import { create } from "@bufbuild/protobuf";
import { uuidv7 } from "uuidv7";
import { labelMoveMessage, versionMessage } from "../convert.js";
import {
  deleteLabel,
  findLabel,
  findVersion,
  insertEvent,
  insertLabelMove,
  listLabelMovesQuery,
  listVersionsQuery,
  updatePromptRow,
  upsertLabel,
} from "../db/repository.js";
import type { PromptRow } from "../db/schema.js";
import { concurrentChange, promptDeleted, versionNotFound } from "../domain/errors.js";
import { assertLabelAt, assertLabelChangeAllowed, isPromotionGate } from "../domain/labels.js";
import { versionDiff } from "../domain/prompt-body.js";
import {
  auditSnapshot,
  type Ctx,
  type HandlerDeps,
  type PromptTx,
  promptView,
  requirePrompt,
} from "./common.js";
import { labelSettingsOf } from "./projects.js";

type H = ServiceHandlers<typeof PromptService, PromptTx>;

const versionSize = encodedItemSize(PromptVersionSchema);
const labelMoveSize = encodedItemSize(LabelMoveSchema);

/** Versions (read-only history) and labels (movable pointers to versions). */
export function createVersionHandlers(deps: HandlerDeps) {
  const now = deps.now ?? Date.now;

  const listPromptVersions: H["listPromptVersions"] = async (req: ListPromptVersionsRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const pageSize = resolvePageSize(req.pageSize);
    const digest = filterDigest("ListPromptVersions", { project, promptId: req.promptId });
    const key = decodePageToken(req.pageToken, digest, ["number"]);
    const view = listView(req.view);
    return ctx.unitOfWork(async (tx) => {
      await requirePrompt(tx, project, req.promptId);
      const before = key?.[0] as number | undefined;
      const rows = await listVersionsQuery(tx, req.promptId, before, pageSize + 1, view);
      const { page, nextPageToken } = cappedKeysetPage(rows, {
        pageSize,
        digest,
        keyOf: (r) => [r.version],
        toItem: (r) => create(PromptVersionSchema, versionMessage(r, view)),
        sizeOf: versionSize,
      });
      return { versions: page, nextPageToken };
    });
  };

  const diffPromptVersions: H["diffPromptVersions"] = async (req: DiffPromptVersionsRequest, ctx: Ctx) => {
    return ctx.unitOfWork(async (tx) => {
      const row = await requirePrompt(tx, ctx.project.id, req.id);
      const toVersion = req.toVersion === 0 ? row.currentVersion : req.toVersion;
      const from = await findVersion(tx, row.id, req.fromVersion);
      if (from === undefined) throw versionNotFound(row.id, req.fromVersion, "from_version");
      const to = await findVersion(tx, row.id, toVersion);
      if (to === undefined) throw versionNotFound(row.id, toVersion, "to_version");
      // The stored diff of a version is exactly this, for consecutive versions.
      const diff =
        to.version === from.version + 1
          ? to.diff
          : versionDiff(
              { version: from.version, body: from, modelConfig: from.modelConfig },
              { version: to.version, body: to, modelConfig: to.modelConfig },
            );
      return { diff, fromVersion: from.version, toVersion: to.version };
    });
  };

  const setPromptLabel: H["setPromptLabel"] = async (req: SetPromptLabelRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const actor = ctx.principal.subject;
    const byGate = isPromotionGate(ctx.project, actor, deps.promotionGateSubjects);
    const outcome = await ctx.unitOfWork(async (tx, { audit }) => {
      const check = async () => {
        const { protectedLabels, gatedLabels } = await labelSettingsOf(tx, project);
        assertLabelChangeAllowed(req.label, ctx.project, protectedLabels, { gatedLabels, byGate }, "set");
      };
      // A service principal is refused before anything of the prompt is looked at (it reaches this handler
      // only for the promotion gate's gated labels); everyone else as before: NOT_FOUND first.
      if (ctx.project.role === "service") await check();
      const row = await requirePrompt(tx, project, req.id);
      if (ctx.project.role !== "service") await check();
      if (row.deletedAt !== null) {
        throw promptDeleted(row.id, "moving labels");
      }
      if ((await findVersion(tx, row.id, req.version)) === undefined) {
        throw versionNotFound(row.id, req.version, "version");
      }
      const existing = await findLabel(tx, row.id, req.label);
      assertLabelAt(req.label, existing?.version, req.expectedVersion);
      if (existing?.version === req.version) return { prompt: await promptView(tx, row), changed: false };
      const at = Math.max(now(), row.updatedAt);
      await upsertLabel(tx, {
        promptId: row.id,
        label: req.label,
        version: req.version,
        updatedBy: actor,
        updatedAt: at,
      });
      await insertLabelMove(tx, {
        promptId: row.id,
        label: req.label,
        fromVersion: existing?.version ?? null,
        toVersion: req.version,
        actor,
        reason: req.reason,
        occurredAt: at,
      });
      const updated = await bumpRevision(tx, row, at);
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "label_set",
        promptId: row.id,
        projectId: project,
        name: row.name,
        ownerId: row.ownerId,
        version: req.version,
        label: req.label,
        occurredAt: at,
      });
      await audit({
        action: "prompt.label.set",
        resourceType: "prompt",
        resourceId: row.id,
        before: auditSnapshot(row, { label: req.label, version: existing?.version ?? null }),
        after: auditSnapshot(updated, { label: req.label, version: req.version }),
      });
      return { prompt: await promptView(tx, updated), changed: true };
    });
    if (outcome.changed) deps.notifier.notify();
    return { prompt: outcome.prompt };
  };

  const removePromptLabel: H["removePromptLabel"] = async (req: RemovePromptLabelRequest, ctx: Ctx) => {
    const project = ctx.project.id;
    const actor = ctx.principal.subject;
    const outcome = await ctx.unitOfWork(async (tx, { audit }) => {
      const row = await requirePrompt(tx, project, req.id);
      const { protectedLabels, gatedLabels } = await labelSettingsOf(tx, project);
      // nobody removes a gated label, the promotion gate included (RemovePromptLabel is not open to services)
      assertLabelChangeAllowed(
        req.label,
        ctx.project,
        protectedLabels,
        { gatedLabels, byGate: false },
        "remove",
      );
      const existing = await findLabel(tx, row.id, req.label);
      assertLabelAt(req.label, existing?.version, req.expectedVersion);
      if (existing === undefined) return { prompt: await promptView(tx, row), changed: false };
      if (row.deletedAt !== null) {
        throw promptDeleted(row.id, "moving labels");
      }
      const at = Math.max(now(), row.updatedAt);
      await deleteLabel(tx, row.id, req.label);
      await insertLabelMove(tx, {
        promptId: row.id,
        label: req.label,
        fromVersion: existing.version,
        toVersion: null,
        actor,
        reason: req.reason,
        occurredAt: at,
      });
      const updated = await bumpRevision(tx, row, at);
      await insertEvent(tx, {
        eventId: uuidv7(),
        type: "label_removed",
        promptId: row.id,
        projectId: project,
        name: row.name,
        ownerId: row.ownerId,
        version: existing.version,
        label: req.label,
        occurredAt: at,
      });
      await audit({
        action: "prompt.label.remove",
        resourceType: "prompt",
        resourceId: row.id,
        before: auditSnapshot(row, { label: req.label, version: existing.version }),
        after: auditSnapshot(updated, { label: req.label, version: null }),
      });
      return { prompt: await promptView(tx, updated), changed: true };
    });
    if (outcome.changed) deps.notifier.notify();
    return { prompt: outcome.prompt };
  };

  const listPromptLabelHistory: H["listPromptLabelHistory"] = async (
    req: ListPromptLabelHistoryRequest,
    ctx: Ctx,
  ) => {
    const project = ctx.project.id;
    const pageSize = resolvePageSize(req.pageSize);
    const label = req.label === "" ? undefined : req.label;
    const digest = filterDigest("ListPromptLabelHistory", {
      project,
      promptId: req.promptId,
      label: label ?? null,
    });
    const key = decodePageToken(req.pageToken, digest, ["number"]);
    return ctx.unitOfWork(async (tx) => {
      await requirePrompt(tx, project, req.promptId);
      const rows = await listLabelMovesQuery(
        tx,
        req.promptId,
        label,
        key?.[0] as number | undefined,
        pageSize + 1,
      );
      const { page, nextPageToken } = cappedKeysetPage(rows, {
        pageSize,
        digest,
        keyOf: (r) => [r.sequence],
        toItem: (r) => create(LabelMoveSchema, labelMoveMessage(r)),
        sizeOf: labelMoveSize,
      });
      return { moves: page, nextPageToken };
    });
  };

  return {
    listPromptVersions,
    diffPromptVersions,
    setPromptLabel,
    removePromptLabel,
    listPromptLabelHistory,
  };
}

/** Labels are part of the prompt: moving one changes its etag. */
async function bumpRevision(tx: PromptTx, row: PromptRow, at: number): Promise<PromptRow> {
  if (!(await updatePromptRow(tx, row.id, row.revision, { updatedAt: at }))) {
    throw concurrentChange(row.id);
  }
  return { ...row, updatedAt: at, revision: row.revision + 1 };
}
