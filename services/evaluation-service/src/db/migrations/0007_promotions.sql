-- The promotion gate: a policy per (project, label), and every decision with its evidence. Two new tables (rules
-- as CHECKs and the triggers below); no existing table changes.
CREATE TABLE `promotion_policies` (
	`project_id` text NOT NULL,
	`label` text NOT NULL,
	`dataset_id` text NOT NULL,
	`min_pass_rate` real,
	`min_mean_score` real,
	`require_not_worse` integer DEFAULT 0 NOT NULL,
	`alpha` real DEFAULT 0.05 NOT NULL,
	`updated_by` text NOT NULL,
	`updated_at` integer NOT NULL,
	PRIMARY KEY(`project_id`, `label`),
	CONSTRAINT "promotion_policies_project_len" CHECK(length("promotion_policies"."project_id") BETWEEN 1 AND 200),
	CONSTRAINT "promotion_policies_label_form" CHECK(length("promotion_policies"."label") BETWEEN 1 AND 36 AND "promotion_policies"."label" NOT GLOB '*[^a-z0-9_-]*' AND "promotion_policies"."label" <> 'latest'),
	CONSTRAINT "promotion_policies_thresholds" CHECK(("promotion_policies"."min_pass_rate" IS NULL OR "promotion_policies"."min_pass_rate" BETWEEN 0 AND 1) AND ("promotion_policies"."min_mean_score" IS NULL OR "promotion_policies"."min_mean_score" BETWEEN 0 AND 1)),
	CONSTRAINT "promotion_policies_not_worse_bool" CHECK("promotion_policies"."require_not_worse" IN (0, 1)),
	CONSTRAINT "promotion_policies_alpha_range" CHECK("promotion_policies"."alpha" > 0 AND "promotion_policies"."alpha" < 0.5)
);
--> statement-breakpoint
CREATE TABLE `promotions` (
	`id` text PRIMARY KEY NOT NULL,
	`project_id` text NOT NULL,
	`prompt_id` text NOT NULL,
	`label` text NOT NULL,
	`from_version` integer,
	`to_version` integer NOT NULL,
	`status` text NOT NULL,
	`candidate_evaluation_id` text,
	`baseline_evaluation_id` text,
	`rules` text NOT NULL,
	`policy` text NOT NULL,
	`error` text DEFAULT '' NOT NULL,
	`requested_by` text NOT NULL,
	`reason` text DEFAULT '' NOT NULL,
	`created_at` integer NOT NULL,
	`updated_at` integer NOT NULL,
	CONSTRAINT "promotions_status_enum" CHECK("promotions"."status" IN ('pending', 'promoted', 'refused', 'aborted', 'failed')),
	CONSTRAINT "promotions_versions" CHECK("promotions"."to_version" >= 1 AND ("promotions"."from_version" IS NULL OR "promotions"."from_version" >= 1)),
	CONSTRAINT "promotions_rules_json" CHECK(json_valid("promotions"."rules") AND json_type("promotions"."rules") = 'array'),
	CONSTRAINT "promotions_policy_json" CHECK(json_valid("promotions"."policy") AND json_type("promotions"."policy") = 'object'),
	CONSTRAINT "promotions_reason_len" CHECK(length("promotions"."reason") <= 500),
	CONSTRAINT "promotions_error_len" CHECK(length("promotions"."error") <= 2000),
	CONSTRAINT "promotions_times" CHECK("promotions"."updated_at" >= "promotions"."created_at")
);
--> statement-breakpoint
CREATE INDEX `promotions_project_created_idx` ON `promotions` (`project_id`,`created_at`,`id`);--> statement-breakpoint
CREATE INDEX `promotions_prompt_created_idx` ON `promotions` (`project_id`,`prompt_id`,`created_at`,`id`);
--> statement-breakpoint
-- A policy's dataset is one of the policy's project (datasets are never deleted, so it cannot dangle).
CREATE TRIGGER promotion_policies_dataset BEFORE INSERT ON promotion_policies
WHEN NOT EXISTS (SELECT 1 FROM datasets WHERE id = NEW.dataset_id AND project_id = NEW.project_id)
BEGIN
  SELECT RAISE(ABORT, 'promotion_policies: the dataset does not exist in the policy''s project');
END;
--> statement-breakpoint
CREATE TRIGGER promotion_policies_dataset_update BEFORE UPDATE OF dataset_id, project_id ON promotion_policies
WHEN NOT EXISTS (SELECT 1 FROM datasets WHERE id = NEW.dataset_id AND project_id = NEW.project_id)
BEGIN
  SELECT RAISE(ABORT, 'promotion_policies: the dataset does not exist in the policy''s project');
END;
--> statement-breakpoint
-- A decision is written PENDING (the rules held, the move is under way) or REFUSED (final).
CREATE TRIGGER promotions_insert_status BEFORE INSERT ON promotions
WHEN NEW.status NOT IN ('pending', 'refused')
BEGIN
  SELECT RAISE(ABORT, 'promotions: a decision starts PENDING or REFUSED');
END;
--> statement-breakpoint
-- Only a PENDING decision changes, once, to what became of the move; nothing else of it ever changes.
CREATE TRIGGER promotions_transition BEFORE UPDATE ON promotions
WHEN OLD.status <> 'pending' OR NEW.status NOT IN ('promoted', 'aborted', 'failed')
  OR NEW.id IS NOT OLD.id OR NEW.project_id IS NOT OLD.project_id OR NEW.prompt_id IS NOT OLD.prompt_id
  OR NEW.label IS NOT OLD.label OR NEW.from_version IS NOT OLD.from_version OR NEW.to_version IS NOT OLD.to_version
  OR NEW.candidate_evaluation_id IS NOT OLD.candidate_evaluation_id
  OR NEW.baseline_evaluation_id IS NOT OLD.baseline_evaluation_id OR NEW.rules IS NOT OLD.rules
  OR NEW.policy IS NOT OLD.policy OR NEW.requested_by IS NOT OLD.requested_by OR NEW.reason IS NOT OLD.reason
  OR NEW.created_at IS NOT OLD.created_at
BEGIN
  SELECT RAISE(ABORT, 'promotions: only a PENDING decision changes, once, to PROMOTED, ABORTED or FAILED');
END;
--> statement-breakpoint
CREATE TRIGGER promotions_no_delete BEFORE DELETE ON promotions
BEGIN
  SELECT RAISE(ABORT, 'promotions rows are history: never deleted');
END;
