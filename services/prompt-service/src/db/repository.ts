import { idempotencyKeyStore, preparedQuery, type Tx } from "@autoforge/db";
import { allProjects, createRequestIds } from "@autoforge/server";
import {
  and,
  asc,
  desc,
  eq,
  getTableColumns,
  gt,
  isNull,
  lt,
  type Placeholder,
  type SQL,
  type SQLWrapper,
  sql,
} from "drizzle-orm";
import type { LibSQLDatabase } from "drizzle-orm/libsql";
import {
  type LabelMoveRow,
  type PromptEventTypeValue,
  type PromptRow,
  type PromptStatusValue,
  type PromptTemplateRow,
  type PromptVersionRow,
  projectSettings,
  promptEvents,
  promptLabelHistory,
  promptLabels,
  prompts,
  promptTags,
  promptTemplates,
  promptVersions,
  type Schema,
} from "./schema.js";

/**
 * Every statement the handlers run, built here so tests can `.toSQL()` the very same queries and check
 * their plans (EXPLAIN QUERY PLAN). Functions take a unit of work's `tx` (or, for plan tests, a plain
 * Drizzle instance): they never open transactions themselves.
 */
export type Queryable = Tx<Schema> | LibSQLDatabase<Schema>;

/**
 * A value, or a `sql.placeholder` for it: the hot fixed-shape reads (GetPrompt, ListPrompts) are built once
 * per shape with placeholders and kept (`preparedQuery` of @autoforge/db: drizzle does not build their SQL
 * again on every call). Their `*Query` functions return the prepared query with the values: awaitable (all
 * rows), `.get()`, and `.toSQL()` for the plan tests.
 */
type Bind<T> = T | Placeholder;

// ---- prompts ---------------------------------------------------------------------------------------------

/** A prompt's tags and labels as the API shows them: tags sorted, labels sorted by name. */
export interface TagsAndLabels {
  tags: string[];
  labels: { label: string; version: number }[];
}

/** What the API shows of a version: its number, body (content or messages), model config and variables. */
export type ShownVersion = Pick<
  PromptVersionRow,
  "version" | "content" | "messages" | "modelConfig" | "variables"
>;

/** A prompt row with one version (the current one, in lists), tags and labels. */
export interface PromptWithVersion extends TagsAndLabels {
  prompt: PromptRow;
  version: ShownVersion;
}

const shownVersion = {
  version: promptVersions.version,
  content: promptVersions.content,
  messages: promptVersions.messages,
  modelConfig: promptVersions.modelConfig,
  variables: promptVersions.variables,
};

/**
 * The tags of prompt `promptId` (a column of the outer query, or a value) as one JSON array, sorted: a
 * correlated subselect over the primary key (prompt_id, tag), whose order also satisfies the ORDER BY.
 * (`json_group_array(x ORDER BY x)` would sort in a temp B-tree; an ordered subquery feeds the aggregate
 * in index order instead.)
 */
function tagsOf(promptId: SQLWrapper | string) {
  return sql`(SELECT json_group_array(tag) FROM (SELECT ${promptTags.tag} AS tag FROM ${promptTags} WHERE ${promptTags.promptId} = ${promptId} ORDER BY ${promptTags.tag}))`.mapWith(
    (json: string) => JSON.parse(json) as string[],
  );
}

/** The labels of prompt `promptId` as one JSON array of {label, version}, sorted by label (primary key order). */
function labelsOf(promptId: SQLWrapper | string) {
  return sql`(SELECT json_group_array(json_object('label', label, 'version', version)) FROM (SELECT ${promptLabels.label} AS label, ${promptLabels.version} AS version FROM ${promptLabels} WHERE ${promptLabels.promptId} = ${promptId} ORDER BY ${promptLabels.label}))`.mapWith(
    (json: string) => JSON.parse(json) as { label: string; version: number }[],
  );
}

const promptWithVersion = {
  prompt: prompts,
  version: shownVersion,
  tags: tagsOf(prompts.id),
  labels: labelsOf(prompts.id),
};

