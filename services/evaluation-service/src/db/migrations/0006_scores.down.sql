-- Reverts 0006_scores: the declared scores and every result's values are dropped (the results themselves, with
-- their default passed/score, stay), and ComparePromptVersions' index goes back to (prompt_id, prompt_version).
DROP TRIGGER IF EXISTS test_result_scores_immutable;
--> statement-breakpoint
DROP TRIGGER IF EXISTS test_result_scores_value;
--> statement-breakpoint
DROP TRIGGER IF EXISTS test_result_scores_of_result;
--> statement-breakpoint
DROP TRIGGER IF EXISTS evaluation_scores_immutable;
--> statement-breakpoint
DROP TRIGGER IF EXISTS evaluation_scores_while_pending;
--> statement-breakpoint
DROP TRIGGER IF EXISTS evaluation_scores_categories;
--> statement-breakpoint
DROP TABLE IF EXISTS `test_result_scores`;
--> statement-breakpoint
DROP TABLE IF EXISTS `evaluation_scores`;
--> statement-breakpoint
DROP INDEX IF EXISTS `evaluations_prompt_compare_idx`;
--> statement-breakpoint
CREATE INDEX `evaluations_prompt_version_idx` ON `evaluations` (`prompt_id`,`prompt_version`);
