/** Limits from the proto comments: one place, shared by validators, domain rules and tests. */
export const limits = {
  providerMaxChars: 100,
  modelMaxChars: 200,
  reasonMaxChars: 2000,
  requestIdMaxChars: 64,
  testNameMaxChars: 255,
  /** input / expected_output / actual_output, UTF-8 bytes. */
  testTextMaxBytes: 64 * 1024,
  /** Serialized JSON of `metadata`. */
  structMaxBytes: 64 * 1024,
  resultsPerBatchMax: 1000,
  /** Results per ExportTestResults message: `batch_size`'s default and maximum. */
  exportBatchDefault: 500,
  exportBatchMax: 1000,
  datasetNameMaxChars: 100,
  datasetDescriptionMaxChars: 2000,
  /** Items of one dataset version, however it was built. */
  datasetVersionItemsMax: 100_000,
  /** Items (and removed ids) of one CreateDatasetVersion call. */
  datasetItemsPerRequestMax: 1000,
  datasetItemIdMaxChars: 128,
  /** `json_input` (as JSON) / `text_input`, and `expected_output`, UTF-8 bytes. */
  datasetItemTextMaxBytes: 64 * 1024,
  /** An item's `metadata` as JSON. */
  datasetItemMetadataMaxBytes: 16 * 1024,
  datasetItemTagsMax: 20,
  /**
   * What one UploadDatasetItems stream may hold in all (item texts and JSON, UTF-16 units as a cheap bound of
   * the bytes): the stream is kept in memory until its commit, so this bounds an upload's memory.
   */
  datasetUploadMaxChars: 256 * 1024 * 1024,
  /** Removed ids of one UploadDatasetItems stream (removing more: upload the version from scratch). */
  datasetUploadRemovedMax: 10_000,
  datasetItemTagMaxChars: 100,
  /** Trials per item of an experiment (`trials_per_item`; the evaluations_experiment_valid trigger). */
  trialsPerItemMax: 100,
  /** Named scores an evaluation declares (evaluation_scores_position_range). */
  scoresPerEvaluationMax: 20,
  scoreNameMaxChars: 64,
  /** Categories of a categorical score (evaluation_scores_kind_shape). */
  scoreCategoriesMin: 2,
  scoreCategoriesMax: 50,
  scoreCategoryMaxChars: 100,
  /** The range a numeric score may declare (evaluation_scores_kind_shape). */
  scoreBound: 1e15,
  /** (item, trial) pairs listed in an EXPERIMENT_INCOMPLETE error. */
  missingTrialsListed: 10,
} as const;

/** An item id given by a caller: what `dataset_items_item_id_form` accepts. */
export const datasetItemIdPattern = /^[A-Za-z0-9._:-]+$/;

export const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Characters as SQLite's length() counts them (code points), not UTF-16 units. */
export function charLength(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

export function utf8Bytes(s: string): number {
  return Buffer.byteLength(s, "utf8");
}