/**
 * How a request names a prompt: by id, or by name in its project. Another project's prompt is never found:
 * every lookup is by (project, id) or (project, name).
 */
export type PromptKey = { readonly id: string } | { readonly name: string };

/** The project's prompt row (every mutation starts here): a primary-key lookup, prepared once. */
const promptById = preparedQuery((db: Queryable) =>
  db
    .select()
    .from(prompts)
    .where(and(eq(prompts.id, sql.placeholder("id")), eq(prompts.projectId, sql.placeholder("projectId")))),
);

const promptByName = preparedQuery((db: Queryable) =>
  db
    .select()
    .from(prompts)
    .where(
      and(eq(prompts.projectId, sql.placeholder("projectId")), eq(prompts.name, sql.placeholder("name"))),
    ),
);

export function findPrompt(db: Queryable, projectId: string, id: string) {
  return promptById.with(db, { projectId, id }).get();
}

export function findPromptByKey(db: Queryable, projectId: string, key: PromptKey) {
  return "id" in key
    ? promptById.with(db, { projectId, id: key.id }).get()
    : promptByName.with(db, { projectId, name: key.name }).get();
}

const versionByNumber = preparedQuery((db: Queryable) =>
  db
    .select()
    .from(promptVersions)
    .where(
      and(
        eq(promptVersions.promptId, sql.placeholder("promptId")),
        eq(promptVersions.version, sql.placeholder("version")),
      ),
    ),
);

export function findVersion(db: Queryable, promptId: string, version: number) {
  return versionByNumber.with(db, { promptId, version }).get();
}

/** Which version a one-statement view shows: the current one, a number, a label's, or the default of a name. */
export type VersionChoice =
  | { readonly by: "current" }
  | { readonly by: "number"; readonly version: number }
  | { readonly by: "label"; readonly label: string }
  /** `production` if the prompt has that label, else the current version (GetPrompt by name alone). */
  | { readonly by: "default" };

/** The label a name alone resolves to, when the prompt has it. */
export const defaultLabel = "production";

/**
 * GetPrompt / RenderPrompt in one statement: the project's prompt (by id or by name), the version to show,
 * tags and labels. `version` is null when the prompt has no such version (or label: then `labelVersion` is
 * null too); no row when the prompt is missing or another project's. One prepared query per (key, choice)
 * shape. (`*Query` builders are what the plan tests render; `find*` runs them.)
 */
export function promptViewQuery(db: Queryable, projectId: string, key: PromptKey, choice: VersionChoice) {
  const byName = "name" in key;
  const shape = `${byName ? "name" : "id"}:${choice.by}`;
  let prepared = promptViewShapes.get(shape);
  if (prepared === undefined) {
    prepared = preparePromptView(byName, choice.by);
    promptViewShapes.set(shape, prepared);
  }
  return prepared.with(db, {
    projectId,
    key: "name" in key ? key.name : key.id,
    version: choice.by === "number" ? choice.version : undefined,
    label: choice.by === "label" ? choice.label : choice.by === "default" ? defaultLabel : undefined,
  });
}

function preparePromptView(byName: boolean, by: VersionChoice["by"]) {
  return preparedQuery((db: Queryable) => {
    const keyColumn = byName ? prompts.name : prompts.id;
    const where = and(
      eq(keyColumn, sql.placeholder("key")),
      eq(prompts.projectId, sql.placeholder("projectId")),
    );
    if (by === "current" || by === "number") {
      return db
        .select({ ...promptWithVersion, labelVersion: sql<number | null>`NULL` })
        .from(prompts)
        .leftJoin(
          promptVersions,
          and(
            eq(promptVersions.promptId, prompts.id),
            eq(promptVersions.version, by === "number" ? sql.placeholder("version") : prompts.currentVersion),
          ),
        )
        .where(where);
    }
    const shownNumber =
      by === "label"
        ? promptLabels.version
        : sql`coalesce(${promptLabels.version}, ${prompts.currentVersion})`;
    return db
      .select({ ...promptWithVersion, labelVersion: promptLabels.version })
      .from(prompts)
      .leftJoin(
        promptLabels,
        and(eq(promptLabels.promptId, prompts.id), eq(promptLabels.label, sql.placeholder("label"))),
      )
      .leftJoin(
        promptVersions,
        and(eq(promptVersions.promptId, prompts.id), eq(promptVersions.version, shownNumber)),
      )
      .where(where);
  });
}

