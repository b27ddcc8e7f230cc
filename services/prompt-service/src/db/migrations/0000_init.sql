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
CREATE TABLE `prompt_events` (
	`sequence` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`event_id` text NOT NULL,
	`type` text NOT NULL,
	`prompt_id` text NOT NULL,
	`owner_id` text NOT NULL,
	`version` integer NOT NULL,
	`label` text,
	`occurred_at` integer NOT NULL,
	CONSTRAINT "prompt_events_type_enum" CHECK("prompt_events"."type" IN ('created', 'updated', 'deleted', 'restored', 'purged', 'label_set', 'label_removed')),
	CONSTRAINT "prompt_events_version_min" CHECK("prompt_events"."version" >= 1),
	CONSTRAINT "prompt_events_label_presence" CHECK(("prompt_events"."type" IN ('label_set', 'label_removed')) = ("prompt_events"."label" IS NOT NULL))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `prompt_events_event_id_uq` ON `prompt_events` (`event_id`);--> statement-breakpoint
CREATE TABLE `prompt_labels` (
	`prompt_id` text NOT NULL,
	`label` text NOT NULL,
	`version` integer NOT NULL,
	`updated_by` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`prompt_id`, `label`),
	FOREIGN KEY (`prompt_id`) REFERENCES `prompts`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`prompt_id`,`version`) REFERENCES `prompt_versions`(`prompt_id`,`version`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "prompt_labels_label_format" CHECK(length("prompt_labels"."label") BETWEEN 1 AND 36 AND "prompt_labels"."label" NOT GLOB '*[^a-z0-9_-]*' AND "prompt_labels"."label" <> 'latest')
);
--> statement-breakpoint
CREATE TABLE `prompt_tags` (
	`prompt_id` text NOT NULL,
	`tag` text NOT NULL,
	`owner_id` text NOT NULL,
	PRIMARY KEY(`prompt_id`, `tag`),
	FOREIGN KEY (`prompt_id`) REFERENCES `prompts`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "prompt_tags_tag_len" CHECK(length("prompt_tags"."tag") BETWEEN 1 AND 50),
	CONSTRAINT "prompt_tags_tag_chars" CHECK("prompt_tags"."tag" NOT GLOB '*[^A-Za-z0-9_.:-]*')
);
--> statement-breakpoint
CREATE INDEX `prompt_tags_owner_tag_idx` ON `prompt_tags` (`owner_id`,`tag`,`prompt_id`);--> statement-breakpoint
CREATE TABLE `prompt_templates` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text NOT NULL,
	`name` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`body` text NOT NULL,
	`variables` text DEFAULT '[]' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	CONSTRAINT "prompt_templates_name_len" CHECK(length("prompt_templates"."name") BETWEEN 1 AND 100),
	CONSTRAINT "prompt_templates_description_len" CHECK(length("prompt_templates"."description") <= 1000),
	CONSTRAINT "prompt_templates_variables_json" CHECK(json_valid("prompt_templates"."variables") AND json_type("prompt_templates"."variables") = 'array')
);
--> statement-breakpoint
CREATE UNIQUE INDEX `prompt_templates_owner_name_uq` ON `prompt_templates` (`owner_id`,`name`);--> statement-breakpoint
CREATE INDEX `prompt_templates_owner_created_idx` ON `prompt_templates` (`owner_id`,`created_at`,`id`);--> statement-breakpoint
CREATE TABLE `prompt_versions` (
	`prompt_id` text NOT NULL,
	`version` integer NOT NULL,
	`content` text NOT NULL,
	`model_config` text DEFAULT '{}' NOT NULL,
	`diff` text DEFAULT '' NOT NULL,
	`change_note` text DEFAULT '' NOT NULL,
	`created_by` text NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`prompt_id`, `version`),
	FOREIGN KEY (`prompt_id`) REFERENCES `prompts`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "prompt_versions_version_min" CHECK("prompt_versions"."version" >= 1),
	CONSTRAINT "prompt_versions_model_config_json" CHECK(json_valid("prompt_versions"."model_config") AND json_type("prompt_versions"."model_config") = 'object'),
	CONSTRAINT "prompt_versions_change_note_len" CHECK(length("prompt_versions"."change_note") <= 1000),
	CONSTRAINT "prompt_versions_first_has_no_diff" CHECK("prompt_versions"."version" > 1 OR "prompt_versions"."diff" = '')
);
--> statement-breakpoint
CREATE TABLE `prompts` (
	`id` text PRIMARY KEY NOT NULL,
	`owner_id` text NOT NULL,
	`title` text NOT NULL,
	`status` text DEFAULT 'draft' NOT NULL,
	`current_version` integer DEFAULT 1 NOT NULL,
	`parent_id` text,
	`template_id` text,
	`metadata` text DEFAULT '{}' NOT NULL,
	`revision` integer DEFAULT 1 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	`deleted_at` integer,
	FOREIGN KEY (`parent_id`) REFERENCES `prompts`(`id`) ON UPDATE no action ON DELETE set null,
	FOREIGN KEY (`template_id`) REFERENCES `prompt_templates`(`id`) ON UPDATE no action ON DELETE set null,
	CONSTRAINT "prompts_title_len" CHECK(length("prompts"."title") BETWEEN 1 AND 255),
	CONSTRAINT "prompts_status_enum" CHECK("prompts"."status" IN ('draft', 'active', 'archived')),
	CONSTRAINT "prompts_current_version_min" CHECK("prompts"."current_version" >= 1),
	CONSTRAINT "prompts_revision_min" CHECK("prompts"."revision" >= 1),
	CONSTRAINT "prompts_metadata_json" CHECK(json_valid("prompts"."metadata") AND json_type("prompts"."metadata") = 'object'),
	CONSTRAINT "prompts_not_own_parent" CHECK("prompts"."parent_id" IS NULL OR "prompts"."parent_id" <> "prompts"."id"),
	CONSTRAINT "prompts_deleted_after_created" CHECK("prompts"."deleted_at" IS NULL OR "prompts"."deleted_at" >= "prompts"."created_at")
);
--> statement-breakpoint
CREATE INDEX `prompts_owner_live_idx` ON `prompts` (`owner_id`,`created_at`,`id`) WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX `prompts_owner_status_live_idx` ON `prompts` (`owner_id`,`status`,`created_at`,`id`) WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX `prompts_owner_created_idx` ON `prompts` (`owner_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `prompts_owner_status_created_idx` ON `prompts` (`owner_id`,`status`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `prompts_parent_idx` ON `prompts` (`parent_id`) WHERE parent_id IS NOT NULL;