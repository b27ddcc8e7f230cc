-- Children before parents (foreign keys are enforced while the migration runs).
DROP TABLE IF EXISTS `prompt_labels`;
--> statement-breakpoint
DROP TABLE IF EXISTS `prompt_tags`;
--> statement-breakpoint
DROP TABLE IF EXISTS `prompt_versions`;
--> statement-breakpoint
DROP TABLE IF EXISTS `prompts`;
--> statement-breakpoint
DROP TABLE IF EXISTS `prompt_templates`;
--> statement-breakpoint
DROP TABLE IF EXISTS `prompt_events`;
--> statement-breakpoint
DROP TABLE IF EXISTS `idempotency_keys`;
--> statement-breakpoint
DROP TABLE IF EXISTS `audit_log`;