const promptViewShapes = new Map<string, ReturnType<typeof preparePromptView>>();

export function findPromptView(db: Queryable, projectId: string, key: PromptKey, choice: VersionChoice) {
  return promptViewQuery(db, projectId, key, choice).get();
}

/**
 * One version of a prompt with the prompt's tags and labels, in one statement (the view a mutation returns).
 * The subselects get the id as a value, not as a column: in a one-table select drizzle renders columns
 * unqualified, and an unqualified `prompt_id` would bind to the subselect's own table.
 */
export function versionViewQuery(db: Queryable, promptId: string, version: number) {
  return db
    .select({ version: shownVersion, tags: tagsOf(promptId), labels: labelsOf(promptId) })
    .from(promptVersions)
    .where(and(eq(promptVersions.promptId, promptId), eq(promptVersions.version, version)));
}

export function findVersionView(db: Queryable, promptId: string, version: number) {
  return versionViewQuery(db, promptId, version).get();
}

const labelByName = preparedQuery((db: Queryable) =>
  db
    .select()
    .from(promptLabels)
    .where(
      and(
        eq(promptLabels.promptId, sql.placeholder("promptId")),
        eq(promptLabels.label, sql.placeholder("label")),
      ),
    ),
);

export function findLabel(db: Queryable, promptId: string, label: string) {
  return labelByName.with(db, { promptId, label }).get();
}

export interface ListPromptsFilter {
  projectId: string;
  status?: PromptStatusValue | undefined;
  tag?: string | undefined;
  /** Names starting with this. */
  namePrefix?: string | undefined;
  /** Titles containing this. */
  titleContains?: string | undefined;
  includeDeleted: boolean;
  /** Keyset: the (created_at, id) of the last row of the previous page. */
  after?: { createdAt: number; id: string } | undefined;
  limit: number;
}

/**
 * ListPrompts, newest first. Without a tag filter it walks one of the four prompts indexes (live / all,
 * with / without status) backwards; with a tag it walks `prompt_tags_owner_tag_idx` (prompt_id is UUIDv7,
 * so prompt_id order is (created_at, id) order) and joins prompts by primary key. The current version's
 * content comes by primary-key lookup; each row's tags and labels by correlated subselects over their primary
 * keys (evaluated only for the rows the LIMIT returns: the plans have no sort). The name prefix and title
 * filters are predicates on the same index walk (newest first stays the order; a name range would need a sort).
 * One prepared query per combination of the filters given (at most 64).
 */
export function listPromptsQuery(db: Queryable, f: ListPromptsFilter) {
  const shape: ListPromptsShape = {
    tag: f.tag !== undefined,
    status: f.status !== undefined,
    includeDeleted: f.includeDeleted,
    after: f.after !== undefined,
    namePrefix: f.namePrefix !== undefined,
    titleContains: f.titleContains !== undefined,
  };
  const key = Object.values(shape)
    .map((v) => +v)
    .join("");
  let prepared = listPromptsShapes.get(key);
  if (prepared === undefined) {
    prepared = prepareListPrompts(shape);
    listPromptsShapes.set(key, prepared);
  }
  return prepared.with(db, {
    projectId: f.projectId,
    status: f.status,
    tag: f.tag,
    namePrefix: f.namePrefix,
    // Names are [a-z0-9._/-]: every name with the prefix sorts below prefix + "~".
    nameEnd: f.namePrefix === undefined ? undefined : `${f.namePrefix}~`,
    titleContains: f.titleContains,
    afterCreatedAt: f.after?.createdAt,
    afterId: f.after?.id,
    limit: f.limit,
  });
}

