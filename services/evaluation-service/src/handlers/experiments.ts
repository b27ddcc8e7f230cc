import type { FieldViolation } from "@autoforge/server";
import { versionDigestsQuery } from "../db/dataset-repository.js";
import {
  incompleteItemsQuery,
  type Queryable,
  recordedTrialCountQuery,
  recordedTrialsQuery,
  trialsOfItemsQuery,
} from "../db/repository.js";
import type { EvaluationRow } from "../db/schema.js";
import {
  experimentIncomplete,
  InvalidArgumentError,
  type TrialRef,
  trialAlreadyRecorded,
} from "../domain/errors.js";
import { limits } from "../domain/limits.js";
import { requireDataset, requireVersion } from "./dataset-versions.js";

/**
 * The rules that make an evaluation an experiment: it runs over one committed dataset version, and each result
 * is one (item, trial) of it. The handlers check them here, inside their unit of work, so a refusal names the
 * field; the insert triggers and the partial UNIQUE index of 0005_experiments.sql are the backstop.
 */

/** What CreateEvaluation stores for an experiment: the version must be a committed one of the call's project. */
export async function resolveExperiment(
  tx: Queryable,
  projectId: string,
  req: { datasetId: string; datasetVersion: number; trialsPerItem: number },
): Promise<Pick<EvaluationRow, "datasetId" | "datasetVersion" | "trialsPerItem">> {
  if (req.datasetId === "") return { datasetId: null, datasetVersion: null, trialsPerItem: null };
  const dataset = await requireDataset(tx, projectId, req.datasetId);
  const version = await requireVersion(tx, dataset.id, req.datasetVersion);
  return { datasetId: dataset.id, datasetVersion: version.version, trialsPerItem: req.trialsPerItem || 1 };
}

/** A result's experiment fields as the request gives them ("" and 0 when unset). */
export interface ResultTrial {
  readonly datasetItemId: string;
  readonly trial: number;
}

/**
 * RecordTestResults' experiment rules for one batch, before anything is written. The validator has already
 * checked that an item and a trial come together and that no pair repeats within the batch.
 * - ad-hoc evaluation: no result may name an item or a trial (INVALID_ARGUMENT `results[i].dataset_item_id`);
 * - experiment: every result names an item of the version (`results[i].dataset_item_id`) and a trial in
 *   1..trials_per_item (`results[i].trial`); every violation of the batch is reported at once;
 * - a pair that already has a result: ALREADY_EXISTS (TRIAL_ALREADY_RECORDED) naming the first such result.
 */
export async function checkResultTrials(
  tx: Queryable,
  evaluation: EvaluationRow,
  results: readonly ResultTrial[],
): Promise<void> {
  const violations: FieldViolation[] = [];
  const { datasetId, datasetVersion, trialsPerItem } = evaluation;
  if (datasetId === null || datasetVersion === null || trialsPerItem === null) {
    results.forEach((r, i) => {
      if (r.datasetItemId !== "" || r.trial !== 0) {
        violations.push({
          field: `results[${i}].dataset_item_id`,
          description: `evaluation ${evaluation.id} runs over no dataset: its results name no dataset item or trial`,
        });
      }
    });
    throwIfAny(violations);
    return;
  }
  const itemIds = [...new Set(results.map((r) => r.datasetItemId).filter((id) => id !== ""))];
  const known = new Set(
    itemIds.length === 0
      ? []
      : (await versionDigestsQuery(tx, datasetId, datasetVersion, itemIds)).map((r) => r.itemId),
  );
  results.forEach((r, i) => {
    if (r.datasetItemId === "") {
      violations.push({
        field: `results[${i}].dataset_item_id`,
        description: `required: evaluation ${evaluation.id} is an experiment over dataset ${datasetId} version ${datasetVersion}`,
      });
    } else if (!known.has(r.datasetItemId)) {
      violations.push({
        field: `results[${i}].dataset_item_id`,
        description: `${r.datasetItemId} is not an item of dataset ${datasetId} version ${datasetVersion}`,
      });
    }
    if (r.trial < 1 || r.trial > trialsPerItem) {
      violations.push({ field: `results[${i}].trial`, description: `must be 1 to ${trialsPerItem}` });
    }
  });
  throwIfAny(violations);
  const pairs = results.map((r) => ({ itemId: r.datasetItemId, trial: r.trial }));
  const stored = new Set(
    (await recordedTrialsQuery(tx, evaluation.id, pairs)).map((p) => `${p.itemId}\0${Number(p.trial)}`),
  );
  const index = pairs.findIndex((p) => stored.has(`${p.itemId}\0${p.trial}`));
  const repeated = pairs[index];
  if (repeated !== undefined) throw trialAlreadyRecorded(evaluation.id, `results[${index}]`, repeated);
}

function throwIfAny(violations: FieldViolation[]): void {
  const [first, ...rest] = violations;
  if (first !== undefined) throw new InvalidArgumentError([first, ...rest]);
}

/**
 * CompleteEvaluation's rule for an experiment: every (item, trial) of the version has a result, unless
 * `allowPartial`. Counted in SQL (the version's item_count times trials_per_item, minus the experiment's range of
 * the partial UNIQUE index), so 100,000 items x 100 trials cost a count, not a read of the rows. Only when some
 * are missing does it look for the first few, walking the version's items in order until it has them.
 */
export async function requireComplete(
  tx: Queryable,
  evaluation: EvaluationRow,
  allowPartial: boolean,
): Promise<void> {
  const { datasetId, datasetVersion, trialsPerItem } = evaluation;
  if (allowPartial || datasetId === null || datasetVersion === null || trialsPerItem === null) return;
  const version = await requireVersion(tx, datasetId, datasetVersion);
  const [row] = await recordedTrialCountQuery(tx, evaluation.id);
  const missing = version.itemCount * trialsPerItem - (row?.recorded ?? 0);
  if (missing <= 0) return;
  const listed = limits.missingTrialsListed;
  const items = await incompleteItemsQuery(tx, {
    evaluationId: evaluation.id,
    datasetId,
    version: datasetVersion,
    trials: trialsPerItem,
    limit: listed,
  });
  const recorded = new Set(
    (
      await trialsOfItemsQuery(
        tx,
        evaluation.id,
        items.map((i) => i.itemId),
      )
    ).map((p) => `${p.itemId}\0${Number(p.trial)}`),
  );
  const first: TrialRef[] = [];
  for (const { itemId } of items) {
    for (let trial = 1; trial <= trialsPerItem && first.length < listed; trial++) {
      if (!recorded.has(`${itemId}\0${trial}`)) first.push({ itemId, trial });
    }
  }
  throw experimentIncomplete(evaluation.id, evaluation.status, missing, first);
}
