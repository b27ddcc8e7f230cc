-- Versioned datasets (SCHEMA.md, "Datasets"). New tables only: nothing existing is rebuilt or changed.
-- The triggers below make versions immutable and their numbering and counts exact, whatever SQL runs.
CREATE TABLE `dataset_items` (
	`dataset_id` text NOT NULL,
	`item_id` text NOT NULL,
	`digest` text NOT NULL,
	`input_kind` text NOT NULL,
	`input` text NOT NULL,
	`expected_output` text DEFAULT '' NOT NULL,
	`metadata` text DEFAULT '{}' NOT NULL,
	`tags` text DEFAULT '[]' NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`dataset_id`, `item_id`, `digest`),
	FOREIGN KEY (`dataset_id`) REFERENCES `datasets`(`id`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "dataset_items_item_id_form" CHECK(length("dataset_items"."item_id") BETWEEN 1 AND 128 AND "dataset_items"."item_id" NOT GLOB '*[^A-Za-z0-9._:-]*'),
	CONSTRAINT "dataset_items_digest_form" CHECK(length("dataset_items"."digest") = 64 AND "dataset_items"."digest" NOT GLOB '*[^0-9a-f]*'),
	CONSTRAINT "dataset_items_input_kind_enum" CHECK("dataset_items"."input_kind" IN ('json', 'text')),
	CONSTRAINT "dataset_items_input_json" CHECK("dataset_items"."input_kind" <> 'json' OR (json_valid("dataset_items"."input") AND json_type("dataset_items"."input") = 'object')),
	CONSTRAINT "dataset_items_text_sizes" CHECK(length(CAST("dataset_items"."input" AS BLOB)) <= 65536 AND length(CAST("dataset_items"."expected_output" AS BLOB)) <= 65536),
	CONSTRAINT "dataset_items_metadata_json" CHECK(json_valid("dataset_items"."metadata") AND json_type("dataset_items"."metadata") = 'object' AND length(CAST("dataset_items"."metadata" AS BLOB)) <= 16384),
	CONSTRAINT "dataset_items_tags_json" CHECK(json_valid("dataset_items"."tags") AND json_type("dataset_items"."tags") = 'array' AND json_array_length("dataset_items"."tags") <= 20)
);
--> statement-breakpoint
CREATE TABLE `dataset_version_items` (
	`dataset_id` text NOT NULL,
	`version` integer NOT NULL,
	`item_id` text NOT NULL,
	`digest` text NOT NULL,
	PRIMARY KEY(`dataset_id`, `version`, `item_id`),
	FOREIGN KEY (`dataset_id`,`version`) REFERENCES `dataset_versions`(`dataset_id`,`version`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`dataset_id`,`item_id`,`digest`) REFERENCES `dataset_items`(`dataset_id`,`item_id`,`digest`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `dataset_versions` (
	`dataset_id` text NOT NULL,
	`version` integer NOT NULL,
	`parent_version` integer,
	`item_count` integer NOT NULL,
	`added_count` integer NOT NULL,
	`changed_count` integer NOT NULL,
	`removed_count` integer NOT NULL,
	`creator_id` text NOT NULL,
	`committed` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`dataset_id`, `version`),
	FOREIGN KEY (`dataset_id`) REFERENCES `datasets`(`id`) ON UPDATE no action ON DELETE no action,
	FOREIGN KEY (`dataset_id`,`parent_version`) REFERENCES `dataset_versions`(`dataset_id`,`version`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "dataset_versions_version_min" CHECK("dataset_versions"."version" >= 1),
	CONSTRAINT "dataset_versions_parent_before" CHECK("dataset_versions"."parent_version" IS NULL OR ("dataset_versions"."parent_version" >= 1 AND "dataset_versions"."parent_version" < "dataset_versions"."version")),
	CONSTRAINT "dataset_versions_item_count_range" CHECK("dataset_versions"."item_count" BETWEEN 0 AND 100000),
	CONSTRAINT "dataset_versions_change_counts" CHECK("dataset_versions"."added_count" >= 0 AND "dataset_versions"."changed_count" >= 0 AND "dataset_versions"."removed_count" >= 0 AND "dataset_versions"."added_count" + "dataset_versions"."changed_count" <= "dataset_versions"."item_count"),
	CONSTRAINT "dataset_versions_committed_bool" CHECK("dataset_versions"."committed" IN (0, 1))
);
--> statement-breakpoint
CREATE TABLE `datasets` (
	`id` text PRIMARY KEY NOT NULL,
	`project_id` text NOT NULL,
	`owner_id` text NOT NULL,
	`name` text NOT NULL,
	`description` text DEFAULT '' NOT NULL,
	`latest_version` integer DEFAULT 0 NOT NULL,
	`latest_item_count` integer DEFAULT 0 NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	CONSTRAINT "datasets_project_len" CHECK(length("datasets"."project_id") BETWEEN 1 AND 200),
	CONSTRAINT "datasets_name_len" CHECK(length("datasets"."name") BETWEEN 1 AND 100),
	CONSTRAINT "datasets_description_len" CHECK(length("datasets"."description") <= 2000),
	CONSTRAINT "datasets_latest_version_min" CHECK("datasets"."latest_version" >= 0),
	CONSTRAINT "datasets_latest_item_count_range" CHECK("datasets"."latest_item_count" BETWEEN 0 AND 100000),
	CONSTRAINT "datasets_times_ordered" CHECK("datasets"."updated_at" >= "datasets"."created_at")
);
--> statement-breakpoint
CREATE UNIQUE INDEX `datasets_project_name_idx` ON `datasets` (`project_id`,`name`);
--> statement-breakpoint
-- A dataset's project, owner, name and creation time never change; a dataset is never deleted (its versions are
-- history that results refer to; without a delete path there is no cascade for the immutability triggers to meet).
CREATE TRIGGER datasets_identity_immutable BEFORE UPDATE OF id, project_id, owner_id, name, created_at ON datasets
WHEN NEW.id IS NOT OLD.id OR NEW.project_id IS NOT OLD.project_id OR NEW.owner_id IS NOT OLD.owner_id
  OR NEW.name IS NOT OLD.name OR NEW.created_at IS NOT OLD.created_at
BEGIN
  SELECT RAISE(ABORT, 'datasets: project, owner, name and creation time cannot change');
END;
--> statement-breakpoint
CREATE TRIGGER datasets_no_delete BEFORE DELETE ON datasets
BEGIN
  SELECT RAISE(ABORT, 'datasets cannot be deleted');
END;
--> statement-breakpoint
-- latest_version moves only forwards by one, to a committed version, and latest_item_count is that version's.
CREATE TRIGGER datasets_latest_version BEFORE UPDATE OF latest_version, latest_item_count ON datasets
WHEN (NEW.latest_version IS NOT OLD.latest_version OR NEW.latest_item_count IS NOT OLD.latest_item_count)
  AND NOT (NEW.latest_version = OLD.latest_version + 1 AND EXISTS (
    SELECT 1 FROM dataset_versions v
    WHERE v.dataset_id = NEW.id AND v.version = NEW.latest_version AND v.committed = 1
      AND v.item_count = NEW.latest_item_count))
BEGIN
  SELECT RAISE(ABORT, 'datasets: latest_version must move to the next committed version');
END;
--> statement-breakpoint
-- A new version is the dataset's next number, written uncommitted (its items follow, then the commit).
CREATE TRIGGER dataset_versions_next BEFORE INSERT ON dataset_versions
WHEN NEW.committed <> 0
  OR NEW.version IS NOT (SELECT d.latest_version + 1 FROM datasets d WHERE d.id = NEW.dataset_id)
BEGIN
  SELECT RAISE(ABORT, 'dataset_versions: a version is inserted uncommitted as latest_version + 1');
END;
--> statement-breakpoint
-- The only change a version ever sees is its commit (committed 0 -> 1, nothing else).
CREATE TRIGGER dataset_versions_immutable BEFORE UPDATE ON dataset_versions
WHEN NOT (OLD.committed = 0 AND NEW.committed = 1
  AND NEW.dataset_id IS OLD.dataset_id AND NEW.version IS OLD.version
  AND NEW.parent_version IS OLD.parent_version AND NEW.item_count IS OLD.item_count
  AND NEW.added_count IS OLD.added_count AND NEW.changed_count IS OLD.changed_count
  AND NEW.removed_count IS OLD.removed_count AND NEW.creator_id IS OLD.creator_id
  AND NEW.created_at IS OLD.created_at)
BEGIN
  SELECT RAISE(ABORT, 'dataset versions are immutable');
END;
--> statement-breakpoint
-- The commit checks the count: item_count is exactly the number of the version's items.
CREATE TRIGGER dataset_versions_commit_count BEFORE UPDATE OF committed ON dataset_versions
WHEN NEW.committed = 1 AND NEW.item_count <> (
  SELECT count(*) FROM dataset_version_items i WHERE i.dataset_id = NEW.dataset_id AND i.version = NEW.version)
BEGIN
  SELECT RAISE(ABORT, 'dataset_versions: item_count does not match the items of the version');
END;
--> statement-breakpoint
CREATE TRIGGER dataset_versions_no_delete BEFORE DELETE ON dataset_versions
BEGIN
  SELECT RAISE(ABORT, 'dataset versions are immutable: DELETE refused');
END;
--> statement-breakpoint
-- Items join a version only while it is uncommitted.
CREATE TRIGGER dataset_version_items_open BEFORE INSERT ON dataset_version_items
WHEN (SELECT v.committed FROM dataset_versions v WHERE v.dataset_id = NEW.dataset_id AND v.version = NEW.version) IS NOT 0
BEGIN
  SELECT RAISE(ABORT, 'dataset versions are immutable: the version is committed');
END;
--> statement-breakpoint
CREATE TRIGGER dataset_version_items_no_update BEFORE UPDATE ON dataset_version_items
BEGIN
  SELECT RAISE(ABORT, 'dataset versions are immutable: UPDATE refused');
END;
--> statement-breakpoint
CREATE TRIGGER dataset_version_items_no_delete BEFORE DELETE ON dataset_version_items
BEGIN
  SELECT RAISE(ABORT, 'dataset versions are immutable: DELETE refused');
END;
--> statement-breakpoint
CREATE TRIGGER dataset_items_no_update BEFORE UPDATE ON dataset_items
BEGIN
  SELECT RAISE(ABORT, 'dataset items are immutable: UPDATE refused');
END;
--> statement-breakpoint
CREATE TRIGGER dataset_items_no_delete BEFORE DELETE ON dataset_items
BEGIN
  SELECT RAISE(ABORT, 'dataset items are immutable: DELETE refused');
END;
