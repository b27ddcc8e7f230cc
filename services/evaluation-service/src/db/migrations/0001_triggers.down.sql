DROP TRIGGER IF EXISTS test_results_count;
--> statement-breakpoint
DROP TRIGGER IF EXISTS test_results_immutable;
--> statement-breakpoint
DROP TRIGGER IF EXISTS test_results_only_while_running;
--> statement-breakpoint
DROP TRIGGER IF EXISTS evaluations_status_transition;
--> statement-breakpoint
DROP TRIGGER IF EXISTS evaluations_identity_immutable;
--> statement-breakpoint
DROP TRIGGER IF EXISTS audit_log_no_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS audit_log_no_update;
