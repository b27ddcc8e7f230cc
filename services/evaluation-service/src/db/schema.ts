import { auditLog, idempotencyKeys } from "@autoforge/db";
import { sql } from "drizzle-orm";
import {
  check,
  foreignKey,
  index,
  integer,
  primaryKey,
  real,
  sqliteTable,
  text,
  uniqueIndex,
} from "drizzle-orm/sqlite-core";

/**
 * evaluation-service's database. Every rule is enforced by SQLite itself (CHECK / FK / triggers), not only by
 * the handlers; SCHEMA.md explains each constraint and index and the query it serves.
 * Timestamps are INTEGER epoch milliseconds; JSON columns are TEXT with CHECK json_valid.
 * IDs are UUIDv7 and `created_at` is the timestamp encoded in the id, so id order is creation order.
 * Prompts live in prompt-service: they are referenced by ID only (no foreign key across services).
 */

// Re-exported so drizzle-kit generates it into this service's migrations.
export { auditLog, idempotencyKeys };

export const evaluationStatuses = ["pending", "running", "completed", "failed"] as const;
export type EvaluationStatusValue = (typeof evaluationStatuses)[number];

export const evaluations = sqliteTable(
  "evaluations",
  {
    id: text("id").primaryKey(),
    /**
     * The project (tenancy boundary): the evaluated prompt's project, set at creation; every query filters on
     * it. 1..200 characters and immutable: triggers in 0002_projects.sql (not a CHECK here: a new table-level
     * CHECK would make drizzle-kit rebuild the table, and a rebuild of this parent of ON DELETE CASCADE
     * children empties test_results on sqld). The default '' only serves the ADD COLUMN; the insert trigger
     * refuses it.
     */
    projectId: text("project_id").notNull().default(""),
    /** Who created it (the token's `sub`); shown as Evaluation.owner_id, never used for access. */
    ownerId: text("owner_id").notNull(),
    /** A prompt of prompt-service (checked through PromptService.GetPrompt at creation). */
    promptId: text("prompt_id").notNull(),
    promptVersion: integer("prompt_version").notNull(),
    provider: text("provider").notNull(),
    model: text("model").notNull(),
    status: text("status", { enum: evaluationStatuses }).notNull().default("pending"),
    overallScore: real("overall_score"),
    error: text("error").notNull().default(""),
    metadata: text("metadata").notNull().default("{}"),
    /** Maintained by a trigger on test_results (0001_triggers.sql): always equal to the rows' count. */
    testCount: integer("test_count").notNull().default(0),
    passedCount: integer("passed_count").notNull().default(0),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    startedAt: integer("started_at"),
    completedAt: integer("completed_at"),
    /**
     * An experiment's dataset version and trials per item; all three NULL for an ad-hoc evaluation. Set at
     * creation and immutable. Their rules (all or none, trials 1..100, the version committed in the
     * evaluation's project) are triggers in 0005_experiments.sql, not CHECKs or a foreign key here: either
     * would make drizzle-kit rebuild the table (see project_id). Datasets and their versions are never deleted,
     * so the reference cannot dangle, and deleting evaluations (the PURGED cascade) touches no dataset.
     */
    datasetId: text("dataset_id"),
    datasetVersion: integer("dataset_version"),
    trialsPerItem: integer("trials_per_item"),
  },
  (t) => [
    // ListEvaluations without filters: the project's evaluations newest first, keyset on (created_at, id).
    index("evaluations_project_created_idx").on(t.projectId, t.createdAt, t.id),
    // ListEvaluations with a status filter.
    index("evaluations_project_status_created_idx").on(t.projectId, t.status, t.createdAt, t.id),
    // The review's (prompt_id, created_at) + id for the keyset: ListEvaluations by prompt, the review's
    // "latest evaluations of a prompt", and the PURGED cascade (DELETE ... WHERE prompt_id = ? AND +project_id = ?).
    index("evaluations_prompt_created_idx").on(t.promptId, t.createdAt, t.id),
    // ComparePromptVersions: GROUP BY prompt_version, provider, model and dataset version in index order (no
    // temp B-tree for the grouping).
    index("evaluations_prompt_compare_idx").on(
      t.promptId,
      t.promptVersion,
      t.provider,
      t.model,
      t.datasetId,
      t.datasetVersion,
    ),
    // The review's partial index of running evaluations, keyed for "running evaluations of a prompt, newest
    // first" (ListEvaluations prompt_id + status RUNNING). Only running rows: tiny, and most rows never enter it.
    index("evaluations_running_idx").on(t.promptId, t.createdAt, t.id).where(sql`status = 'running'`),
    check("evaluations_status_enum", sql`${t.status} IN ('pending', 'running', 'completed', 'failed')`),
    check("evaluations_prompt_version_min", sql`${t.promptVersion} >= 1`),
    check("evaluations_provider_len", sql`length(${t.provider}) BETWEEN 1 AND 100`),
    check("evaluations_model_len", sql`length(${t.model}) BETWEEN 1 AND 200`),
    check("evaluations_error_len", sql`length(${t.error}) <= 2000`),
    check(
      "evaluations_overall_score_range",
      sql`${t.overallScore} IS NULL OR (${t.overallScore} >= 0.0 AND ${t.overallScore} <= 1.0)`,
    ),
    check(
      "evaluations_metadata_json",
      sql`json_valid(${t.metadata}) AND json_type(${t.metadata}) = 'object'`,
    ),
    check("evaluations_counts", sql`${t.testCount} >= 0 AND ${t.passedCount} BETWEEN 0 AND ${t.testCount}`),
    // State invariants: what each status implies about the other columns.
    check(
      "evaluations_completed_has_score",
      sql`${t.status} <> 'completed' OR (${t.overallScore} IS NOT NULL AND ${t.completedAt} IS NOT NULL)`,
    ),
    check(
      "evaluations_score_only_when_completed",
      sql`${t.overallScore} IS NULL OR ${t.status} = 'completed'`,
    ),
    check(
      "evaluations_failed_has_error",
      sql`${t.status} <> 'failed' OR (${t.error} <> '' AND ${t.completedAt} IS NOT NULL)`,
    ),
    check("evaluations_started_when_running", sql`${t.status} <> 'running' OR ${t.startedAt} IS NOT NULL`),
    check(
      "evaluations_pending_not_started",
      sql`${t.status} <> 'pending' OR (${t.startedAt} IS NULL AND ${t.completedAt} IS NULL)`,
    ),
    check(
      "evaluations_times_ordered",
      sql`${t.updatedAt} >= ${t.createdAt} AND (${t.startedAt} IS NULL OR ${t.startedAt} >= ${t.createdAt}) AND (${t.completedAt} IS NULL OR ${t.completedAt} >= ${t.createdAt})`,
    ),
  ],
);

