-- Reverts 0002_projects. Rows keep their owner; team projects are folded back into owner scope (their
-- project, names, chat messages, declared variables, label history and project settings are dropped).
DROP TRIGGER IF EXISTS prompt_label_history_no_update;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_events_project_valid;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompts_template_same_project;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompts_parent_same_project;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_tags_project_matches;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_versions_variables_valid;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_versions_messages_valid;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_versions_kind_matches;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompts_kind_immutable;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompts_kind_valid;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompts_name_format_update;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompts_name_format_insert;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_templates_project_immutable;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompt_templates_project_valid;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompts_project_immutable;--> statement-breakpoint
DROP TRIGGER IF EXISTS prompts_project_valid;--> statement-breakpoint
DROP INDEX IF EXISTS `prompt_events_project_sequence_idx`;--> statement-breakpoint
DROP INDEX IF EXISTS `prompt_tags_project_tag_idx`;--> statement-breakpoint
DROP INDEX IF EXISTS `prompt_templates_project_created_idx`;--> statement-breakpoint
DROP INDEX IF EXISTS `prompt_templates_project_name_uq`;--> statement-breakpoint
DROP INDEX IF EXISTS `prompts_project_status_created_idx`;--> statement-breakpoint
DROP INDEX IF EXISTS `prompts_project_created_idx`;--> statement-breakpoint
DROP INDEX IF EXISTS `prompts_project_status_live_idx`;--> statement-breakpoint
DROP INDEX IF EXISTS `prompts_project_live_idx`;--> statement-breakpoint
DROP INDEX IF EXISTS `prompts_project_name_uq`;--> statement-breakpoint
DROP TABLE IF EXISTS `prompt_label_history`;--> statement-breakpoint
DROP TABLE IF EXISTS `project_settings`;--> statement-breakpoint
ALTER TABLE `prompt_versions` DROP COLUMN `variables`;--> statement-breakpoint
ALTER TABLE `prompt_versions` DROP COLUMN `messages`;--> statement-breakpoint
ALTER TABLE `prompt_events` DROP COLUMN `name`;--> statement-breakpoint
ALTER TABLE `prompt_events` DROP COLUMN `project_id`;--> statement-breakpoint
ALTER TABLE `prompt_tags` ADD `owner_id` text DEFAULT '' NOT NULL;--> statement-breakpoint
UPDATE `prompt_tags` SET `owner_id` = (SELECT `owner_id` FROM `prompts` WHERE `prompts`.`id` = `prompt_tags`.`prompt_id`);--> statement-breakpoint
ALTER TABLE `prompt_tags` DROP COLUMN `project_id`;--> statement-breakpoint
ALTER TABLE `prompt_templates` DROP COLUMN `project_id`;--> statement-breakpoint
ALTER TABLE `prompts` DROP COLUMN `kind`;--> statement-breakpoint
ALTER TABLE `prompts` DROP COLUMN `name`;--> statement-breakpoint
ALTER TABLE `prompts` DROP COLUMN `project_id`;--> statement-breakpoint
CREATE INDEX `prompts_owner_live_idx` ON `prompts` (`owner_id`,`created_at`,`id`) WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX `prompts_owner_status_live_idx` ON `prompts` (`owner_id`,`status`,`created_at`,`id`) WHERE deleted_at IS NULL;--> statement-breakpoint
CREATE INDEX `prompts_owner_created_idx` ON `prompts` (`owner_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `prompts_owner_status_created_idx` ON `prompts` (`owner_id`,`status`,`created_at`,`id`);--> statement-breakpoint
CREATE UNIQUE INDEX `prompt_templates_owner_name_uq` ON `prompt_templates` (`owner_id`,`name`);--> statement-breakpoint
CREATE INDEX `prompt_templates_owner_created_idx` ON `prompt_templates` (`owner_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `prompt_tags_owner_tag_idx` ON `prompt_tags` (`owner_id`,`tag`,`prompt_id`);--> statement-breakpoint
CREATE TRIGGER prompt_tags_owner_matches BEFORE INSERT ON prompt_tags
WHEN NEW.owner_id IS NOT (SELECT owner_id FROM prompts WHERE id = NEW.prompt_id)
BEGIN
  SELECT RAISE(ABORT, 'prompt_tags.owner_id must be the prompt''s owner');
END;
--> statement-breakpoint
CREATE TRIGGER prompts_parent_same_owner BEFORE INSERT ON prompts
WHEN NEW.parent_id IS NOT NULL
  AND NEW.owner_id IS NOT (SELECT owner_id FROM prompts WHERE id = NEW.parent_id)
  AND EXISTS (SELECT 1 FROM prompts WHERE id = NEW.parent_id)
BEGIN
  SELECT RAISE(ABORT, 'prompts.parent_id must be a prompt of the same owner');
END;
--> statement-breakpoint
CREATE TRIGGER prompts_template_same_owner BEFORE INSERT ON prompts
WHEN NEW.template_id IS NOT NULL
  AND NEW.owner_id IS NOT (SELECT owner_id FROM prompt_templates WHERE id = NEW.template_id)
  AND EXISTS (SELECT 1 FROM prompt_templates WHERE id = NEW.template_id)
BEGIN
  SELECT RAISE(ABORT, 'prompts.template_id must be a template of the same owner');
END;
