DROP TRIGGER IF EXISTS prompts_template_same_owner;
--> statement-breakpoint
DROP TRIGGER IF EXISTS prompts_parent_same_owner;
--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_tags_owner_matches;
--> statement-breakpoint
DROP TRIGGER IF EXISTS prompts_current_version_exists;
--> statement-breakpoint
DROP TRIGGER IF EXISTS prompts_owner_immutable;
--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_events_no_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_events_no_update;
--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_versions_contiguous;
--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_versions_immutable;
--> statement-breakpoint
DROP TRIGGER IF EXISTS audit_log_no_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS audit_log_no_update;