export const testResults = sqliteTable(
  "test_results",
  {
    id: text("id").primaryKey(),
    evaluationId: text("evaluation_id")
      .notNull()
      .references(() => evaluations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    input: text("input").notNull().default(""),
    expectedOutput: text("expected_output").notNull().default(""),
    actualOutput: text("actual_output").notNull().default(""),
    passed: integer("passed").notNull(),
    score: real("score").notNull(),
    latencyMs: integer("latency_ms").notNull(),
    metadata: text("metadata").notNull().default("{}"),
    createdAt: integer("created_at").notNull(),
    /**
     * An experiment's result: the dataset item and the trial (1..trials_per_item) it is for; both NULL on an
     * ad-hoc evaluation's results. Triggers in 0005_experiments.sql (not CHECKs: those would rebuild the table)
     * refuse an item outside the evaluation's dataset version, a trial outside 1..trials_per_item, and either
     * column on an ad-hoc evaluation's result.
     */
    datasetItemId: text("dataset_item_id"),
    trial: integer("trial"),
  },
  (t) => [
    // Each (item, trial) of an experiment at most once; also CompleteEvaluation's count of recorded pairs and
    // its per-item lookups. Partial: ad-hoc results (no item) are not in it.
    uniqueIndex("test_results_evaluation_item_trial_idx")
      .on(t.evaluationId, t.datasetItemId, t.trial)
      .where(sql`dataset_item_id IS NOT NULL`),
    // ListTestResults in recording order (ids are UUIDv7), keyset on id; also the child key of the
    // ON DELETE CASCADE from evaluations (the PURGED cascade looks results up by evaluation_id).
    index("test_results_evaluation_id_idx").on(t.evaluationId, t.id),
    // The review's "mean score of passed tests" (and the summary's means): covering, see SCHEMA.md for the
    // measurement against the review's (evaluation_id, score).
    index("test_results_evaluation_passed_score_idx").on(t.evaluationId, t.passed, t.score),
    // GetEvaluationSummary latency percentiles: nearest-rank = the k-th row in index order.
    index("test_results_evaluation_latency_idx").on(t.evaluationId, t.latencyMs),
    check("test_results_name_len", sql`length(${t.name}) BETWEEN 1 AND 255`),
    check("test_results_passed_bool", sql`${t.passed} IN (0, 1)`),
    check("test_results_score_range", sql`${t.score} >= 0.0 AND ${t.score} <= 1.0`),
    check("test_results_latency_min", sql`${t.latencyMs} >= 0`),
    check(
      "test_results_metadata_json",
      sql`json_valid(${t.metadata}) AND json_type(${t.metadata}) = 'object'`,
    ),
    check(
      "test_results_text_sizes",
      sql`length(CAST(${t.input} AS BLOB)) <= 65536 AND length(CAST(${t.expectedOutput} AS BLOB)) <= 65536 AND length(CAST(${t.actualOutput} AS BLOB)) <= 65536`,
    ),
  ],
);

/**
 * Where each consumer of another service's event feed stands: the last sequence applied (its effect
 * committed in the same transaction) and the newest sequence seen in the feed (for lag).
 */
export const consumerOffsets = sqliteTable(
  "consumer_offsets",
  {
    name: text("name").primaryKey(),
    lastAppliedSequence: integer("last_applied_sequence").notNull().default(0),
    lastSeenSequence: integer("last_seen_sequence").notNull().default(0),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    check("consumer_offsets_name_len", sql`length(${t.name}) BETWEEN 1 AND 100`),
    check("consumer_offsets_applied_min", sql`${t.lastAppliedSequence} >= 0`),
    check("consumer_offsets_seen_ge_applied", sql`${t.lastSeenSequence} >= ${t.lastAppliedSequence}`),
  ],
);

export const promptTombstoneStates = ["deleted", "purged"] as const;
export type PromptTombstoneState = (typeof promptTombstoneStates)[number];

/**
 * Prompts known from the event feed to be soft-deleted (DELETED, removed by RESTORED) or purged (PURGED, kept:
 * a CreateEvaluation that checked the prompt just before the purge must not insert after the cascade ran).
 * CreateEvaluation refuses both inside its write transaction.
 */
export const promptTombstones = sqliteTable(
  "prompt_tombstones",
  {
    promptId: text("prompt_id").primaryKey(),
    ownerId: text("owner_id").notNull(),
    state: text("state", { enum: promptTombstoneStates }).notNull(),
    /** The feed sequence of the event that set this state. */
    sequence: integer("sequence").notNull(),
    occurredAt: integer("occurred_at").notNull(),
  },
  (t) => [check("prompt_tombstones_state_enum", sql`${t.state} IN ('deleted', 'purged')`)],
);

// ---- datasets --------------------------------------------------------------------------------------------

/**
 * A named, versioned collection of test cases in a project. Never deleted (trigger): versions are history that
 * experiments refer to. `latest_version` / `latest_item_count` move only to the next committed version
 * (trigger), so a reader of the dataset row always names a complete version.
 */
export const datasets = sqliteTable(
  "datasets",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id").notNull(),
    ownerId: text("owner_id").notNull(),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    latestVersion: integer("latest_version").notNull().default(0),
    latestItemCount: integer("latest_item_count").notNull().default(0),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    // The name is unique per project; also ListDatasets' keyset (project_id, name) walked forwards.
    uniqueIndex("datasets_project_name_idx").on(t.projectId, t.name),
    check("datasets_project_len", sql`length(${t.projectId}) BETWEEN 1 AND 200`),
    check("datasets_name_len", sql`length(${t.name}) BETWEEN 1 AND 100`),
    check("datasets_description_len", sql`length(${t.description}) <= 2000`),
    check("datasets_latest_version_min", sql`${t.latestVersion} >= 0`),
    check("datasets_latest_item_count_range", sql`${t.latestItemCount} BETWEEN 0 AND 100000`),
    check("datasets_times_ordered", sql`${t.updatedAt} >= ${t.createdAt}`),
  ],
);

