-- Reverts 0005_experiments: triggers and the index first (DROP COLUMN refuses a column they use), then the
-- columns (ALTER TABLE DROP COLUMN rewrites the rows in place: no table rebuild, so no cascade into
-- test_results). Ad-hoc evaluations and their results are kept as they were; an experiment loses its dataset,
-- trials and its results' (item, trial), and stays an ordinary evaluation with the same results.
DROP TRIGGER IF EXISTS test_results_experiment_trial;
--> statement-breakpoint
DROP TRIGGER IF EXISTS test_results_experiment_item;
--> statement-breakpoint
DROP TRIGGER IF EXISTS test_results_ad_hoc_no_item;
--> statement-breakpoint
DROP TRIGGER IF EXISTS evaluations_experiment_immutable;
--> statement-breakpoint
DROP TRIGGER IF EXISTS evaluations_experiment_dataset;
--> statement-breakpoint
DROP TRIGGER IF EXISTS evaluations_experiment_valid;
--> statement-breakpoint
DROP INDEX IF EXISTS `test_results_evaluation_item_trial_idx`;
--> statement-breakpoint
ALTER TABLE `test_results` DROP COLUMN `trial`;
--> statement-breakpoint
ALTER TABLE `test_results` DROP COLUMN `dataset_item_id`;
--> statement-breakpoint
ALTER TABLE `evaluations` DROP COLUMN `trials_per_item`;
--> statement-breakpoint
ALTER TABLE `evaluations` DROP COLUMN `dataset_version`;
--> statement-breakpoint
ALTER TABLE `evaluations` DROP COLUMN `dataset_id`;