/** Which of ListPrompts' optional filters are present: they decide the statement's text. */
interface ListPromptsShape {
  tag: boolean;
  status: boolean;
  includeDeleted: boolean;
  after: boolean;
  namePrefix: boolean;
  titleContains: boolean;
}

function prepareListPrompts(shape: ListPromptsShape) {
  return preparedQuery((db: Queryable) =>
    buildListPrompts(db, {
      projectId: sql.placeholder("projectId"),
      status: shape.status ? sql.placeholder("status") : undefined,
      tag: shape.tag ? sql.placeholder("tag") : undefined,
      name: shape.namePrefix
        ? { from: sql.placeholder("namePrefix"), to: sql.placeholder("nameEnd") }
        : undefined,
      titleContains: shape.titleContains ? sql.placeholder("titleContains") : undefined,
      includeDeleted: shape.includeDeleted,
      after: shape.after
        ? { createdAt: sql.placeholder("afterCreatedAt"), id: sql.placeholder("afterId") }
        : undefined,
      limit: sql.placeholder("limit"),
    }),
  );
}

const listPromptsShapes = new Map<string, ReturnType<typeof prepareListPrompts>>();

function buildListPrompts(
  db: Queryable,
  f: {
    projectId: Bind<string>;
    status: Bind<PromptStatusValue> | undefined;
    tag: Bind<string> | undefined;
    name: { from: Bind<string>; to: Bind<string> } | undefined;
    titleContains: Bind<string> | undefined;
    includeDeleted: boolean;
    after: { createdAt: Bind<number>; id: Bind<string> } | undefined;
    limit: Bind<number>;
  },
) {
  const conditions: (SQL | undefined)[] = [
    f.status === undefined ? undefined : eq(prompts.status, f.status),
    f.includeDeleted ? undefined : isNull(prompts.deletedAt),
    // Unary `+`: the name range filters the newest-first walk instead of picking the name index (whose order
    // would need a sort).
    f.name === undefined
      ? undefined
      : sql`+${prompts.name} >= ${f.name.from} AND +${prompts.name} < ${f.name.to}`,
    f.titleContains === undefined ? undefined : sql`instr(${prompts.title}, ${f.titleContains}) > 0`,
  ];
  const versionJoin = and(
    eq(promptVersions.promptId, prompts.id),
    eq(promptVersions.version, prompts.currentVersion),
  );
  if (f.tag !== undefined) {
    return db
      .select(promptWithVersion)
      .from(promptTags)
      .innerJoin(prompts, eq(prompts.id, promptTags.promptId))
      .innerJoin(promptVersions, versionJoin)
      .where(
        and(
          eq(promptTags.projectId, f.projectId),
          eq(promptTags.tag, f.tag),
          f.after === undefined ? undefined : lt(promptTags.promptId, f.after.id),
          ...conditions,
        ),
      )
      .orderBy(desc(promptTags.promptId))
      .limit(f.limit);
  }
  return db
    .select(promptWithVersion)
    .from(prompts)
    .innerJoin(promptVersions, versionJoin)
    .where(
      and(
        eq(prompts.projectId, f.projectId),
        ...conditions,
        f.after === undefined
          ? undefined
          : sql`(${prompts.createdAt}, ${prompts.id}) < (${f.after.createdAt}, ${f.after.id})`,
      ),
    )
    .orderBy(desc(prompts.createdAt), desc(prompts.id))
    .limit(f.limit);
}

/** The review's query pattern 1, per project: a project's active, live prompts, newest first. */
export function activePromptsOfProjectQuery(db: Queryable, projectId: string, limit: number) {
  return db
    .select()
    .from(prompts)
    .where(and(eq(prompts.projectId, projectId), eq(prompts.status, "active"), isNull(prompts.deletedAt)))
    .orderBy(desc(prompts.createdAt))
    .limit(limit);
}

/** A new prompt with its first version and tags (a fresh id has no tags to replace). */
export async function insertPrompt(
  db: Queryable,
  row: typeof prompts.$inferInsert,
  firstVersion: typeof promptVersions.$inferInsert,
  tags: readonly string[],
): Promise<void> {
  await db.insert(prompts).values(row);
  await db.insert(promptVersions).values(firstVersion);
  await insertTags(db, row.id, row.projectId as string, tags);
}

