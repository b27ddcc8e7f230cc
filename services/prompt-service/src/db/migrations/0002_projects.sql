-- Projects (the tenancy boundary), prompt names, chat prompts, declared variables, label history.
-- Written to run on every engine without rebuilding a table: a rebuild of `prompts` (the parent of cascading
-- children) would fire ON DELETE CASCADE on engines where foreign keys cannot be switched off per transaction
-- (sqld). So new columns come by ADD COLUMN with a default, existing rows are backfilled into their owner's
-- personal project `user:{owner_id}` (named by their id), and the rules a CHECK would state on the new columns
-- are triggers (an added column's CHECK would also be checked against the rows before the backfill).
CREATE TABLE `project_settings` (
	`project_id` text PRIMARY KEY NOT NULL,
	`protected_labels` text DEFAULT '["production"]' NOT NULL,
	`updated_by` text NOT NULL,
	`updated_at` integer NOT NULL,
	CONSTRAINT "project_settings_project_len" CHECK(length("project_settings"."project_id") BETWEEN 1 AND 200),
	CONSTRAINT "project_settings_protected_labels_json" CHECK(json_valid("project_settings"."protected_labels") AND json_type("project_settings"."protected_labels") = 'array')
);
--> statement-breakpoint
CREATE TABLE `prompt_label_history` (
	`sequence` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`prompt_id` text NOT NULL,
	`label` text NOT NULL,
	`from_version` integer,
	`to_version` integer,
	`actor` text NOT NULL,
	`reason` text DEFAULT '' NOT NULL,
	`occurred_at` integer NOT NULL,
	FOREIGN KEY (`prompt_id`) REFERENCES `prompts`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "prompt_label_history_moves" CHECK("prompt_label_history"."from_version" IS NOT "prompt_label_history"."to_version"),
	CONSTRAINT "prompt_label_history_versions_min" CHECK(("prompt_label_history"."from_version" IS NULL OR "prompt_label_history"."from_version" >= 1) AND ("prompt_label_history"."to_version" IS NULL OR "prompt_label_history"."to_version" >= 1)),
	CONSTRAINT "prompt_label_history_reason_len" CHECK(length("prompt_label_history"."reason") <= 1000),
	CONSTRAINT "prompt_label_history_label_len" CHECK(length("prompt_label_history"."label") BETWEEN 1 AND 36)
);
--> statement-breakpoint
CREATE INDEX `prompt_label_history_prompt_idx` ON `prompt_label_history` (`prompt_id`,`sequence`);--> statement-breakpoint
CREATE INDEX `prompt_label_history_prompt_label_idx` ON `prompt_label_history` (`prompt_id`,`label`,`sequence`);--> statement-breakpoint
-- Triggers that read columns this migration drops or whose tables it backfills.
DROP TRIGGER prompt_tags_owner_matches;--> statement-breakpoint
DROP TRIGGER prompts_parent_same_owner;--> statement-breakpoint
DROP TRIGGER prompts_template_same_owner;--> statement-breakpoint
DROP TRIGGER prompt_events_no_update;--> statement-breakpoint
DROP INDEX `prompt_tags_owner_tag_idx`;--> statement-breakpoint
DROP INDEX `prompt_templates_owner_name_uq`;--> statement-breakpoint
DROP INDEX `prompt_templates_owner_created_idx`;--> statement-breakpoint
DROP INDEX `prompts_owner_live_idx`;--> statement-breakpoint
DROP INDEX `prompts_owner_status_live_idx`;--> statement-breakpoint
DROP INDEX `prompts_owner_created_idx`;--> statement-breakpoint
DROP INDEX `prompts_owner_status_created_idx`;--> statement-breakpoint
ALTER TABLE `prompts` ADD `project_id` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `prompts` ADD `name` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `prompts` ADD `kind` text DEFAULT 'text' NOT NULL;--> statement-breakpoint
ALTER TABLE `prompt_templates` ADD `project_id` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `prompt_tags` ADD `project_id` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `prompt_tags` DROP COLUMN `owner_id`;--> statement-breakpoint
ALTER TABLE `prompt_events` ADD `project_id` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `prompt_events` ADD `name` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `prompt_versions` ADD `messages` text;--> statement-breakpoint
ALTER TABLE `prompt_versions` ADD `variables` text;--> statement-breakpoint
-- Every existing row into its owner's personal project; prompts are named by their id (a valid name).
UPDATE `prompts` SET `project_id` = 'user:' || `owner_id`, `name` = `id`;--> statement-breakpoint
UPDATE `prompt_templates` SET `project_id` = 'user:' || `owner_id`;--> statement-breakpoint
UPDATE `prompt_tags` SET `project_id` = (SELECT `project_id` FROM `prompts` WHERE `prompts`.`id` = `prompt_tags`.`prompt_id`);--> statement-breakpoint
UPDATE `prompt_events` SET `project_id` = 'user:' || `owner_id`, `name` = `prompt_id`;--> statement-breakpoint
CREATE UNIQUE INDEX `prompts_project_name_uq` ON `prompts` (`project_id`,`name`);--> statement-breakpoint
CREATE INDEX `prompts_project_live_idx` ON `prompts` (`project_id`,`created_at`,`id`) WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX `prompts_project_status_live_idx` ON `prompts` (`project_id`,`status`,`created_at`,`id`) WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX `prompts_project_created_idx` ON `prompts` (`project_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `prompts_project_status_created_idx` ON `prompts` (`project_id`,`status`,`created_at`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `prompt_templates_project_name_uq` ON `prompt_templates` (`project_id`,`name`);--> statement-breakpoint
CREATE INDEX `prompt_templates_project_created_idx` ON `prompt_templates` (`project_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `prompt_tags_project_tag_idx` ON `prompt_tags` (`project_id`,`tag`,`prompt_id`);--> statement-breakpoint
CREATE INDEX `prompt_events_project_sequence_idx` ON `prompt_events` (`project_id`,`sequence`);--> statement-breakpoint
CREATE TRIGGER prompt_events_no_update BEFORE UPDATE ON prompt_events
BEGIN
  SELECT RAISE(ABORT, 'prompt_events is append-only: UPDATE refused');
END;
--> statement-breakpoint
-- A project id is 1..200 characters and never changes (its rows never move between tenants).
CREATE TRIGGER prompts_project_valid BEFORE INSERT ON prompts
WHEN length(NEW.project_id) NOT BETWEEN 1 AND 200
BEGIN
  SELECT RAISE(ABORT, 'prompts.project_id must be 1 to 200 characters');
END;
--> statement-breakpoint
CREATE TRIGGER prompts_project_immutable BEFORE UPDATE OF project_id ON prompts
WHEN NEW.project_id IS NOT OLD.project_id
BEGIN
  SELECT RAISE(ABORT, 'prompts.project_id cannot change');
END;
--> statement-breakpoint
CREATE TRIGGER prompt_templates_project_valid BEFORE INSERT ON prompt_templates
WHEN length(NEW.project_id) NOT BETWEEN 1 AND 200
BEGIN
  SELECT RAISE(ABORT, 'prompt_templates.project_id must be 1 to 200 characters');
END;
--> statement-breakpoint
CREATE TRIGGER prompt_templates_project_immutable BEFORE UPDATE OF project_id ON prompt_templates
WHEN NEW.project_id IS NOT OLD.project_id
BEGIN
  SELECT RAISE(ABORT, 'prompt_templates.project_id cannot change');
END;
--> statement-breakpoint
-- Names: ^[a-z0-9][a-z0-9._/-]{0,127}$ (unique per project by prompts_project_name_uq).
CREATE TRIGGER prompts_name_format_insert BEFORE INSERT ON prompts
WHEN NOT (length(NEW.name) BETWEEN 1 AND 128 AND NEW.name GLOB '[a-z0-9]*' AND NEW.name NOT GLOB '*[^a-z0-9._/-]*')
BEGIN
  SELECT RAISE(ABORT, 'prompts.name must match ^[a-z0-9][a-z0-9._/-]{0,127}$');
END;
--> statement-breakpoint
CREATE TRIGGER prompts_name_format_update BEFORE UPDATE OF name ON prompts
WHEN NOT (length(NEW.name) BETWEEN 1 AND 128 AND NEW.name GLOB '[a-z0-9]*' AND NEW.name NOT GLOB '*[^a-z0-9._/-]*')
BEGIN
  SELECT RAISE(ABORT, 'prompts.name must match ^[a-z0-9][a-z0-9._/-]{0,127}$');
END;
--> statement-breakpoint
-- The kind is text or chat, chosen at create.
CREATE TRIGGER prompts_kind_valid BEFORE INSERT ON prompts
WHEN NEW.kind NOT IN ('text', 'chat')
BEGIN
  SELECT RAISE(ABORT, 'prompts.kind must be text or chat');
END;
--> statement-breakpoint
CREATE TRIGGER prompts_kind_immutable BEFORE UPDATE OF kind ON prompts
WHEN NEW.kind IS NOT OLD.kind
BEGIN
  SELECT RAISE(ABORT, 'prompts.kind cannot change');
END;
--> statement-breakpoint
-- A version has the prompt's kind: chat versions carry a JSON array of messages and no content, text ones no
-- messages; declared variables are a JSON array when present.
CREATE TRIGGER prompt_versions_kind_matches BEFORE INSERT ON prompt_versions
WHEN (SELECT kind FROM prompts WHERE id = NEW.prompt_id) IS NOT
  (CASE WHEN NEW.messages IS NULL THEN 'text' ELSE 'chat' END)
BEGIN
  SELECT RAISE(ABORT, 'prompt_versions: messages must be set exactly for chat prompts');
END;
--> statement-breakpoint
CREATE TRIGGER prompt_versions_messages_valid BEFORE INSERT ON prompt_versions
WHEN NEW.messages IS NOT NULL AND NOT (json_valid(NEW.messages) AND json_type(NEW.messages) = 'array'
  AND json_array_length(NEW.messages) >= 1 AND NEW.content = '')
BEGIN
  SELECT RAISE(ABORT, 'prompt_versions.messages must be a non-empty JSON array (and content empty)');
END;
--> statement-breakpoint
CREATE TRIGGER prompt_versions_variables_valid BEFORE INSERT ON prompt_versions
WHEN NEW.variables IS NOT NULL AND NOT (json_valid(NEW.variables) AND json_type(NEW.variables) = 'array')
BEGIN
  SELECT RAISE(ABORT, 'prompt_versions.variables must be a JSON array');
END;
--> statement-breakpoint
-- A tag row carries its prompt's project.
CREATE TRIGGER prompt_tags_project_matches BEFORE INSERT ON prompt_tags
WHEN NEW.project_id IS NOT (SELECT project_id FROM prompts WHERE id = NEW.prompt_id)
BEGIN
  SELECT RAISE(ABORT, 'prompt_tags.project_id must be the prompt''s project');
END;
--> statement-breakpoint
-- A parent (derived-from) prompt and a template belong to the same project.
CREATE TRIGGER prompts_parent_same_project BEFORE INSERT ON prompts
WHEN NEW.parent_id IS NOT NULL
  AND NEW.project_id IS NOT (SELECT project_id FROM prompts WHERE id = NEW.parent_id)
  AND EXISTS (SELECT 1 FROM prompts WHERE id = NEW.parent_id)
BEGIN
  SELECT RAISE(ABORT, 'prompts.parent_id must be a prompt of the same project');
END;
--> statement-breakpoint
CREATE TRIGGER prompts_template_same_project BEFORE INSERT ON prompts
WHEN NEW.template_id IS NOT NULL
  AND NEW.project_id IS NOT (SELECT project_id FROM prompt_templates WHERE id = NEW.template_id)
  AND EXISTS (SELECT 1 FROM prompt_templates WHERE id = NEW.template_id)
BEGIN
  SELECT RAISE(ABORT, 'prompts.template_id must be a template of the same project');
END;
--> statement-breakpoint
-- Events carry a project.
CREATE TRIGGER prompt_events_project_valid BEFORE INSERT ON prompt_events
WHEN length(NEW.project_id) NOT BETWEEN 1 AND 200
BEGIN
  SELECT RAISE(ABORT, 'prompt_events.project_id must be 1 to 200 characters');
END;
--> statement-breakpoint
-- Label history is history: never rewritten (PurgePrompt still deletes it, by cascade).
CREATE TRIGGER prompt_label_history_no_update BEFORE UPDATE ON prompt_label_history
BEGIN
  SELECT RAISE(ABORT, 'prompt_label_history is append-only: UPDATE refused');
END;
