import {
  CompareEvaluationsRequestSchema,
  ComparePromptVersionsRequestSchema,
  CompleteEvaluationRequestSchema,
  CreateEvaluationRequestSchema,
  EvaluationStatus,
  ExportTestResultsRequestSchema,
  FailEvaluationRequestSchema,
  GetEvaluationRequestSchema,
  GetEvaluationSummaryRequestSchema,
  ListEvaluationsRequestSchema,
  ListTestResultsRequestSchema,
  NumericTest,
  RecordTestResultsRequestSchema,
  ScoreDirection,
  ScoreKind,
  StartEvaluationRequestSchema,
  StreamTestResultsRequestSchema,
  type TestResult,
} from "@autoforge/contracts/evaluation/v1";
import {
  createValidators,
  defineValidator,
  pageSizeRule,
  pageTokenRule,
  type Validators,
  type Violations,
} from "@autoforge/server";
import { z } from "zod";
import { limits } from "./domain/limits.js";
import { defaultScoreNames, scoreNamePattern } from "./domain/scores.js";
import { chars, datasetItemId, jsonObjectMaxBytes, maxBytes, requestId, uuid } from "./field-rules.js";

/**
 * One declaration of constraints per request message, run by the server kit before any handler: bad input
 * answers INVALID_ARGUMENT naming the field (`results[3].score`) and changes nothing. Rules that need the
 * database (which project an evaluation is in, its status) live in the handlers; the project and the caller's role
 * there are checked by the server kit before (src/access.ts).
 */

const struct = jsonObjectMaxBytes(limits.structMaxBytes).optional();
const knownStatus = z.enum(EvaluationStatus, "is not a known EvaluationStatus");
const score = z
  .number("must be a number")
  .min(0, "must be between 0 and 1")
  .max(1, "must be between 0 and 1");

/**
 * An experiment result's item id: empty (an ad-hoc result) or an id as datasets accept it. Whether the evaluation
 * is an experiment, and the item in its version, is the handler's to check.
 */
const resultItemId = z.union([z.literal(""), datasetItemId]);

const scoreName = z
  .string()
  .min(1, `must be 1 to ${limits.scoreNameMaxChars} characters`)
  .max(limits.scoreNameMaxChars, `must be 1 to ${limits.scoreNameMaxChars} characters`)
  .regex(scoreNamePattern, "must be a lowercase letter, then lowercase letters, digits and _");

/**
 * A declared score's shape by kind (NUMERIC: a finite range; BOOLEAN: nothing else; CATEGORICAL: distinct
 * categories). The names are checked for uniqueness across the declaration by CreateEvaluation's rule below.
 */
const scoreDefinition = z
  .object({
    name: scoreName.refine((n) => !defaultScoreNames.has(n), "passed and score are the default scores"),
    kind: z
      .enum(ScoreKind, "is not a known ScoreKind")
      .refine((k) => k !== ScoreKind.UNSPECIFIED, "is required"),
    min: z.number().optional(),
    max: z.number().optional(),
    categories: z.array(chars(1, limits.scoreCategoryMaxChars)),
    direction: z.enum(ScoreDirection, "is not a known ScoreDirection"),
  })
  .superRefine((d, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: "custom", path: [path], message });
    const bound = limits.scoreBound;
    if (d.kind === ScoreKind.NUMERIC) {
      if (d.min === undefined) issue("min", "required for a NUMERIC score");
      else if (!(Math.abs(d.min) <= bound)) issue("min", `must be between -${bound} and ${bound}`);
      if (d.max === undefined) issue("max", "required for a NUMERIC score");
      else if (!(Math.abs(d.max) <= bound)) issue("max", `must be between -${bound} and ${bound}`);
      else if (d.min !== undefined && !(d.min < d.max)) issue("max", "must be above min");
    } else {
      if (d.min !== undefined) issue("min", "only for a NUMERIC score");
      if (d.max !== undefined) issue("max", "only for a NUMERIC score");
    }
    if (d.kind === ScoreKind.CATEGORICAL) {
      const n = d.categories.length;
      if (n < limits.scoreCategoriesMin || n > limits.scoreCategoriesMax) {
        issue(
          "categories",
          `must hold ${limits.scoreCategoriesMin} to ${limits.scoreCategoriesMax} categories`,
        );
      } else if (new Set(d.categories).size !== n) issue("categories", "must not repeat a category");
    } else if (d.categories.length > 0) {
      issue("categories", "only for a CATEGORICAL score");
    }
  });

