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

export const promptKinds = ["text", "chat"] as const;
export type PromptKindValue = (typeof promptKinds)[number];

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
    /** The project (tenancy boundary); 1..200 characters and immutable (triggers, 0002_projects.sql). */
    projectId: text("project_id").notNull().default(""),
    /** Who created it. */
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
    // Unique per project, not globally: a global name would let one tenant squat or probe another's names.
    // Also serves RenderPromptTemplate by name.
    uniqueIndex("prompt_templates_project_name_uq").on(t.projectId, t.name),
    // ListPromptTemplates: the project's templates newest first, keyset on (created_at, id).
    index("prompt_templates_project_created_idx").on(t.projectId, t.createdAt, t.id),
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
    /** The project (tenancy boundary); 1..200 characters and immutable (triggers, 0002_projects.sql). */
    projectId: text("project_id").notNull().default(""),
    /**
     * Unique in the project, ^[a-z0-9][a-z0-9._/-]{0,127}$ (trigger, 0002_projects.sql); renamable, the id
     * never changes. Prompts created without a name, and those from before names, are named by their id.
     */
    name: text("name").notNull().default(""),
    /** text | chat, chosen at create, immutable; every version has the same kind (triggers). */
    kind: text("kind", { enum: promptKinds }).notNull().default("text"),
    /** Who created it ("created by"). */
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
    // GetPrompt / RenderPrompt by name; a name is unique in its project.
    uniqueIndex("prompts_project_name_uq").on(t.projectId, t.name),
    // ListPrompts, live prompts, no status filter (the hot path: a partial index holds live rows only).
    index("prompts_project_live_idx").on(t.projectId, t.createdAt, t.id).where(sql`deleted_at IS NULL`),
    // ListPrompts status filter on live prompts, and the review's "active prompts of a user, newest first"
    // (now of a project): the review's (user_id, status, created_at) + its partial deleted_at IS NULL index.
    index("prompts_project_status_live_idx")
      .on(t.projectId, t.status, t.createdAt, t.id)
      .where(sql`deleted_at IS NULL`),
    // ListPrompts include_deleted, without and with a status filter.
    index("prompts_project_created_idx").on(t.projectId, t.createdAt, t.id),
    index("prompts_project_status_created_idx").on(t.projectId, t.status, t.createdAt, t.id),
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
    /** Chat prompts: the messages, a JSON array of {role, content, name?}; NULL for text prompts (triggers). */
    messages: text("messages"),
    /**
     * Declared variables, a JSON array of {name, type, required, defaultValue?, enumValues, description};
     * NULL for a version that declared none (legacy clients): its `{{var}}`s are required strings.
     */
    variables: text("variables"),
    /** Unified diff of the canonical form (text or messages, then model_config) from version - 1; empty for 1. */
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
    /** The prompt's project, copied (projects never change) so a tag search never leaves the project's rows. */
    projectId: text("project_id").notNull().default(""),
  },
  (t) => [
    // (prompt_id, tag) unique; also loads a prompt's tags sorted.
    primaryKey({ name: "prompt_tags_pk", columns: [t.promptId, t.tag] }),
    // ListPrompts tag filter: the project's prompts with a tag, newest first (prompt_id is UUIDv7).
    index("prompt_tags_project_tag_idx").on(t.projectId, t.tag, t.promptId),
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
    /** The prompt's project: a service principal of one project reads only its project's events. */
    projectId: text("project_id").notNull().default(""),
    /** The prompt's name after the change (the prompt id for events from before names). */
    name: text("name").notNull().default(""),
    ownerId: text("owner_id").notNull(),
    version: integer("version").notNull(),
    label: text("label"),
    occurredAt: integer("occurred_at").notNull(),
  },
  (t) => [
    // A project's feed (ListPromptEvents / WatchPromptEvents of a one-project service principal).
    index("prompt_events_project_sequence_idx").on(t.projectId, t.sequence),
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

/** Every move of a label (set, moved, removed), kept for ListPromptLabelHistory; append-only (trigger). */
export const promptLabelHistory = sqliteTable(
  "prompt_label_history",
  {
    sequence: integer("sequence").primaryKey({ autoIncrement: true }),
    promptId: text("prompt_id")
      .notNull()
      .references(() => prompts.id, { onDelete: "cascade" }),
    label: text("label").notNull(),
    /** NULL: the label was absent (first set). */
    fromVersion: integer("from_version"),
    /** NULL: the label was removed. */
    toVersion: integer("to_version"),
    actor: text("actor").notNull(),
    reason: text("reason").notNull().default(""),
    occurredAt: integer("occurred_at").notNull(),
  },
  (t) => [
    // ListPromptLabelHistory of a prompt (and, with a label, of one label), newest first.
    index("prompt_label_history_prompt_idx").on(t.promptId, t.sequence),
    index("prompt_label_history_prompt_label_idx").on(t.promptId, t.label, t.sequence),
    check("prompt_label_history_moves", sql`${t.fromVersion} IS NOT ${t.toVersion}`),
    check(
      "prompt_label_history_versions_min",
      sql`(${t.fromVersion} IS NULL OR ${t.fromVersion} >= 1) AND (${t.toVersion} IS NULL OR ${t.toVersion} >= 1)`,
    ),
    check("prompt_label_history_reason_len", sql`length(${t.reason}) <= 1000`),
    check("prompt_label_history_label_len", sql`length(${t.label}) BETWEEN 1 AND 36`),
  ],
);

/** Per-project settings; a project without a row has the defaults (protected labels: production). */
export const projectSettings = sqliteTable(
  "project_settings",
  {
    projectId: text("project_id").primaryKey(),
    /** JSON array of label names only publishers may move. */
    protectedLabels: text("protected_labels").notNull().default('["production"]'),
    /**
     * JSON array of label names only the promotion gate may move (and nobody may remove). Its JSON-array rule is
     * a pair of triggers (0004_gated_labels): a CHECK here would make drizzle-kit rebuild the table.
     */
    gatedLabels: text("gated_labels").notNull().default("[]"),
    updatedBy: text("updated_by").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    check("project_settings_project_len", sql`length(${t.projectId}) BETWEEN 1 AND 200`),
    check(
      "project_settings_protected_labels_json",
      sql`json_valid(${t.protectedLabels}) AND json_type(${t.protectedLabels}) = 'array'`,
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
  promptLabelHistory,
  projectSettings,
  idempotencyKeys,
};
export type Schema = typeof schema;

export type PromptRow = typeof prompts.$inferSelect;
export type PromptVersionRow = typeof promptVersions.$inferSelect;
export type PromptTemplateRow = typeof promptTemplates.$inferSelect;
export type PromptEventRow = typeof promptEvents.$inferSelect;
export type LabelMoveRow = typeof promptLabelHistory.$inferSelect;
export type ProjectSettingsRow = typeof projectSettings.$inferSelect;
