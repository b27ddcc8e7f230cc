-- Projects replace owners as the tenancy boundary: evaluations.project_id (the evaluated prompt's project).
-- No table rebuild: evaluations is the parent of test_results (ON DELETE CASCADE), and on sqld a rebuild's
-- DROP TABLE fires that cascade and empties test_results. So ADD COLUMN with a default, a backfill, and the
-- column's rules as triggers (a CHECK on a new column would need the rebuild).
DROP INDEX `evaluations_owner_created_idx`;--> statement-breakpoint
DROP INDEX `evaluations_owner_status_created_idx`;--> statement-breakpoint
ALTER TABLE `evaluations` ADD `project_id` text DEFAULT '' NOT NULL;--> statement-breakpoint
-- Every evaluation so far belongs to its owner's personal project (user:{sub}), where that owner's token
-- (without project claims) acts by default: each row stays reachable exactly as before.
UPDATE `evaluations` SET `project_id` = 'user:' || `owner_id`;--> statement-breakpoint
CREATE INDEX `evaluations_project_created_idx` ON `evaluations` (`project_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `evaluations_project_status_created_idx` ON `evaluations` (`project_id`,`status`,`created_at`,`id`);--> statement-breakpoint
-- A new evaluation names its project: 1..200 characters (the default '' of the ADD COLUMN is refused).
CREATE TRIGGER evaluations_project_valid BEFORE INSERT ON evaluations
WHEN length(NEW.project_id) NOT BETWEEN 1 AND 200
BEGIN
  SELECT RAISE(ABORT, 'evaluations: project_id must be 1 to 200 characters');
END;
--> statement-breakpoint
-- An evaluation never moves to another project.
CREATE TRIGGER evaluations_project_immutable BEFORE UPDATE OF project_id ON evaluations
WHEN NEW.project_id IS NOT OLD.project_id
BEGIN
  SELECT RAISE(ABORT, 'evaluations: project cannot change');
END;
