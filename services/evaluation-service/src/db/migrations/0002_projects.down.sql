-- Reverts 0002_projects exactly: triggers and indexes first (DROP COLUMN refuses a column they use), then the
-- owner indexes of 0000_init, then the column (ALTER TABLE DROP COLUMN rewrites the rows in place: no table
-- rebuild, so no cascade into test_results).
DROP TRIGGER IF EXISTS evaluations_project_immutable;
--> statement-breakpoint
DROP TRIGGER IF EXISTS evaluations_project_valid;
--> statement-breakpoint
DROP INDEX IF EXISTS `evaluations_project_status_created_idx`;
--> statement-breakpoint
DROP INDEX IF EXISTS `evaluations_project_created_idx`;
--> statement-breakpoint
CREATE INDEX `evaluations_owner_created_idx` ON `evaluations` (`owner_id`,`created_at`,`id`);
--> statement-breakpoint
CREATE INDEX `evaluations_owner_status_created_idx` ON `evaluations` (`owner_id`,`status`,`created_at`,`id`);
--> statement-breakpoint
ALTER TABLE `evaluations` DROP COLUMN `project_id`;
