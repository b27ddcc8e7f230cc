-- Reverts 0007_promotions: the policies and the record of decisions are dropped (labels moved by the gate stay
-- where they are in prompt-service, with their history there).
DROP TRIGGER IF EXISTS promotions_no_delete;
--> statement-breakpoint
DROP TRIGGER IF EXISTS promotions_transition;
--> statement-breakpoint
DROP TRIGGER IF EXISTS promotions_insert_status;
--> statement-breakpoint
DROP TRIGGER IF EXISTS promotion_policies_dataset_update;
--> statement-breakpoint
DROP TRIGGER IF EXISTS promotion_policies_dataset;
--> statement-breakpoint
DROP TABLE IF EXISTS `promotions`;
--> statement-breakpoint
DROP TABLE IF EXISTS `promotion_policies`;