/**
 * One version of a dataset. A version is written uncommitted (`committed` = 0), its items added, then committed
 * in the same transaction: the commit (the only UPDATE allowed) checks that `item_count` is the number of its
 * items, and a committed version accepts no item and no change. Numbers are 1, 2, ... without gaps
 * (trigger: the next is always `latest_version + 1`).
 */
export const datasetVersions = sqliteTable(
  "dataset_versions",
  {
    datasetId: text("dataset_id")
      .notNull()
      .references(() => datasets.id),
    version: integer("version").notNull(),
    /** The version it was derived from; NULL when created from scratch. */
    parentVersion: integer("parent_version"),
    itemCount: integer("item_count").notNull(),
    addedCount: integer("added_count").notNull(),
    changedCount: integer("changed_count").notNull(),
    removedCount: integer("removed_count").notNull(),
    creatorId: text("creator_id").notNull(),
    committed: integer("committed").notNull().default(0),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.datasetId, t.version] }),
    foreignKey({
      columns: [t.datasetId, t.parentVersion],
      foreignColumns: [t.datasetId, t.version],
      name: "dataset_versions_parent_fk",
    }),
    check("dataset_versions_version_min", sql`${t.version} >= 1`),
    check(
      "dataset_versions_parent_before",
      sql`${t.parentVersion} IS NULL OR (${t.parentVersion} >= 1 AND ${t.parentVersion} < ${t.version})`,
    ),
    check("dataset_versions_item_count_range", sql`${t.itemCount} BETWEEN 0 AND 100000`),
    check(
      "dataset_versions_change_counts",
      sql`${t.addedCount} >= 0 AND ${t.changedCount} >= 0 AND ${t.removedCount} >= 0 AND ${t.addedCount} + ${t.changedCount} <= ${t.itemCount}`,
    ),
    check("dataset_versions_committed_bool", sql`${t.committed} IN (0, 1)`),
  ],
);

