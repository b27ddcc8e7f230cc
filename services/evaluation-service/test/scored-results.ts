import { ScoreKind } from "@autoforge/contracts/evaluation/v1";
import { uuidv7 } from "uuidv7";
import {
  type EvalClient,
  must,
  openTestDatabase,
  type ResultInput,
  result,
  startEvaluationService,
  stubPromptClient,
} from "./helpers.js";

/** Fixtures of the result-stream tests: an evaluation with three named scores, and results that carry them. */

export type ScoreValueInit =
  | { name: string; value: { case: "number"; value: number } }
  | { name: string; value: { case: "boolean"; value: boolean } }
  | { name: string; value: { case: "category"; value: string } };

/** A TestResult as a request sends it: helpers' `result` with scores and experiment fields. */
export interface ResultInit extends ResultInput {
  scores: ScoreValueInit[];
  datasetItemId?: string;
  trial?: number;
}

/** One StreamTestResults message. */
export interface Chunk {
  evaluationId?: string;
  requestId?: string;
  chunkIndex: number;
  results: ResultInit[];
}

/** The three scores every scored evaluation declares: numeric 0..10, boolean, categorical. */
export const declaredScores = [
  { name: "quality", kind: ScoreKind.NUMERIC, min: 0, max: 10 },
  { name: "safe", kind: ScoreKind.BOOLEAN },
  { name: "grade", kind: ScoreKind.CATEGORICAL, categories: ["bad", "ok", "good"] },
];

/** Result i (helpers' `result`) with its three score values. */
export function scoredResult(i: number, overrides: Partial<ResultInit> = {}): ResultInit {
  return {
    ...result(i),
    scores: [
      { name: "quality", value: { case: "number", value: i % 11 } },
      { name: "safe", value: { case: "boolean", value: i % 3 !== 0 } },
      { name: "grade", value: { case: "category", value: ["bad", "ok", "good"][i % 3] ?? "ok" } },
    ],
    ...overrides,
  };
}

/**
 * `count` chunks of `size` results, numbered from `from` (result names `test <n>` unique over the upload); the
 * first names the evaluation and the request_id, later ones leave them empty.
 */
export function chunks(
  evaluationId: string,
  requestId: string,
  count: number,
  size = 100,
  from = 0,
): Chunk[] {
  return Array.from({ length: count }, (_, c) => {
    const index = from + c;
    const results = Array.from({ length: size }, (_, k) => scoredResult(index * size + k));
    return c === 0 ? { evaluationId, requestId, chunkIndex: index, results } : { chunkIndex: index, results };
  });
}

export async function* stream(list: readonly Chunk[]): AsyncGenerator<Chunk> {
  for (const c of list) yield c;
}

/** evaluation-service alone on a test database, with one prompt in alice's project. */
export async function startScored() {
  const { db } = await openTestDatabase();
  const promptId = uuidv7();
  const svc = await startEvaluationService(
    db,
    stubPromptClient(new Map([[promptId, { project: "user:alice" }]])),
  );
  const alice = await svc.clients.evaluations("alice");
  /** A new evaluation with the three scores, RUNNING unless `start` is false. */
  const evaluation = async (start = true) => {
    const e = must(
      (await alice.createEvaluation({ promptId, provider: "p", model: "m", scores: declaredScores }))
        .evaluation,
    );
    if (start) await alice.startEvaluation({ id: e.id });
    return e.id;
  };
  return { db, svc, alice, promptId, evaluation };
}

/** Every result of the evaluation through ListTestResults (pages of 100). */
export async function listAll(
  client: EvalClient,
  evaluationId: string,
  filters: { passed?: boolean; minScore?: number } = {},
) {
  const out = [];
  let pageToken = "";
  do {
    const page = await client.listTestResults({ evaluationId, pageSize: 100, pageToken, ...filters });
    out.push(...page.testResults);
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return out;
}
