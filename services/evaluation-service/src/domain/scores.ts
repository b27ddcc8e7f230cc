import type { FieldViolation } from "@autoforge/server";
import type {
  EvaluationScoreRow,
  ScoreDirectionValue,
  ScoreKindValue,
  TestResultScoreRow,
} from "../db/schema.js";

/**
 * Named scores: what an evaluation declares, and the rules a result's values follow. Pure functions over plain
 * values; the handlers call them inside their unit of work so a refusal names the field, and the CHECKs, the
 * foreign key and the triggers of 0006_scores.sql refuse the same things at the database.
 */

/** A declared score as the domain sees it (evaluation_scores with its categories parsed). */
export interface ScoreDeclaration {
  readonly name: string;
  readonly position: number;
  readonly kind: ScoreKindValue;
  readonly min: number | null;
  readonly max: number | null;
  readonly categories: readonly string[];
  readonly direction: ScoreDirectionValue;
}

/** One value as a request gives it (the `value` oneof of ScoreValue). */
export type ScoreInput =
  | { readonly case: "number"; readonly value: number }
  | { readonly case: "boolean"; readonly value: boolean }
  | { readonly case: "category"; readonly value: string }
  | { readonly case: undefined; readonly value?: undefined };

export const scoreNamePattern = /^[a-z][a-z0-9_]*$/;
/** The default scores: the `passed` and `score` columns every result has. */
export const defaultScoreNames: ReadonlySet<string> = new Set(["passed", "score"]);

const caseOfKind: Record<ScoreKindValue, ScoreInput["case"]> = {
  numeric: "number",
  boolean: "boolean",
  categorical: "category",
};

export function declarationOf(row: EvaluationScoreRow): ScoreDeclaration {
  return {
    name: row.name,
    position: row.position,
    kind: row.kind,
    min: row.minValue,
    max: row.maxValue,
    categories: row.categories === null ? [] : (JSON.parse(row.categories) as string[]),
    direction: row.direction,
  };
}

export function declarationRow(evaluationId: string, d: ScoreDeclaration): EvaluationScoreRow {
  return {
    evaluationId,
    name: d.name,
    position: d.position,
    kind: d.kind,
    minValue: d.min,
    maxValue: d.max,
    categories: d.kind === "categorical" ? JSON.stringify(d.categories) : null,
    direction: d.direction,
  };
}

/** A value as stored: the number, 1/0 for a boolean, the category's index. */
function storedValue(d: ScoreDeclaration, input: ScoreInput): number {
  if (input.case === "boolean") return input.value ? 1 : 0;
  if (input.case === "category") return d.categories.indexOf(input.value);
  return input.value as number;
}

/** A stored value back as the request's oneof. */
export function scoreInputOf(d: ScoreDeclaration, value: number): ScoreInput {
  if (d.kind === "boolean") return { case: "boolean", value: value === 1 };
  if (d.kind === "categorical") return { case: "category", value: d.categories[value] ?? "" };
  return { case: "number", value };
}

export interface ResultScores {
  readonly scores: readonly { readonly name: string; readonly value: ScoreInput }[];
}

/**
 * Each result's values against the declarations: every declared score exactly once, of its kind, a number in
 * its range, a known category; nothing undeclared. Every violation of the batch, named
 * `results[i].scores[j].<field>` (or `results[i].scores` for a missing score).
 */
export function checkResultScores(
  declarations: readonly ScoreDeclaration[],
  results: readonly ResultScores[],
  field: (i: number) => string = (i) => `results[${i}]`,
): FieldViolation[] {
  const violations: FieldViolation[] = [];
  const byName = new Map(declarations.map((d) => [d.name, d]));
  results.forEach((r, i) => {
    const seen = new Set<string>();
    r.scores.forEach((s, j) => {
      const at = `${field(i)}.scores[${j}]`;
      const d = byName.get(s.name);
      if (d === undefined) {
        violations.push({
          field: `${at}.name`,
          description:
            declarations.length === 0
              ? `the evaluation declares no scores: ${s.name} is unknown`
              : `${s.name} is not a declared score (${declarations.map((x) => x.name).join(", ")})`,
        });
        return;
      }
      if (seen.has(s.name)) {
        violations.push({ field: `${at}.name`, description: `${s.name} is given twice` });
        return;
      }
      seen.add(s.name);
      const expected = caseOfKind[d.kind];
      if (s.value.case !== expected) {
        violations.push({
          field: `${at}.${expected}`,
          description: `${s.name} is ${d.kind}: its value is ${expected}`,
        });
      } else if (
        s.value.case === "number" &&
        !(s.value.value >= (d.min ?? 0) && s.value.value <= (d.max ?? 0))
      ) {
        violations.push({ field: `${at}.number`, description: `must be between ${d.min} and ${d.max}` });
      } else if (s.value.case === "category" && !d.categories.includes(s.value.value)) {
        violations.push({
          field: `${at}.category`,
          description: `${JSON.stringify(s.value.value)} is not a category of ${s.name} (${d.categories.join(", ")})`,
        });
      }
    });
    const missing = declarations.filter((d) => !seen.has(d.name));
    if (missing.length > 0) {
      violations.push({
        field: `${field(i)}.scores`,
        description: `missing ${missing.map((d) => d.name).join(", ")}: every declared score needs a value`,
      });
    }
  });
  return violations;
}

/** The rows of one result's (checked) values. */
export function scoreRows(
  declarations: readonly ScoreDeclaration[],
  result: { readonly id: string; readonly evaluationId: string; readonly datasetItemId: string | null },
  scores: ResultScores["scores"],
): TestResultScoreRow[] {
  const byName = new Map(declarations.map((d) => [d.name, d]));
  return scores.map((s) => {
    const d = byName.get(s.name) as ScoreDeclaration;
    return {
      resultId: result.id,
      name: s.name,
      evaluationId: result.evaluationId,
      datasetItemId: result.datasetItemId,
      value: storedValue(d, s.value),
    };
  });
}