export const datasetInputKinds = ["json", "text"] as const;
export type DatasetInputKind = (typeof datasetInputKinds)[number];

/**
 * Item contents, content-addressed per (dataset, item id): `digest` is the SHA-256 of the content
 * (domain/dataset-items.ts). A version lists its items in dataset_version_items; an item unchanged from one
 * version to the next is the same row here, so a derived version of 100,000 items copies 100,000 small
 * membership rows, not their contents. Rows are never changed or deleted (triggers).
 */
export const datasetItems = sqliteTable(
  "dataset_items",
  {
    datasetId: text("dataset_id")
      .notNull()
      .references(() => datasets.id),
    itemId: text("item_id").notNull(),
    digest: text("digest").notNull(),
    inputKind: text("input_kind", { enum: datasetInputKinds }).notNull(),
    /** A JSON object (`json`) or a text (`text`). */
    input: text("input").notNull(),
    expectedOutput: text("expected_output").notNull().default(""),
    metadata: text("metadata").notNull().default("{}"),
    /** A JSON array of strings. */
    tags: text("tags").notNull().default("[]"),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.datasetId, t.itemId, t.digest] }),
    check(
      "dataset_items_item_id_form",
      sql`length(${t.itemId}) BETWEEN 1 AND 128 AND ${t.itemId} NOT GLOB '*[^A-Za-z0-9._:-]*'`,
    ),
    check("dataset_items_digest_form", sql`length(${t.digest}) = 64 AND ${t.digest} NOT GLOB '*[^0-9a-f]*'`),
    check("dataset_items_input_kind_enum", sql`${t.inputKind} IN ('json', 'text')`),
    check(
      "dataset_items_input_json",
      sql`${t.inputKind} <> 'json' OR (json_valid(${t.input}) AND json_type(${t.input}) = 'object')`,
    ),
    check(
      "dataset_items_text_sizes",
      sql`length(CAST(${t.input} AS BLOB)) <= 65536 AND length(CAST(${t.expectedOutput} AS BLOB)) <= 65536`,
    ),
    check(
      "dataset_items_metadata_json",
      sql`json_valid(${t.metadata}) AND json_type(${t.metadata}) = 'object' AND length(CAST(${t.metadata} AS BLOB)) <= 16384`,
    ),
    check(
      "dataset_items_tags_json",
      sql`json_valid(${t.tags}) AND json_type(${t.tags}) = 'array' AND json_array_length(${t.tags}) <= 20`,
    ),
  ],
);

