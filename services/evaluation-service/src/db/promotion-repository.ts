import { and, desc, eq, type SQL, sql } from "drizzle-orm";
import type { Queryable } from "./repository.js";
import {
  evaluations,
  type PromotionPolicyRow,
  type PromotionRow,
  type PromotionStatusValue,
  promotionPolicies,
  promotions,
} from "./schema.js";

/** The statements of the promotion gate (0007_promotions); plans in test/query-plans.test.ts. */

export function findPolicy(db: Queryable, projectId: string, label: string) {
  return db
    .select()
    .from(promotionPolicies)
    .where(and(eq(promotionPolicies.projectId, projectId), eq(promotionPolicies.label, label)))
    .get();
}

/** Creates or replaces a label's policy (one row per project and label). */
export async function upsertPolicy(db: Queryable, row: PromotionPolicyRow): Promise<void> {
  const { projectId: _p, label: _l, ...rest } = row;
  await db
    .insert(promotionPolicies)
    .values(row)
    .onConflictDoUpdate({ target: [promotionPolicies.projectId, promotionPolicies.label], set: rest });
}

/**
 * The latest COMPLETED experiment of a prompt version over a dataset (and, when given, one version of it): the
 * candidate or the baseline of a promotion. Walks evaluations_prompt_compare_idx's (prompt_id, prompt_version)
 * range, newest first by created_at among the few evaluations of one prompt version.
 */
export function latestCompletedExperimentQuery(
  db: Queryable,
  f: { projectId: string; promptId: string; version: number; datasetId: string; datasetVersion?: number },
) {
  const conditions: (SQL | undefined)[] = [
    eq(evaluations.promptId, f.promptId),
    eq(evaluations.promptVersion, f.version),
    sql`+${evaluations.projectId} = ${f.projectId}`,
    eq(evaluations.datasetId, f.datasetId),
    f.datasetVersion === undefined ? undefined : eq(evaluations.datasetVersion, f.datasetVersion),
    sql`+${evaluations.status} = 'completed'`,
  ];
  return db
    .select()
    .from(evaluations)
    .where(and(...conditions))
    .orderBy(desc(evaluations.createdAt), desc(evaluations.id))
    .limit(1)
    .get();
}

export async function insertPromotion(db: Queryable, row: PromotionRow): Promise<void> {
  await db.insert(promotions).values(row);
}

/** PENDING -> `status` (the promotions_transition trigger refuses any other change). */
export function settlePromotion(
  db: Queryable,
  id: string,
  change: { status: Exclude<PromotionStatusValue, "pending" | "refused">; error: string; updatedAt: number },
) {
  return db
    .update(promotions)
    .set(change)
    .where(and(eq(promotions.id, id), eq(promotions.status, "pending")))
    .returning()
    .get();
}

export interface ListPromotionsFilter {
  projectId: string;
  promptId?: string | undefined;
  after?: { createdAt: number; id: string } | undefined;
  limit: number;
}

/** ListPromotions: newest first along promotions_project_created_idx or, with a prompt, promotions_prompt_created_idx. */
export function listPromotionsQuery(db: Queryable, f: ListPromotionsFilter) {
  return db
    .select()
    .from(promotions)
    .where(
      and(
        eq(promotions.projectId, f.projectId),
        f.promptId === undefined ? undefined : eq(promotions.promptId, f.promptId),
        f.after === undefined
          ? undefined
          : sql`(${promotions.createdAt}, ${promotions.id}) < (${f.after.createdAt}, ${f.after.id})`,
      ),
    )
    .orderBy(desc(promotions.createdAt), desc(promotions.id))
    .limit(f.limit);
}
