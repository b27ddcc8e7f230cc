-- Children before parents (foreign keys are enforced while the migration runs).
DROP TABLE IF EXISTS `test_results`;
--> statement-breakpoint
DROP TABLE IF EXISTS `evaluations`;
--> statement-breakpoint
DROP TABLE IF EXISTS `prompt_tombstones`;
--> statement-breakpoint
DROP TABLE IF EXISTS `consumer_offsets`;
--> statement-breakpoint
DROP TABLE IF EXISTS `idempotency_keys`;
--> statement-breakpoint
DROP TABLE IF EXISTS `audit_log`;