/** Which item contents a version holds: one row per (version, item id). Never changed or deleted (triggers). */
export const datasetVersionItems = sqliteTable(
  "dataset_version_items",
  {
    datasetId: text("dataset_id").notNull(),
    version: integer("version").notNull(),
    itemId: text("item_id").notNull(),
    digest: text("digest").notNull(),
  },
  (t) => [
    // ListDatasetItems (keyset on item_id), the diff's merge of two versions, and the commit's count.
    primaryKey({ columns: [t.datasetId, t.version, t.itemId] }),
    foreignKey({
      columns: [t.datasetId, t.version],
      foreignColumns: [datasetVersions.datasetId, datasetVersions.version],
      name: "dataset_version_items_version_fk",
    }),
    foreignKey({
      columns: [t.datasetId, t.itemId, t.digest],
      foreignColumns: [datasetItems.datasetId, datasetItems.itemId, datasetItems.digest],
      name: "dataset_version_items_item_fk",
    }),
  ],
);

export const scoreKinds = ["numeric", "boolean", "categorical"] as const;
export type ScoreKindValue = (typeof scoreKinds)[number];
export const scoreDirections = ["higher", "lower"] as const;
export type ScoreDirectionValue = (typeof scoreDirections)[number];

/**
 * The named scores an evaluation declares at creation (besides the default `passed` and `score` columns of
 * test_results): a numeric score with its range, a boolean, or a categorical with its ordered categories, and
 * which way is better. Immutable, and declared only while the evaluation is PENDING without results (triggers in
 * 0006_scores.sql); the shape of each kind is a CHECK.
 */
