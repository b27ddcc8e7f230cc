// Typed errors come from the server kit: its one error mapper turns them into status codes and error details.
import { EvaluationSchema, TestResultSchema } from "@autoforge/contracts/evaluation/v1";
import { DatasetSchema, DatasetVersionSchema } from "@autoforge/contracts/evaluation/v1/datasets";
import { PromptSchema, PromptVersionSchema } from "@autoforge/contracts/prompt/v1";
import { AlreadyExistsError, FailedPreconditionError, NotFoundError } from "@autoforge/server";

export {
  AlreadyExistsError,
  FailedPreconditionError,
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
} from "@autoforge/server";

// The errors this service raises most, built in one place so the reasons, metadata and resource names
// (docs/errors.md) stay the same wherever they are thrown.

export function evaluationNotFound(id: string): NotFoundError {
  return new NotFoundError(
    `evaluation ${id} not found`,
    { type: EvaluationSchema.typeName, name: id },
    { reason: "EVALUATION_NOT_FOUND", metadata: { evaluation: id } },
  );
}

/** The prompt (version 0) or version an evaluation is about, as prompt-service does not know it. */
export function promptNotFound(prompt: string, version = 0): NotFoundError {
  if (version === 0) {
    return new NotFoundError(
      `prompt ${prompt} not found`,
      { type: PromptSchema.typeName, name: prompt },
      { reason: "PROMPT_NOT_FOUND", metadata: { prompt } },
    );
  }
  return new NotFoundError(
    `version ${version} of prompt ${prompt} not found`,
    { type: PromptVersionSchema.typeName, name: `${prompt}@${version}` },
    { reason: "VERSION_NOT_FOUND", metadata: { prompt, version: String(version) } },
  );
}

export function promptDeleted(prompt: string): FailedPreconditionError {
  const description = `prompt ${prompt} is deleted: restore it before evaluating it`;
  return new FailedPreconditionError(description, {
    reason: "PROMPT_DELETED",
    metadata: { prompt },
    preconditionViolations: [{ type: "STATE", subject: prompt, description }],
  });
}

/**
 * The evaluation is not in a status the call allows: `reason` names the rule (docs/errors.md), `message` says
 * what the status is and what is needed.
 */
export function evaluationState(
  id: string,
  status: string,
  message: string,
  { reason = "EVALUATION_STATE" }: { reason?: string } = {},
): FailedPreconditionError {
  return new FailedPreconditionError(message, {
    reason,
    metadata: { evaluation: id, status: status.toUpperCase() },
    preconditionViolations: [{ type: "STATE", subject: id, description: message }],
  });
}

export function datasetNotFound(id: string): NotFoundError {
  return new NotFoundError(
    `dataset ${id} not found`,
    { type: DatasetSchema.typeName, name: id },
    { reason: "DATASET_NOT_FOUND", metadata: { dataset: id } },
  );
}

export function datasetVersionNotFound(dataset: string, version: number): NotFoundError {
  return new NotFoundError(
    `version ${version} of dataset ${dataset} not found`,
    { type: DatasetVersionSchema.typeName, name: `${dataset}@${version}` },
    { reason: "DATASET_VERSION_NOT_FOUND", metadata: { dataset, version: String(version) } },
  );
}

/** A dataset name is unique in its project (the same reason prompt-service gives for prompt names). */
export function datasetNameTaken(name: string, project: string): AlreadyExistsError {
  return new AlreadyExistsError(`name: a dataset named ${name} already exists in project ${project}`, {
    reason: "NAME_TAKEN",
    metadata: { kind: "dataset", name, project },
    resource: { type: DatasetSchema.typeName, name: `${project}/${name}` },
  });
}

/** One (dataset item, trial) of an experiment. */
export interface TrialRef {
  readonly itemId: string;
  readonly trial: number;
}

/** How a (dataset item, trial) pair is named in error subjects and resource names: `/` is not in an item id. */
export function trialName(p: TrialRef): string {
  return `${p.itemId}/${p.trial}`;
}

/**
 * A result for this (item, trial) of the experiment is already recorded: each pair is recorded once
 * (test_results_evaluation_item_trial_idx). `field` is the request's result that repeats it.
 */