/**
 * A result's value of a score: a name and one of number / boolean / category. Whether the evaluation declares
 * it, of that kind and in range, is the handler's to check (domain/scores.ts).
 */
const scoreValue = z.object({
  name: scoreName,
  value: z.custom<{ case: string | undefined; value?: unknown }>(
    (v) => typeof v === "object" && v !== null && (v as { case?: unknown }).case !== undefined,
    "is required: number, boolean or category",
  ),
});

/** One test result of a batch; output-only fields (id, evaluation_id, create_time) are ignored. */
const testResult = z.object({
  name: chars(1, limits.testNameMaxChars),
  input: maxBytes(limits.testTextMaxBytes),
  expectedOutput: maxBytes(limits.testTextMaxBytes),
  actualOutput: maxBytes(limits.testTextMaxBytes),
  score,
  latencyMs: z.bigint().min(0n, "must be >= 0").max(BigInt(Number.MAX_SAFE_INTEGER), "is too large"),
  metadata: struct,
  datasetItemId: resultItemId,
  trial: z
    .int()
    .min(0, `must be 1 to ${limits.trialsPerItemMax}`)
    .max(limits.trialsPerItemMax, `must be 1 to ${limits.trialsPerItemMax}`),
  scores: z
    .array(scoreValue)
    .max(limits.scoresPerEvaluationMax, `at most ${limits.scoresPerEvaluationMax} scores`),
});

/**
 * A batch's cross-field rules (RecordTestResults, and each chunk of StreamTestResults): an item and a trial go
 * together; a pair appears once per batch (the handler checks it against the evaluation: an experiment needs
 * both, an ad-hoc evaluation neither).
 */
function batchRules(results: readonly TestResult[], violations: Violations): void {
  const first = new Map<string, number>();
  results.forEach((r, i) => {
    if (r.datasetItemId !== "" && r.trial === 0) {
      violations.add(`results[${i}].trial`, `required with dataset_item_id: 1 to ${limits.trialsPerItemMax}`);
    }
    if (r.datasetItemId === "" && r.trial !== 0) {
      violations.add(`results[${i}].dataset_item_id`, "required with trial");
    }
    if (r.datasetItemId === "" || r.trial === 0) return;
    const key = `${r.datasetItemId}\0${r.trial}`;
    const earlier = first.get(key);
    if (earlier === undefined) first.set(key, i);
    else
      violations.add(
        `results[${i}].trial`,
        `item ${r.datasetItemId} trial ${r.trial} is already in results[${earlier}]: each (item, trial) is recorded once`,
      );
  });
}

