CREATE TABLE `audit_log` (
	`seq` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`occurred_at` integer NOT NULL,
	`actor` text NOT NULL,
	`action` text NOT NULL,
	`resource_type` text NOT NULL,
	`resource_id` text NOT NULL,
	`request_id` text,
	`digest` text NOT NULL,
	`prev_hash` text NOT NULL,
	`hash` text NOT NULL
);
--> statement-breakpoint
CREATE INDEX `audit_log_resource_idx` ON `audit_log` (`resource_type`,`resource_id`,`seq`);--> statement-breakpoint
CREATE INDEX `audit_log_actor_idx` ON `audit_log` (`actor`,`seq`);--> statement-breakpoint
CREATE TABLE `consumer_offsets` (
	`name` text PRIMARY KEY NOT NULL,
	`last_applied_sequence` integer DEFAULT 0 NOT NULL,
	`last_seen_sequence` integer DEFAULT 0 NOT NULL,
	`updated_at` integer NOT NULL,
	CONSTRAINT "consumer_offsets_name_len" CHECK(length("consumer_offsets"."name") BETWEEN 1 AND 100),
	CONSTRAINT "consumer_offsets_applied_min" CHECK("consumer_offsets"."last_applied_sequence" >= 0),
	CONSTRAINT "consumer_offsets_seen_ge_applied" CHECK("consumer_offsets"."last_seen_sequence" >= "consumer_offsets"."last_applied_sequence")
);
--> statement-breakpoint
CREATE TABLE `evaluations` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text NOT NULL,
	`prompt_id` text NOT NULL,
	`prompt_version` integer NOT NULL,
	`provider` text NOT NULL,
	`model` text NOT NULL,
	`status` text DEFAULT 'pending' NOT NULL,
	`overall_score` real,
	`error` text DEFAULT '' NOT NULL,
	`metadata` text DEFAULT '{}' NOT NULL,
	`test_count` integer DEFAULT 0 NOT NULL,
	`passed_count` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`started_at` integer,
	`completed_at` integer,
	CONSTRAINT "evaluations_status_enum" CHECK("evaluations"."status" IN ('pending', 'running', 'completed', 'failed')),
	CONSTRAINT "evaluations_prompt_version_min" CHECK("evaluations"."prompt_version" >= 1),
	CONSTRAINT "evaluations_provider_len" CHECK(length("evaluations"."provider") BETWEEN 1 AND 100),
	CONSTRAINT "evaluations_model_len" CHECK(length("evaluations"."model") BETWEEN 1 AND 200),
	CONSTRAINT "evaluations_error_len" CHECK(length("evaluations"."error") <= 2000),
	CONSTRAINT "evaluations_overall_score_range" CHECK("evaluations"."overall_score" IS NULL OR ("evaluations"."overall_score" >= 0.0 AND "evaluations"."overall_score" <= 1.0)),
	CONSTRAINT "evaluations_metadata_json" CHECK(json_valid("evaluations"."metadata") AND json_type("evaluations"."metadata") = 'object'),
	CONSTRAINT "evaluations_counts" CHECK("evaluations"."test_count" >= 0 AND "evaluations"."passed_count" BETWEEN 0 AND "evaluations"."test_count"),
	CONSTRAINT "evaluations_completed_has_score" CHECK("evaluations"."status" <> 'completed' OR ("evaluations"."overall_score" IS NOT NULL AND "evaluations"."completed_at" IS NOT NULL)),
	CONSTRAINT "evaluations_score_only_when_completed" CHECK("evaluations"."overall_score" IS NULL OR "evaluations"."status" = 'completed'),
	CONSTRAINT "evaluations_failed_has_error" CHECK("evaluations"."status" <> 'failed' OR ("evaluations"."error" <> '' AND "evaluations"."completed_at" IS NOT NULL)),
	CONSTRAINT "evaluations_started_when_running" CHECK("evaluations"."status" <> 'running' OR "evaluations"."started_at" IS NOT NULL),
	CONSTRAINT "evaluations_pending_not_started" CHECK("evaluations"."status" <> 'pending' OR ("evaluations"."started_at" IS NULL AND "evaluations"."completed_at" IS NULL)),
	CONSTRAINT "evaluations_times_ordered" CHECK("evaluations"."updated_at" >= "evaluations"."created_at" AND ("evaluations"."started_at" IS NULL OR "evaluations"."started_at" >= "evaluations"."created_at") AND ("evaluations"."completed_at" IS NULL OR "evaluations"."completed_at" >= "evaluations"."created_at"))
);
--> statement-breakpoint
CREATE INDEX `evaluations_owner_created_idx` ON `evaluations` (`owner_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `evaluations_owner_status_created_idx` ON `evaluations` (`owner_id`,`status`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `evaluations_prompt_created_idx` ON `evaluations` (`prompt_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `evaluations_prompt_version_idx` ON `evaluations` (`prompt_id`,`prompt_version`);--> statement-breakpoint
CREATE INDEX `evaluations_running_idx` ON `evaluations` (`prompt_id`,`created_at`,`id`) WHERE status = 'running';--> statement-breakpoint
CREATE TABLE `idempotency_keys` (
	`owner_id` text NOT NULL,
	`method` text NOT NULL,
	`key` text NOT NULL,
	`request_hash` text NOT NULL,
	`response` blob NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`owner_id`, `method`, `key`),
	CONSTRAINT "idempotency_keys_key_len" CHECK(length("idempotency_keys"."key") BETWEEN 1 AND 64)
);
--> statement-breakpoint
CREATE TABLE `prompt_tombstones` (
	`prompt_id` text PRIMARY KEY NOT NULL,
	`owner_id` text NOT NULL,
	`state` text NOT NULL,
	`sequence` integer NOT NULL,
	`occurred_at` integer NOT NULL,
	CONSTRAINT "prompt_tombstones_state_enum" CHECK("prompt_tombstones"."state" IN ('deleted', 'purged'))
);
--> statement-breakpoint
CREATE TABLE `test_results` (
	`id` text PRIMARY KEY NOT NULL,
	`evaluation_id` text NOT NULL,
	`name` text NOT NULL,
	`input` text DEFAULT '' NOT NULL,
	`expected_output` text DEFAULT '' NOT NULL,
	`actual_output` text DEFAULT '' NOT NULL,
	`passed` integer NOT NULL,
	`score` real NOT NULL,
	`latency_ms` integer NOT NULL,
	`metadata` text DEFAULT '{}' NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`evaluation_id`) REFERENCES `evaluations`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "test_results_name_len" CHECK(length("test_results"."name") BETWEEN 1 AND 255),
	CONSTRAINT "test_results_passed_bool" CHECK("test_results"."passed" IN (0, 1)),
	CONSTRAINT "test_results_score_range" CHECK("test_results"."score" >= 0.0 AND "test_results"."score" <= 1.0),
	CONSTRAINT "test_results_latency_min" CHECK("test_results"."latency_ms" >= 0),
	CONSTRAINT "test_results_metadata_json" CHECK(json_valid("test_results"."metadata") AND json_type("test_results"."metadata") = 'object'),
	CONSTRAINT "test_results_text_sizes" CHECK(length(CAST("test_results"."input" AS BLOB)) <= 65536 AND length(CAST("test_results"."expected_output" AS BLOB)) <= 65536 AND length(CAST("test_results"."actual_output" AS BLOB)) <= 65536)
);
--> statement-breakpoint
CREATE INDEX `test_results_evaluation_id_idx` ON `test_results` (`evaluation_id`,`id`);--> statement-breakpoint
CREATE INDEX `test_results_evaluation_passed_score_idx` ON `test_results` (`evaluation_id`,`passed`,`score`);--> statement-breakpoint
CREATE INDEX `test_results_evaluation_latency_idx` ON `test_results` (`evaluation_id`,`latency_ms`);