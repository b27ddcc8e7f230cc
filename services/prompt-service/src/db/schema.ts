import { auditLog, idempotencyKeys } from "@autoforge/db";
import { sql } from "drizzle-orm";
import {
  type AnySQLiteColumn,
  check,
  foreignKey,
  index,
  integer,
  primaryKey,
  sqliteTable,
  text,
  uniqueIndex,
} from "drizzle-orm/sqlite-core";

/**
 * prompt-service's database. Every rule is enforced by SQLite itself (CHECK / UNIQUE / FK / triggers), not only
 * by the handlers; SCHEMA.md explains each constraint and index and the query it serves.
 * Timestamps are INTEGER epoch milliseconds; JSON columns are TEXT with CHECK json_valid.
 * IDs are UUIDv7 and `created_at` is the timestamp encoded in the id, so id order is creation order.
 */

// Re-exported so drizzle-kit generates it into this service's migrations.
export { auditLog, idempotencyKeys };

export const promptStatuses = ["draft", "active", "archived"] as const;
export type PromptStatusValue = (typeof promptStatuses)[number];

export const promptEventTypes = [
  "created",
  "updated",
  "deleted",
  "restored",
  "purged",
  "label_set",
  "label_removed",
] as const;
export type PromptEventTypeValue = (typeof promptEventTypes)[number];