export const evaluationValidators: Validators = createValidators(
  defineValidator(
    CreateEvaluationRequestSchema,
    {
      promptId: uuid,
      promptVersion: z.int().min(0, "must be >= 0"),
      provider: chars(1, limits.providerMaxChars),
      model: chars(1, limits.modelMaxChars),
      metadata: struct,
      requestId,
      datasetId: z.union([z.literal(""), uuid]),
      datasetVersion: z.int().min(0, "must be >= 1"),
      trialsPerItem: z
        .int()
        .min(0, `must be 1 to ${limits.trialsPerItemMax}`)
        .max(limits.trialsPerItemMax, `must be 1 to ${limits.trialsPerItemMax}`),
      scores: z
        .array(scoreDefinition)
        .max(limits.scoresPerEvaluationMax, `at most ${limits.scoresPerEvaluationMax} scores`),
    },
    (req, violations) => {
      const names = new Map<string, number>();
      req.scores.forEach((s, i) => {
        const earlier = names.get(s.name);
        if (earlier !== undefined)
          violations.add(`scores[${i}].name`, `${s.name} is already scores[${earlier}]`);
        else names.set(s.name, i);
      });
      if (req.datasetId === "") {
        if (req.datasetVersion !== 0) violations.add("dataset_version", "only with dataset_id");
        if (req.trialsPerItem !== 0) violations.add("trials_per_item", "only with dataset_id");
      } else if (req.datasetVersion === 0) {
        violations.add("dataset_version", "required with dataset_id");
      }
    },
  ),
  defineValidator(GetEvaluationRequestSchema, { id: uuid }),
  defineValidator(ListEvaluationsRequestSchema, {
    promptId: z.union([z.literal(""), uuid]),
    status: knownStatus,
    pageSize: pageSizeRule(),
    pageToken: pageTokenRule,
  }),
  defineValidator(StartEvaluationRequestSchema, { id: uuid }),
  defineValidator(
    RecordTestResultsRequestSchema,
    {
      evaluationId: uuid,
      results: z
        .array(testResult)
        .min(1, "at least 1 result")
        .max(limits.resultsPerBatchMax, `at most ${limits.resultsPerBatchMax} results`),
      requestId,
    },
    (req, violations) => batchRules(req.results, violations),
  ),
  defineValidator(CompleteEvaluationRequestSchema, { id: uuid }),
  defineValidator(FailEvaluationRequestSchema, { id: uuid, reason: chars(1, limits.reasonMaxChars) }),
  defineValidator(ListTestResultsRequestSchema, {
    evaluationId: uuid,
    minScore: score.optional(),
    pageSize: pageSizeRule(),
    pageToken: pageTokenRule,
  }),
  // Each message of the stream, as the kit validates it on arrival (a later one's violations say which message
  // it is): a chunk as a RecordTestResults batch. The first message must name the evaluation and the request_id,
  // later ones may leave them empty (the handler checks the stream's rules across messages).
  defineValidator(
    StreamTestResultsRequestSchema,
    {
      evaluationId: z.union([z.literal(""), uuid]),
      requestId,
      chunkIndex: z.int().min(0, "must be >= 0"),
      results: z
        .array(testResult)
        .min(1, "at least 1 result")
        .max(limits.resultsPerBatchMax, `at most ${limits.resultsPerBatchMax} results`),
    },
    (req, violations) => batchRules(req.results, violations),
  ),
  defineValidator(ExportTestResultsRequestSchema, {
    evaluationId: uuid,
    minScore: score.optional(),
    datasetItemId: resultItemId,
    afterId: z.union([z.literal(""), uuid]),
    batchSize: z
      .int()
      .min(0, `must be 1 to ${limits.exportBatchMax}`)
      .max(limits.exportBatchMax, `must be 1 to ${limits.exportBatchMax}`),
  }),
  defineValidator(GetEvaluationSummaryRequestSchema, { id: uuid }),
  defineValidator(ComparePromptVersionsRequestSchema, { promptId: uuid }),
  defineValidator(
    CompareEvaluationsRequestSchema,
    {
      baselineId: uuid,
      candidateId: uuid,
      alpha: z
        .number("must be a number")
        .gt(0, "must be above 0 and below 0.5")
        .lt(0.5, "must be above 0 and below 0.5")
        .optional(),
      numericTest: z.enum(NumericTest, "is not a known NumericTest"),
    },
    (req, violations) => {
      if (req.baselineId !== "" && req.baselineId === req.candidateId)
        violations.add("candidate_id", "must be another evaluation than baseline_id");
    },
  ),
);
