-- Gated labels: per project, the labels only the promotion gate (PROMOTION_GATE_SUBJECTS) may move. No table
-- rebuild (see 0002_projects): one ADD COLUMN with a default, so every existing project has none, and the
-- column's JSON-array rule as triggers (a CHECK on the new column would need the rebuild).
ALTER TABLE `project_settings` ADD `gated_labels` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
CREATE TRIGGER project_settings_gated_labels_insert BEFORE INSERT ON project_settings
-- (CASE: json_type of text that is not JSON is an error, not false)
WHEN NOT coalesce(CASE WHEN json_valid(NEW.gated_labels) THEN json_type(NEW.gated_labels) = 'array' END, 0)
BEGIN
  SELECT RAISE(ABORT, 'project_settings.gated_labels must be a JSON array');
END;
--> statement-breakpoint
CREATE TRIGGER project_settings_gated_labels_update BEFORE UPDATE OF gated_labels ON project_settings
-- (CASE: json_type of text that is not JSON is an error, not false)
WHEN NOT coalesce(CASE WHEN json_valid(NEW.gated_labels) THEN json_type(NEW.gated_labels) = 'array' END, 0)
BEGIN
  SELECT RAISE(ABORT, 'project_settings.gated_labels must be a JSON array');
END;