export const evaluationScores = sqliteTable(
  "evaluation_scores",
  {
    evaluationId: text("evaluation_id")
      .notNull()
      .references(() => evaluations.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    /** Declaration order, 0-based: summaries and results list the scores in it. */
    position: integer("position").notNull(),
    kind: text("kind", { enum: scoreKinds }).notNull(),
    /** numeric only: the closed range every value lies in. */
    minValue: real("min_value"),
    maxValue: real("max_value"),
    /** categorical only: a JSON array of distinct category names; a value is stored as its 0-based index. */
    categories: text("categories"),
    /** Which way is better: higher values (true, later categories) or lower. */
    direction: text("direction", { enum: scoreDirections }).notNull().default("higher"),
  },
  (t) => [
    primaryKey({ columns: [t.evaluationId, t.name], name: "evaluation_scores_pk" }),
    uniqueIndex("evaluation_scores_position_idx").on(t.evaluationId, t.position),
    check(
      "evaluation_scores_name",
      sql`length(${t.name}) BETWEEN 1 AND 64 AND ${t.name} GLOB '[a-z]*' AND ${t.name} NOT GLOB '*[^a-z0-9_]*' AND ${t.name} NOT IN ('passed', 'score')`,
    ),
    check("evaluation_scores_position_range", sql`${t.position} BETWEEN 0 AND 19`),
    check("evaluation_scores_kind_enum", sql`${t.kind} IN ('numeric', 'boolean', 'categorical')`),
    check("evaluation_scores_direction_enum", sql`${t.direction} IN ('higher', 'lower')`),
    check(
      "evaluation_scores_kind_shape",
      sql`(${t.kind} = 'numeric' AND ${t.minValue} IS NOT NULL AND ${t.maxValue} IS NOT NULL AND ${t.minValue} >= -1e15 AND ${t.maxValue} <= 1e15 AND ${t.minValue} < ${t.maxValue} AND ${t.categories} IS NULL)
        OR (${t.kind} = 'boolean' AND ${t.minValue} IS NULL AND ${t.maxValue} IS NULL AND ${t.categories} IS NULL)
        OR (${t.kind} = 'categorical' AND ${t.minValue} IS NULL AND ${t.maxValue} IS NULL AND json_valid(${t.categories}) AND json_type(${t.categories}) = 'array' AND json_array_length(${t.categories}) BETWEEN 2 AND 50)`,
    ),
  ],
);

/**
 * One result's value of one declared score: numeric as is, boolean 0/1, categorical the category's index. The
 * evaluation and the dataset item are the result's, copied so that the summaries read one index range per score
 * (a trigger in 0006_scores.sql refuses a copy that differs, one outside the declaration's kind or range, and any
 * UPDATE); the foreign key to evaluation_scores refuses an undeclared score.
 */
export const testResultScores = sqliteTable(
  "test_result_scores",
  {
    resultId: text("result_id")
      .notNull()
      .references(() => testResults.id, { onDelete: "cascade" }),
    name: text("name").notNull(),
    evaluationId: text("evaluation_id").notNull(),
    datasetItemId: text("dataset_item_id"),
    value: real("value").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.resultId, t.name], name: "test_result_scores_pk" }),
    foreignKey({
      columns: [t.evaluationId, t.name],
      foreignColumns: [evaluationScores.evaluationId, evaluationScores.name],
      name: "test_result_scores_declared_fk",
    }).onDelete("cascade"),
    // A score's summary: count, mean, variance in one pass; median, min and max by position in the range; a
    // categorical distribution grouped in index order. Also the child key of the foreign key above.
    index("test_result_scores_value_idx").on(t.evaluationId, t.name, t.value),
    // Per item across trials (mean, variance, flaky): grouped by item in index order. Experiments only.
    index("test_result_scores_item_idx")
      .on(t.evaluationId, t.name, t.datasetItemId, t.value)
      .where(sql`dataset_item_id IS NOT NULL`),
  ],
);

export const promotionStatuses = ["pending", "promoted", "refused", "aborted", "failed"] as const;
export type PromotionStatusValue = (typeof promotionStatuses)[number];

/**
 * The promotion policy of a label in a project (PromotionService): the dataset candidates run over and the
 * rules. The dataset must be one of the project's (trigger in 0007_promotions.sql; datasets are never deleted).
 */
export const promotionPolicies = sqliteTable(
  "promotion_policies",
  {
    projectId: text("project_id").notNull(),
    label: text("label").notNull(),
    datasetId: text("dataset_id").notNull(),
    minPassRate: real("min_pass_rate"),
    minMeanScore: real("min_mean_score"),
    requireNotWorse: integer("require_not_worse").notNull().default(0),
    alpha: real("alpha").notNull().default(0.05),
    updatedBy: text("updated_by").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.projectId, t.label], name: "promotion_policies_pk" }),
    check("promotion_policies_project_len", sql`length(${t.projectId}) BETWEEN 1 AND 200`),
    check(
      "promotion_policies_label_form",
      sql`length(${t.label}) BETWEEN 1 AND 36 AND ${t.label} NOT GLOB '*[^a-z0-9_-]*' AND ${t.label} <> 'latest'`,
    ),
    check(
      "promotion_policies_thresholds",
      sql`(${t.minPassRate} IS NULL OR ${t.minPassRate} BETWEEN 0 AND 1) AND (${t.minMeanScore} IS NULL OR ${t.minMeanScore} BETWEEN 0 AND 1)`,
    ),
    check("promotion_policies_not_worse_bool", sql`${t.requireNotWorse} IN (0, 1)`),
    check("promotion_policies_alpha_range", sql`${t.alpha} > 0 AND ${t.alpha} < 0.5`),
  ],
);

