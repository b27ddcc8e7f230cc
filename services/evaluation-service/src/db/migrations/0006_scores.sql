-- Named scores: an evaluation declares numeric (with a range), boolean and categorical scores, and each result
-- carries a value per declared score. Two new tables (their rules as CHECKs, foreign keys and the triggers below)
-- and one index replaced on evaluations (ComparePromptVersions now groups by provider, model and dataset
-- version too); no existing table is rebuilt. Existing evaluations declare no scores and keep working as before.
CREATE TABLE `evaluation_scores` (
	`evaluation_id` text NOT NULL,
	`name` text NOT NULL,
	`position` integer NOT NULL,
	`kind` text NOT NULL,
	`min_value` real,
	`max_value` real,
	`categories` text,
	`direction` text DEFAULT 'higher' NOT NULL,
	PRIMARY KEY(`evaluation_id`, `name`),
	FOREIGN KEY (`evaluation_id`) REFERENCES `evaluations`(`id`) ON UPDATE no action ON DELETE cascade,
	CONSTRAINT "evaluation_scores_name" CHECK(length("evaluation_scores"."name") BETWEEN 1 AND 64 AND "evaluation_scores"."name" GLOB '[a-z]*' AND "evaluation_scores"."name" NOT GLOB '*[^a-z0-9_]*' AND "evaluation_scores"."name" NOT IN ('passed', 'score')),
	CONSTRAINT "evaluation_scores_position_range" CHECK("evaluation_scores"."position" BETWEEN 0 AND 19),
	CONSTRAINT "evaluation_scores_kind_enum" CHECK("evaluation_scores"."kind" IN ('numeric', 'boolean', 'categorical')),
	CONSTRAINT "evaluation_scores_direction_enum" CHECK("evaluation_scores"."direction" IN ('higher', 'lower')),
	CONSTRAINT "evaluation_scores_kind_shape" CHECK(("evaluation_scores"."kind" = 'numeric' AND "evaluation_scores"."min_value" IS NOT NULL AND "evaluation_scores"."max_value" IS NOT NULL AND "evaluation_scores"."min_value" >= -1e15 AND "evaluation_scores"."max_value" <= 1e15 AND "evaluation_scores"."min_value" < "evaluation_scores"."max_value" AND "evaluation_scores"."categories" IS NULL)
        OR ("evaluation_scores"."kind" = 'boolean' AND "evaluation_scores"."min_value" IS NULL AND "evaluation_scores"."max_value" IS NULL AND "evaluation_scores"."categories" IS NULL)
        OR ("evaluation_scores"."kind" = 'categorical' AND "evaluation_scores"."min_value" IS NULL AND "evaluation_scores"."max_value" IS NULL AND json_valid("evaluation_scores"."categories") AND json_type("evaluation_scores"."categories") = 'array' AND json_array_length("evaluation_scores"."categories") BETWEEN 2 AND 50))
);
--> statement-breakpoint
CREATE UNIQUE INDEX `evaluation_scores_position_idx` ON `evaluation_scores` (`evaluation_id`,`position`);--> statement-breakpoint
CREATE TABLE `test_result_scores` (
	`result_id` text NOT NULL,
	`name` text NOT NULL,
	`evaluation_id` text NOT NULL,
	`dataset_item_id` text,
	`value` real NOT NULL,
	PRIMARY KEY(`result_id`, `name`),
	FOREIGN KEY (`result_id`) REFERENCES `test_results`(`id`) ON UPDATE no action ON DELETE cascade,
	FOREIGN KEY (`evaluation_id`,`name`) REFERENCES `evaluation_scores`(`evaluation_id`,`name`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `test_result_scores_value_idx` ON `test_result_scores` (`evaluation_id`,`name`,`value`);--> statement-breakpoint
CREATE INDEX `test_result_scores_item_idx` ON `test_result_scores` (`evaluation_id`,`name`,`dataset_item_id`,`value`) WHERE dataset_item_id IS NOT NULL;--> statement-breakpoint
DROP INDEX `evaluations_prompt_version_idx`;--> statement-breakpoint
CREATE INDEX `evaluations_prompt_compare_idx` ON `evaluations` (`prompt_id`,`prompt_version`,`provider`,`model`,`dataset_id`,`dataset_version`);
--> statement-breakpoint
-- Categories are distinct non-empty strings of at most 100 characters (json_each cannot run in a CHECK).
CREATE TRIGGER evaluation_scores_categories BEFORE INSERT ON evaluation_scores
WHEN NEW.kind = 'categorical' AND (
  EXISTS (SELECT 1 FROM json_each(NEW.categories) WHERE type <> 'text' OR length(value) NOT BETWEEN 1 AND 100)
  OR (SELECT count(DISTINCT value) FROM json_each(NEW.categories)) <> json_array_length(NEW.categories)
)
BEGIN
  SELECT RAISE(ABORT, 'evaluation_scores: categories are distinct strings of 1 to 100 characters');
END;
--> statement-breakpoint
-- Scores are declared with the evaluation: while it is PENDING and has no result.
CREATE TRIGGER evaluation_scores_while_pending BEFORE INSERT ON evaluation_scores
WHEN NOT EXISTS (SELECT 1 FROM evaluations WHERE id = NEW.evaluation_id AND status = 'pending' AND test_count = 0)
BEGIN
  SELECT RAISE(ABORT, 'evaluation_scores: scores are declared when the evaluation is created');
END;
--> statement-breakpoint
CREATE TRIGGER evaluation_scores_immutable BEFORE UPDATE ON evaluation_scores
BEGIN
  SELECT RAISE(ABORT, 'evaluation_scores rows are immutable');
END;
--> statement-breakpoint
-- A value belongs to its result: the same evaluation and dataset item (the copies the summaries' indexes need).
CREATE TRIGGER test_result_scores_of_result BEFORE INSERT ON test_result_scores
WHEN NOT EXISTS (
  SELECT 1 FROM test_results r
  WHERE r.id = NEW.result_id AND r.evaluation_id = NEW.evaluation_id AND r.dataset_item_id IS NEW.dataset_item_id
)
BEGIN
  SELECT RAISE(ABORT, 'test_result_scores: evaluation_id and dataset_item_id must be the result''s');
END;
--> statement-breakpoint
-- A value of the declared kind: numeric within [min_value, max_value], boolean 0 or 1, categorical the index of
-- one of the categories. (An undeclared score finds no row here and is refused by test_result_scores_declared_fk.)
CREATE TRIGGER test_result_scores_value BEFORE INSERT ON test_result_scores
WHEN NOT coalesce((
  SELECT CASE s.kind
    WHEN 'numeric' THEN NEW.value BETWEEN s.min_value AND s.max_value
    WHEN 'boolean' THEN NEW.value IN (0, 1)
    ELSE NEW.value = CAST(NEW.value AS INTEGER) AND NEW.value BETWEEN 0 AND json_array_length(s.categories) - 1
  END
  FROM evaluation_scores s WHERE s.evaluation_id = NEW.evaluation_id AND s.name = NEW.name
), 1)
BEGIN
  SELECT RAISE(ABORT, 'test_result_scores: the value is not of the declared kind or outside its range');
END;
--> statement-breakpoint
-- Values are history, like their results.
CREATE TRIGGER test_result_scores_immutable BEFORE UPDATE ON test_result_scores
BEGIN
  SELECT RAISE(ABORT, 'test_result_scores rows are immutable');
END;