async function insertTags(db: Queryable, promptId: string, projectId: string, tags: readonly string[]) {
  if (tags.length > 0) {
    await db.insert(promptTags).values(tags.map((tag) => ({ promptId, tag, projectId })));
  }
}

export async function replaceTags(
  db: Queryable,
  promptId: string,
  projectId: string,
  tags: readonly string[],
) {
  await db.delete(promptTags).where(eq(promptTags.promptId, promptId));
  await insertTags(db, promptId, projectId, tags);
}

/**
 * Optimistic update: applies only if the row still has `expectedRevision`, and bumps it.
 * Returns false when another change got there first.
 */
export async function updatePromptRow(
  db: Queryable,
  id: string,
  expectedRevision: number,
  changes: Partial<
    Pick<PromptRow, "name" | "title" | "status" | "currentVersion" | "metadata" | "deletedAt">
  > & {
    updatedAt: number;
  },
): Promise<boolean> {
  const result = await db
    .update(prompts)
    .set({ ...changes, revision: expectedRevision + 1 })
    .where(and(eq(prompts.id, id), eq(prompts.revision, expectedRevision)))
    .run();
  return result.rowsAffected === 1;
}

export async function insertVersion(db: Queryable, row: typeof promptVersions.$inferInsert) {
  await db.insert(promptVersions).values(row);
}

export async function upsertLabel(db: Queryable, row: typeof promptLabels.$inferInsert) {
  await db
    .insert(promptLabels)
    .values(row)
    .onConflictDoUpdate({
      target: [promptLabels.promptId, promptLabels.label],
      set: { version: row.version, updatedBy: row.updatedBy, updatedAt: row.updatedAt },
    });
}

export async function deleteLabel(db: Queryable, promptId: string, label: string) {
  await db
    .delete(promptLabels)
    .where(and(eq(promptLabels.promptId, promptId), eq(promptLabels.label, label)));
}

export async function purgePrompt(db: Queryable, projectId: string, id: string): Promise<boolean> {
  const result = await db
    .delete(prompts)
    .where(and(eq(prompts.id, id), eq(prompts.projectId, projectId)))
    .run();
  return result.rowsAffected === 1;
}

// ---- versions --------------------------------------------------------------------------------------------

/**
 * ListPromptVersions: the primary key (prompt_id, version) walked backwards. The BASIC view reads no bodies
 * (content, messages, diff come back empty): a page of large versions then costs the database, and a remote
 * engine's answer (sqld refuses answers over 10 MB), only the small columns.
 */
export function listVersionsQuery(
  db: Queryable,
  promptId: string,
  beforeVersion: number | undefined,
  limit: number,
  view: "basic" | "full" = "full",
) {
  const columns =
    view === "full"
      ? getTableColumns(promptVersions)
      : {
          ...getTableColumns(promptVersions),
          content: sql<string>`''`.as("content"),
          messages: sql<string | null>`NULL`.as("messages"),
          diff: sql<string>`''`.as("diff"),
        };
  return db
    .select(columns)
    .from(promptVersions)
    .where(
      and(
        eq(promptVersions.promptId, promptId),
        beforeVersion === undefined ? undefined : lt(promptVersions.version, beforeVersion),
      ),
    )
    .orderBy(desc(promptVersions.version))
    .limit(limit);
}

// ---- templates -------------------------------------------------------------------------------------------

export function findTemplate(db: Queryable, projectId: string, id: string) {
  return db
    .select()
    .from(promptTemplates)
    .where(and(eq(promptTemplates.id, id), eq(promptTemplates.projectId, projectId)))
    .get();
}

export function findTemplateByName(db: Queryable, projectId: string, name: string) {
  return db
    .select()
    .from(promptTemplates)
    .where(and(eq(promptTemplates.projectId, projectId), eq(promptTemplates.name, name)))
    .get();
}

