-- Reverts 0004_gated_labels. Every project's gated labels are dropped: the earlier release moves them as it
-- moves any other label (publishers only, when they are also protected).
DROP TRIGGER IF EXISTS project_settings_gated_labels_update;--> statement-breakpoint
DROP TRIGGER IF EXISTS project_settings_gated_labels_insert;--> statement-breakpoint
ALTER TABLE `project_settings` DROP COLUMN `gated_labels`;