export function trialAlreadyRecorded(evaluation: string, field: string, p: TrialRef): AlreadyExistsError {
  return new AlreadyExistsError(
    `${field}: item ${p.itemId} trial ${p.trial} already has a result in evaluation ${evaluation}`,
    {
      reason: "TRIAL_ALREADY_RECORDED",
      metadata: { evaluation, field, datasetItemId: p.itemId, trial: String(p.trial) },
      resource: { type: TestResultSchema.typeName, name: `${evaluation}/${trialName(p)}` },
    },
  );
}

/**
 * CompleteEvaluation of an experiment with (item, trial) pairs still without a result: how many, and the first
 * few in item order as PreconditionFailure violations (type `MISSING_RESULT`, subject `item/trial`).
 */
export function experimentIncomplete(
  id: string,
  status: string,
  missing: number,
  first: readonly TrialRef[],
): FailedPreconditionError {
  const listed = first.map((p) => `item ${p.itemId} trial ${p.trial}`).join(", ");
  const message =
    `evaluation ${id} is missing ${missing} (dataset item, trial) result${missing === 1 ? "" : "s"}` +
    `${listed === "" ? "" : ` (first: ${listed})`}: record them, or complete it with allow_partial`;
  return new FailedPreconditionError(message, {
    reason: "EXPERIMENT_INCOMPLETE",
    metadata: { evaluation: id, status: status.toUpperCase(), missing: String(missing) },
    preconditionViolations: first.map((p) => ({
      type: "MISSING_RESULT",
      subject: trialName(p),
      description: `no result for item ${p.itemId}, trial ${p.trial}`,
    })),
  });
}

/** PromotePromptVersion for a label without a policy. */
export function policyNotFound(label: string, project: string): FailedPreconditionError {
  return new FailedPreconditionError(
    `label ${label} of project ${project} has no promotion policy: set one with SetPromotionPolicy`,
    { reason: "POLICY_NOT_FOUND", metadata: { label, project } },
  );
}

/** A promotion whose rules did not hold: each failed rule a violation with its numbers. */
export function promotionRefused(
  promotion: string,
  failed: readonly { rule: string; measured: number; threshold: number; detail: string }[],
): FailedPreconditionError {
  return new FailedPreconditionError(
    `promotion refused (decision ${promotion}): ${failed.map((r) => `${r.rule} (${r.detail})`).join("; ")}`,
    {
      reason: "PROMOTION_REFUSED",
      metadata: { promotion, failedRules: failed.map((r) => r.rule).join(",") },
      preconditionViolations: failed.map((r) => ({
        type: "PROMOTION_RULE",
        subject: r.rule,
        description: `${r.detail}; measured ${r.measured}, threshold ${r.threshold}`,
      })),
    },
  );
}

/** CompareEvaluations of an ad-hoc evaluation: only experiments have dataset items to pair. */
export function notAnExperiment(id: string, role: "baseline" | "candidate"): FailedPreconditionError {
  const description = `the ${role} evaluation ${id} is ad-hoc: only experiments (evaluations over a dataset version) can be compared item by item`;
  return new FailedPreconditionError(description, {
    reason: "NOT_AN_EXPERIMENT",
    metadata: { evaluation: id, role },
    preconditionViolations: [{ type: "STATE", subject: id, description }],
  });
}

/** CompareEvaluations of two experiments over different datasets or dataset versions. */
export function datasetVersionMismatch(
  baseline: { id: string; datasetId: string; datasetVersion: number },
  candidate: { id: string; datasetId: string; datasetVersion: number },
): FailedPreconditionError {
  const description =
    `the baseline ${baseline.id} ran over dataset ${baseline.datasetId} version ${baseline.datasetVersion}, ` +
    `the candidate ${candidate.id} over dataset ${candidate.datasetId} version ${candidate.datasetVersion}: ` +
    "a paired comparison needs the same dataset version";
  return new FailedPreconditionError(description, {
    reason: "DATASET_VERSION_MISMATCH",
    metadata: {
      baseline: baseline.id,
      candidate: candidate.id,
      baselineDataset: baseline.datasetId,
      baselineVersion: String(baseline.datasetVersion),
      candidateDataset: candidate.datasetId,
      candidateVersion: String(candidate.datasetVersion),
    },
    preconditionViolations: [{ type: "STATE", subject: candidate.id, description }],
  });
}
