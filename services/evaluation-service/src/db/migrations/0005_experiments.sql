-- Experiments: an evaluation may run over a committed dataset version with repeated trials, and each of its
-- results names the (dataset item, trial) it is for. No table rebuild (see 0002_projects): nullable ADD COLUMNs,
-- and the columns' rules as triggers (a CHECK or foreign key on a new column would need the rebuild). Existing
-- rows get NULLs: they stay ad-hoc evaluations and results.
ALTER TABLE `evaluations` ADD `dataset_id` text;--> statement-breakpoint
ALTER TABLE `evaluations` ADD `dataset_version` integer;--> statement-breakpoint
ALTER TABLE `evaluations` ADD `trials_per_item` integer;--> statement-breakpoint
ALTER TABLE `test_results` ADD `dataset_item_id` text;--> statement-breakpoint
ALTER TABLE `test_results` ADD `trial` integer;--> statement-breakpoint
CREATE UNIQUE INDEX `test_results_evaluation_item_trial_idx` ON `test_results` (`evaluation_id`,`dataset_item_id`,`trial`) WHERE dataset_item_id IS NOT NULL;--> statement-breakpoint
-- An experiment names all three, with 1..100 trials per item; an ad-hoc evaluation none.
CREATE TRIGGER evaluations_experiment_valid BEFORE INSERT ON evaluations
-- (coalesce: a NULL trials_per_item beside a dataset makes BETWEEN NULL, which must refuse, not pass)
WHEN NOT coalesce(
  (NEW.dataset_id IS NULL AND NEW.dataset_version IS NULL AND NEW.trials_per_item IS NULL) OR
  (NEW.dataset_id IS NOT NULL AND NEW.dataset_version IS NOT NULL AND NEW.trials_per_item BETWEEN 1 AND 100),
  0
)
BEGIN
  SELECT RAISE(ABORT, 'evaluations: dataset_id, dataset_version and trials_per_item (1 to 100) are all set or all NULL');
END;
--> statement-breakpoint
-- The reference to the dataset version, as a trigger (a foreign key would rebuild the table): a committed version
-- of a dataset of the evaluation's own project. Datasets and versions are never deleted (0004_datasets), so the
-- reference cannot dangle later, and deleting evaluations (the PURGED cascade) never touches a dataset.
CREATE TRIGGER evaluations_experiment_dataset BEFORE INSERT ON evaluations
WHEN NEW.dataset_id IS NOT NULL AND NOT EXISTS (
  SELECT 1 FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id
  WHERE v.dataset_id = NEW.dataset_id AND v.version = NEW.dataset_version AND v.committed = 1
    AND d.project_id = NEW.project_id
)
BEGIN
  SELECT RAISE(ABORT, 'evaluations: the dataset version does not exist in the evaluation''s project');
END;
--> statement-breakpoint
-- What an experiment runs over never changes.
CREATE TRIGGER evaluations_experiment_immutable BEFORE UPDATE OF dataset_id, dataset_version, trials_per_item ON evaluations
WHEN NEW.dataset_id IS NOT OLD.dataset_id OR NEW.dataset_version IS NOT OLD.dataset_version
  OR NEW.trials_per_item IS NOT OLD.trials_per_item
BEGIN
  SELECT RAISE(ABORT, 'evaluations: dataset, dataset version and trials per item cannot change');
END;
--> statement-breakpoint
-- An ad-hoc evaluation's results name no item and no trial.
CREATE TRIGGER test_results_ad_hoc_no_item BEFORE INSERT ON test_results
WHEN (NEW.dataset_item_id IS NOT NULL OR NEW.trial IS NOT NULL)
  AND (SELECT dataset_id FROM evaluations WHERE id = NEW.evaluation_id) IS NULL
BEGIN
  SELECT RAISE(ABORT, 'test_results: dataset_item_id and trial are only for an experiment''s results');
END;
--> statement-breakpoint
-- An experiment's result names an item of the evaluation's dataset version (a primary-key lookup in
-- dataset_version_items).
CREATE TRIGGER test_results_experiment_item BEFORE INSERT ON test_results
WHEN (SELECT dataset_id FROM evaluations WHERE id = NEW.evaluation_id) IS NOT NULL AND NOT EXISTS (
  SELECT 1 FROM evaluations e JOIN dataset_version_items i
    ON i.dataset_id = e.dataset_id AND i.version = e.dataset_version AND i.item_id = NEW.dataset_item_id
  WHERE e.id = NEW.evaluation_id
)
BEGIN
  SELECT RAISE(ABORT, 'test_results: dataset_item_id is not an item of the evaluation''s dataset version');
END;
--> statement-breakpoint
-- ... and a trial in 1..trials_per_item (each (item, trial) once: test_results_evaluation_item_trial_idx).
CREATE TRIGGER test_results_experiment_trial BEFORE INSERT ON test_results
WHEN (SELECT dataset_id FROM evaluations WHERE id = NEW.evaluation_id) IS NOT NULL AND (
  NEW.trial IS NULL OR NEW.trial < 1
  OR NEW.trial > coalesce((SELECT trials_per_item FROM evaluations WHERE id = NEW.evaluation_id), 0)
)
BEGIN
  SELECT RAISE(ABORT, 'test_results: trial must be 1 to the evaluation''s trials_per_item');
END;