/**
 * Every promotion decision (PromotionService.PromotePromptVersion): the rules with their numbers, the policy as
 * applied, and what became of the label move. REFUSED is final when written; PENDING moves once, to PROMOTED,
 * ABORTED or FAILED (trigger in 0007_promotions.sql); rows are never deleted.
 */
export const promotions = sqliteTable(
  "promotions",
  {
    id: text("id").primaryKey(),
    projectId: text("project_id").notNull(),
    promptId: text("prompt_id").notNull(),
    label: text("label").notNull(),
    fromVersion: integer("from_version"),
    toVersion: integer("to_version").notNull(),
    status: text("status", { enum: promotionStatuses }).notNull(),
    candidateEvaluationId: text("candidate_evaluation_id"),
    baselineEvaluationId: text("baseline_evaluation_id"),
    /** JSON array of the rules' results (PromotionRuleResult). */
    rules: text("rules").notNull(),
    /** JSON object: the policy as applied. */
    policy: text("policy").notNull(),
    error: text("error").notNull().default(""),
    requestedBy: text("requested_by").notNull(),
    reason: text("reason").notNull().default(""),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    // ListPromotions, newest first, keyset on (created_at, id); with a prompt filter.
    index("promotions_project_created_idx").on(t.projectId, t.createdAt, t.id),
    index("promotions_prompt_created_idx").on(t.projectId, t.promptId, t.createdAt, t.id),
    check(
      "promotions_status_enum",
      sql`${t.status} IN ('pending', 'promoted', 'refused', 'aborted', 'failed')`,
    ),
    check(
      "promotions_versions",
      sql`${t.toVersion} >= 1 AND (${t.fromVersion} IS NULL OR ${t.fromVersion} >= 1)`,
    ),
    check("promotions_rules_json", sql`json_valid(${t.rules}) AND json_type(${t.rules}) = 'array'`),
    check("promotions_policy_json", sql`json_valid(${t.policy}) AND json_type(${t.policy}) = 'object'`),
    check("promotions_reason_len", sql`length(${t.reason}) <= 500`),
    check("promotions_error_len", sql`length(${t.error}) <= 2000`),
    check("promotions_times", sql`${t.updatedAt} >= ${t.createdAt}`),
  ],
);

export const schema = {
  auditLog,
  evaluations,
  testResults,
  consumerOffsets,
  promptTombstones,
  idempotencyKeys,
  datasets,
  datasetVersions,
  datasetItems,
  datasetVersionItems,
  evaluationScores,
  testResultScores,
  promotionPolicies,
  promotions,
};
export type Schema = typeof schema;

export type EvaluationRow = typeof evaluations.$inferSelect;
export type TestResultRow = typeof testResults.$inferSelect;
export type ConsumerOffsetRow = typeof consumerOffsets.$inferSelect;
export type DatasetRow = typeof datasets.$inferSelect;
export type DatasetVersionRow = typeof datasetVersions.$inferSelect;
export type DatasetItemRow = typeof datasetItems.$inferSelect;
export type EvaluationScoreRow = typeof evaluationScores.$inferSelect;
export type TestResultScoreRow = typeof testResultScores.$inferSelect;
export type PromotionPolicyRow = typeof promotionPolicies.$inferSelect;
export type PromotionRow = typeof promotions.$inferSelect;