export function listTemplatesQuery(
  db: Queryable,
  projectId: string,
  after: { createdAt: number; id: string } | undefined,
  limit: number,
) {
  return db
    .select()
    .from(promptTemplates)
    .where(
      and(
        eq(promptTemplates.projectId, projectId),
        after === undefined
          ? undefined
          : sql`(${promptTemplates.createdAt}, ${promptTemplates.id}) < (${after.createdAt}, ${after.id})`,
      ),
    )
    .orderBy(desc(promptTemplates.createdAt), desc(promptTemplates.id))
    .limit(limit);
}

export async function insertTemplate(db: Queryable, row: PromptTemplateRow) {
  await db.insert(promptTemplates).values(row);
}

// ---- events ----------------------------------------------------------------------------------------------

export async function insertEvent(
  db: Queryable,
  event: {
    eventId: string;
    type: PromptEventTypeValue;
    promptId: string;
    projectId: string;
    name: string;
    ownerId: string;
    version: number;
    label?: string | null;
    occurredAt: number;
  },
) {
  await db.insert(promptEvents).values({ ...event, label: event.label ?? null });
}

/** A feed: one project's events, or (`*`, the all-projects principal) every project's. */
export type FeedScope = string;

/**
 * ListPromptEvents / WatchPromptEvents: the rowid (sequence) range after a position; one project's events
 * walk `prompt_events_project_sequence_idx` instead.
 */
export function listEventsQuery(db: Queryable, project: FeedScope, afterSequence: number, limit: number) {
  return db
    .select()
    .from(promptEvents)
    .where(
      and(
        project === allProjects ? undefined : eq(promptEvents.projectId, project),
        gt(promptEvents.sequence, afterSequence),
      ),
    )
    .orderBy(asc(promptEvents.sequence))
    .limit(limit);
}

export async function lastEventSequence(db: Queryable, project: FeedScope): Promise<number> {
  const row = await db
    .select({ sequence: promptEvents.sequence })
    .from(promptEvents)
    .where(project === allProjects ? undefined : eq(promptEvents.projectId, project))
    .orderBy(desc(promptEvents.sequence))
    .limit(1)
    .get();
  return row?.sequence ?? 0;
}

// ---- label history ---------------------------------------------------------------------------------------

export async function insertLabelMove(db: Queryable, move: Omit<LabelMoveRow, "sequence">) {
  await db.insert(promptLabelHistory).values(move);
}

/** ListPromptLabelHistory: a prompt's moves (of one label, when given), newest first, keyset on sequence. */
export function listLabelMovesQuery(
  db: Queryable,
  promptId: string,
  label: string | undefined,
  beforeSequence: number | undefined,
  limit: number,
) {
  return db
    .select()
    .from(promptLabelHistory)
    .where(
      and(
        eq(promptLabelHistory.promptId, promptId),
        label === undefined ? undefined : eq(promptLabelHistory.label, label),
        beforeSequence === undefined ? undefined : lt(promptLabelHistory.sequence, beforeSequence),
      ),
    )
    .orderBy(desc(promptLabelHistory.sequence))
    .limit(limit);
}

// ---- project settings ------------------------------------------------------------------------------------

export function findProjectSettings(db: Queryable, projectId: string) {
  return db.select().from(projectSettings).where(eq(projectSettings.projectId, projectId)).get();
}

export async function upsertProjectSettings(db: Queryable, row: typeof projectSettings.$inferInsert) {
  await db
    .insert(projectSettings)
    .values(row)
    .onConflictDoUpdate({
      target: projectSettings.projectId,
      set: {
        protectedLabels: row.protectedLabels,
        ...(row.gatedLabels === undefined ? {} : { gatedLabels: row.gatedLabels }),
        updatedBy: row.updatedBy,
        updatedAt: row.updatedAt,
      },
    });
}

// ---- idempotency -----------------------------------------------------------------------------------------

/** AIP-155 request ids over this service's `idempotency_keys` table. */
export const requestIds = createRequestIds<Queryable>(idempotencyKeyStore);
