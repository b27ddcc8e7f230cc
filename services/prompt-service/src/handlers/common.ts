import type { Database, Tx } from "@autoforge/db";
import { type CallContext, requestIdOwner as projectRequestIdOwner } from "@autoforge/server";
import { uuidv7 } from "uuidv7";
import { declarationFromProto, promptMessage } from "../convert.js";
import {
  findPrompt,
  findPromptView,
  findVersionView,
  type PromptKey,
  type Queryable,
  type ShownVersion,
  type TagsAndLabels,
  type VersionChoice,
} from "../db/repository.js";
import type { PromptRow, Schema } from "../db/schema.js";
import { InvalidArgumentError, labelNotFound, promptNotFound, versionNotFound } from "../domain/errors.js";
import { latestLabel } from "../domain/labels.js";
import type { VariableDeclaration } from "../domain/templates.js";
import type { EventNotifier } from "../event-notifier.js";

export type PromptTx = Tx<Schema>;
export type Ctx = CallContext<PromptTx>;

/** What the handlers need, passed in explicitly (no module state). */
export interface HandlerDeps {
  readonly db: Database<Schema>;
  readonly notifier: EventNotifier;
  /** WatchPromptEvents' fallback poll, for events committed by other processes. */
  readonly watchPollIntervalMs: number;
  /** PROMOTION_GATE_SUBJECTS: the service principals that may move gated labels (and only those). */
  readonly promotionGateSubjects: readonly string[];
  readonly now?: () => number;
}

/** A new UUIDv7 and the millisecond it encodes: `created_at` is that instant, so id order is creation order. */
export function newId(): { id: string; createdAt: number } {
  const id = uuidv7();
  return { id, createdAt: Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16) };
}

/** Another project's prompt and a missing one look the same: NOT_FOUND. */
export async function requirePrompt(tx: Queryable, projectId: string, id: string): Promise<PromptRow> {
  const row = await findPrompt(tx, projectId, id);
  if (row === undefined) throw promptNotFound(id);
  return row;
}

/** Whose request ids a create's `request_id` is checked against: the caller's, within the project. */
export function requestIdOwner(ctx: Ctx): string {
  return projectRequestIdOwner(ctx.principal.subject, ctx.project);
}

/** The prompt as the API shows it, at its current version (or `version` when given): one statement. */
export async function promptView(tx: Queryable, row: PromptRow, version = row.currentVersion) {
  const found = await findVersionView(tx, row.id, version);
  if (found === undefined) throw versionNotFound(row.id, version);
  return promptMessage(row, found.version, found.tags, found.labels);
}

/**
 * The message of a prompt read with its version, tags and labels in one statement (`findPromptView`,
 * `findPromptViewByLabel`); `version` is the one asked for, named when the prompt has no such version.
 */
export function shownPrompt(
  found: TagsAndLabels & { prompt: PromptRow; version: ShownVersion | null },
  version: number | string,
) {
  if (found.version === null) {
    throw versionNotFound(found.prompt.id, version);
  }
  return promptMessage(found.prompt, found.version, found.tags, found.labels);
}

/** What the audit digest covers for a prompt: its state, not its (large) content. */
export function auditSnapshot(row: PromptRow, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id: row.id,
    projectId: row.projectId,
    name: row.name,
    kind: row.kind,
    ownerId: row.ownerId,
    title: row.title,
    status: row.status,
    currentVersion: row.currentVersion,
    metadata: row.metadata,
    parentId: row.parentId,
    templateId: row.templateId,
    revision: row.revision,
    deletedAt: row.deletedAt,
    ...extra,
  };
}

/** The prompt a GetPrompt-shaped request names: `id`, or `name` in the call's project. */
export function promptKey(req: { id: string; name: string }): PromptKey {
  return req.id !== "" ? { id: req.id } : { name: req.name };
}

/**
 * Which version a GetPrompt-shaped request shows: `version`, or `label` (`latest` = current), or by default the
 * current version (by id) / the `production` label's, else current (by name).
 */
export function versionChoice(req: { id: string; version: number; label: string }): VersionChoice {
  if (req.version !== 0) return { by: "number", version: req.version };
  if (req.label === latestLabel) return { by: "current" };
  if (req.label !== "") return { by: "label", label: req.label };
  return req.id !== "" ? { by: "current" } : { by: "default" };
}

/** One statement: the prompt, the version asked for, tags and labels; NOT_FOUND names what is missing. */
export async function findShownPrompt(
  tx: Queryable,
  projectId: string,
  req: { id: string; name: string; version: number; label: string },
) {
  const key = promptKey(req);
  const choice = versionChoice(req);
  const found = await findPromptView(tx, projectId, key, choice);
  const what = "id" in key ? key.id : key.name;
  if (found === undefined) {
    throw promptNotFound(what, { resourceName: "id" in key ? key.id : `${projectId}/${key.name}` });
  }
  if (choice.by === "label" && found.labelVersion === null)
    throw labelNotFound(found.prompt.id, choice.label);
  const version =
    choice.by === "number"
      ? choice.version
      : choice.by === "current"
        ? found.prompt.currentVersion
        : (found.labelVersion ?? found.prompt.currentVersion);
  return { found, version };
}

/** The declarations of a request (`variables`), as the domain checks them. */
export function requestDeclarations(
  variables: Parameters<typeof declarationFromProto>[0][],
): VariableDeclaration[] {
  return variables.map((v, i) => {
    const d = declarationFromProto(v, i);
    if ("field" in d) throw new InvalidArgumentError(d.field, d.reason);
    return d;
  });
}