export const promptTemplates = sqliteTable(
  "prompt_templates",
  {
    id: text("id").primaryKey(),
    ownerId: text("owner_id").notNull(),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    body: text("body").notNull(),
    /** Declared variables: JSON array of {name, type, required, defaultValue?, enumValues, description}. */
    variables: text("variables").notNull().default("[]"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    // Unique per owner, not globally: a global name would let one tenant squat or probe another's names.
    // Also serves RenderPromptTemplate by name.
    uniqueIndex("prompt_templates_owner_name_uq").on(t.ownerId, t.name),
    // ListPromptTemplates: owner's templates newest first, keyset on (created_at, id).
    index("prompt_templates_owner_created_idx").on(t.ownerId, t.createdAt, t.id),
    check("prompt_templates_name_len", sql`length(${t.name}) BETWEEN 1 AND 100`),
    check("prompt_templates_description_len", sql`length(${t.description}) <= 1000`),
    check(
      "prompt_templates_variables_json",
      sql`json_valid(${t.variables}) AND json_type(${t.variables}) = 'array'`,
    ),
  ],
);

export const prompts = sqliteTable(
  "prompts",
  {
    id: text("id").primaryKey(),
    ownerId: text("owner_id").notNull(),
    title: text("title").notNull(),
    status: text("status", { enum: promptStatuses }).notNull().default("draft"),
    currentVersion: integer("current_version").notNull().default(1),
    parentId: text("parent_id").references((): AnySQLiteColumn => prompts.id, { onDelete: "set null" }),
    templateId: text("template_id").references(() => promptTemplates.id, { onDelete: "set null" }),
    metadata: text("metadata").notNull().default("{}"),
    /** Bumped by every committed change; the etag is derived from it. */
    revision: integer("revision").notNull().default(1),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    deletedAt: integer("deleted_at"),
  },
  (t) => [
    // ListPrompts, live prompts, no status filter (the hot path: a partial index holds live rows only).
    index("prompts_owner_live_idx").on(t.ownerId, t.createdAt, t.id).where(sql`deleted_at IS NULL`),
    // ListPrompts status filter on live prompts, and the review's "active prompts of a user, newest first":
    // the review's (user_id, status, created_at) composite + its partial deleted_at IS NULL index, merged.
    index("prompts_owner_status_live_idx")
      .on(t.ownerId, t.status, t.createdAt, t.id)
      .where(sql`deleted_at IS NULL`),
    // ListPrompts include_deleted, without and with a status filter.
    index("prompts_owner_created_idx").on(t.ownerId, t.createdAt, t.id),
    index("prompts_owner_status_created_idx").on(t.ownerId, t.status, t.createdAt, t.id),
    // The self-reference's child key: ON DELETE SET NULL of a purged parent looks children up by parent_id.
    index("prompts_parent_idx").on(t.parentId).where(sql`parent_id IS NOT NULL`),
    // No index on template_id: no RPC deletes a template, so its ON DELETE SET NULL never runs (SCHEMA.md).
    check("prompts_title_len", sql`length(${t.title}) BETWEEN 1 AND 255`),
    check("prompts_status_enum", sql`${t.status} IN ('draft', 'active', 'archived')`),
    check("prompts_current_version_min", sql`${t.currentVersion} >= 1`),
    check("prompts_revision_min", sql`${t.revision} >= 1`),
    check("prompts_metadata_json", sql`json_valid(${t.metadata}) AND json_type(${t.metadata}) = 'object'`),
    check("prompts_not_own_parent", sql`${t.parentId} IS NULL OR ${t.parentId} <> ${t.id}`),
    check("prompts_deleted_after_created", sql`${t.deletedAt} IS NULL OR ${t.deletedAt} >= ${t.createdAt}`),
  ],
);

export const promptVersions = sqliteTable(
  "prompt_versions",
  {
    promptId: text("prompt_id")
      .notNull()
      .references(() => prompts.id, { onDelete: "cascade" }),
    version: integer("version").notNull(),
    content: text("content").notNull(),
    modelConfig: text("model_config").notNull().default("{}"),
    /** Unified diff of content from version - 1; empty for version 1. */
    diff: text("diff").notNull().default(""),
    changeNote: text("change_note").notNull().default(""),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    // (prompt_id, version) unique; also the order of ListPromptVersions (version DESC) and the parent key of
    // prompt_labels' composite foreign key.
    primaryKey({ name: "prompt_versions_pk", columns: [t.promptId, t.version] }),
    check("prompt_versions_version_min", sql`${t.version} >= 1`),
    check(
      "prompt_versions_model_config_json",
      sql`json_valid(${t.modelConfig}) AND json_type(${t.modelConfig}) = 'object'`,
    ),
    check("prompt_versions_change_note_len", sql`length(${t.changeNote}) <= 1000`),
    check("prompt_versions_first_has_no_diff", sql`${t.version} > 1 OR ${t.diff} = ''`),
  ],
);

export const promptLabels = sqliteTable(
  "prompt_labels",
  {
    promptId: text("prompt_id")
      .notNull()
      .references(() => prompts.id, { onDelete: "cascade" }),
    label: text("label").notNull(),
    version: integer("version").notNull(),
    updatedBy: text("updated_by").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    primaryKey({ name: "prompt_labels_pk", columns: [t.promptId, t.label] }),
    // A label points to a version that exists.
    foreignKey({
      name: "prompt_labels_version_fk",
      columns: [t.promptId, t.version],
      foreignColumns: [promptVersions.promptId, promptVersions.version],
    }).onDelete("cascade"),
    check(
      "prompt_labels_label_format",
      sql`length(${t.label}) BETWEEN 1 AND 36 AND ${t.label} NOT GLOB '*[^a-z0-9_-]*' AND ${t.label} <> 'latest'`,
    ),
  ],
);

export const promptTags = sqliteTable(
  "prompt_tags",
  {
    promptId: text("prompt_id")
      .notNull()
      .references(() => prompts.id, { onDelete: "cascade" }),
    tag: text("tag").notNull(),
    /** The prompt's owner, copied (owners never change) so a tag search never leaves the caller's rows. */
    ownerId: text("owner_id").notNull(),
  },
  (t) => [
    // (prompt_id, tag) unique; also loads a prompt's tags sorted.
    primaryKey({ name: "prompt_tags_pk", columns: [t.promptId, t.tag] }),
    // ListPrompts tag filter: the owner's prompts with a tag, newest first (prompt_id is UUIDv7).
    index("prompt_tags_owner_tag_idx").on(t.ownerId, t.tag, t.promptId),
    check("prompt_tags_tag_len", sql`length(${t.tag}) BETWEEN 1 AND 50`),
    check("prompt_tags_tag_chars", sql`${t.tag} NOT GLOB '*[^A-Za-z0-9_.:-]*'`),
  ],
);

/** Transactional outbox: one row per committed change, written in the change's transaction. */
export const promptEvents = sqliteTable(
  "prompt_events",
  {
    // AUTOINCREMENT: never reuses a sequence; with one writer at a time, committed sequences are gap-free.
    sequence: integer("sequence").primaryKey({ autoIncrement: true }),
    eventId: text("event_id").notNull().unique("prompt_events_event_id_uq"),
    type: text("type", { enum: promptEventTypes }).notNull(),
    // No FK: the PURGED event outlives its prompt.
    promptId: text("prompt_id").notNull(),
    ownerId: text("owner_id").notNull(),
    version: integer("version").notNull(),
    label: text("label"),
    occurredAt: integer("occurred_at").notNull(),
  },
  (t) => [
    check(
      "prompt_events_type_enum",
      sql`${t.type} IN ('created', 'updated', 'deleted', 'restored', 'purged', 'label_set', 'label_removed')`,
    ),
    check("prompt_events_version_min", sql`${t.version} >= 1`),
    check(
      "prompt_events_label_presence",
      sql`(${t.type} IN ('label_set', 'label_removed')) = (${t.label} IS NOT NULL)`,
    ),
  ],
);

export const schema = {
  auditLog,
  promptTemplates,
  prompts,
  promptVersions,
  promptLabels,
  promptTags,
  promptEvents,
  idempotencyKeys,
};
export type Schema = typeof schema;

export type PromptRow = typeof prompts.$inferSelect;
export type PromptVersionRow = typeof promptVersions.$inferSelect;
export type PromptTemplateRow = typeof promptTemplates.$inferSelect;
export type PromptEventRow = typeof promptEvents.$inferSelect;
