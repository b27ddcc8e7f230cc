import type { Queryable } from "../db/repository.js";
import { scoreDeclarationsQuery, scoreValuesQuery } from "../db/score-repository.js";
import { declarationOf, type ScoreDeclaration } from "../domain/scores.js";

/** An evaluation's declared scores, in declaration order (none for an evaluation that declares none). */
export async function declarationsOf(tx: Queryable, evaluationId: string): Promise<ScoreDeclaration[]> {
  return (await scoreDeclarationsQuery(tx, [evaluationId])).map(declarationOf);
}

/** The declared scores of several evaluations (a list page): one query. */
export async function declarationsByEvaluation(
  tx: Queryable,
  evaluationIds: readonly string[],
): Promise<Map<string, ScoreDeclaration[]>> {
  const byEvaluation = new Map<string, ScoreDeclaration[]>();
  if (evaluationIds.length === 0) return byEvaluation;
  for (const row of await scoreDeclarationsQuery(tx, evaluationIds)) {
    const list = byEvaluation.get(row.evaluationId) ?? [];
    list.push(declarationOf(row));
    byEvaluation.set(row.evaluationId, list);
  }
  return byEvaluation;
}

/** The stored values of some results, by result id and score name; nothing to read when none is declared. */
export async function valuesOfResults(
  tx: Queryable,
  declarations: readonly ScoreDeclaration[],
  resultIds: readonly string[],
): Promise<Map<string, Map<string, number>>> {
  const byResult = new Map<string, Map<string, number>>();
  if (declarations.length === 0 || resultIds.length === 0) return byResult;
  for (const v of await scoreValuesQuery(tx, resultIds)) {
    const values = byResult.get(v.resultId) ?? new Map<string, number>();
    values.set(v.name, v.value);
    byResult.set(v.resultId, values);
  }
  return byResult;
}
