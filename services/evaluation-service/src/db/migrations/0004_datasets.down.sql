-- Reverts 0004_datasets: the dataset tables and their triggers. Every dataset, version and item is lost; nothing
-- else refers to them, and no other table changes.
DROP TRIGGER IF EXISTS dataset_items_no_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS dataset_items_no_update;
--> statement-breakpoint
DROP TRIGGER IF EXISTS dataset_version_items_no_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS dataset_version_items_no_update;
--> statement-breakpoint
DROP TRIGGER IF EXISTS dataset_version_items_open;
--> statement-breakpoint
DROP TRIGGER IF EXISTS dataset_versions_no_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS dataset_versions_commit_count;
--> statement-breakpoint
DROP TRIGGER IF EXISTS dataset_versions_immutable;
--> statement-breakpoint
DROP TRIGGER IF EXISTS dataset_versions_next;
--> statement-breakpoint
DROP TRIGGER IF EXISTS datasets_latest_version;
--> statement-breakpoint
DROP TRIGGER IF EXISTS datasets_no_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS datasets_identity_immutable;
--> statement-breakpoint
DROP TABLE `dataset_version_items`;
--> statement-breakpoint
DROP TABLE `dataset_items`;
--> statement-breakpoint
DROP TABLE `dataset_versions`;
--> statement-breakpoint
DROP TABLE `datasets`;
