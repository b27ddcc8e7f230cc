-- Rules a CHECK cannot express. Triggers abort with SQLITE_CONSTRAINT_TRIGGER (mapped to INVALID_ARGUMENT),
-- so even ad-hoc SQL cannot break them.

-- audit_log is append-only (the kit's auditLogTriggersSql, verbatim).
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE refused');
END;
--> statement-breakpoint
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
  SELECT RAISE(ABORT, 'audit_log is append-only: DELETE refused');
END;
--> statement-breakpoint
-- A version is history: never rewritten (PurgePrompt may still delete it, by cascade).
CREATE TRIGGER prompt_versions_immutable BEFORE UPDATE ON prompt_versions
BEGIN
  SELECT RAISE(ABORT, 'prompt_versions rows are immutable');
END;
--> statement-breakpoint
-- Versions are appended contiguously: the first is 1, each next one is the previous maximum + 1.
CREATE TRIGGER prompt_versions_contiguous BEFORE INSERT ON prompt_versions
WHEN NEW.version <> coalesce((SELECT max(version) FROM prompt_versions WHERE prompt_id = NEW.prompt_id), 0) + 1
BEGIN
  SELECT RAISE(ABORT, 'prompt_versions must be appended contiguously');
END;
--> statement-breakpoint
-- The outbox is append-only: consumers rely on a sequence never changing meaning.
CREATE TRIGGER prompt_events_no_update BEFORE UPDATE ON prompt_events
BEGIN
  SELECT RAISE(ABORT, 'prompt_events is append-only: UPDATE refused');
END;
--> statement-breakpoint
CREATE TRIGGER prompt_events_no_delete BEFORE DELETE ON prompt_events
BEGIN
  SELECT RAISE(ABORT, 'prompt_events is append-only: DELETE refused');
END;
--> statement-breakpoint
-- A prompt's owner never changes (tags copy it for tenant-scoped tag search).
CREATE TRIGGER prompts_owner_immutable BEFORE UPDATE OF owner_id ON prompts
WHEN NEW.owner_id IS NOT OLD.owner_id
BEGIN
  SELECT RAISE(ABORT, 'prompts.owner_id cannot change');
END;
--> statement-breakpoint
-- current_version names an existing version (checked when it moves; version 1 is inserted right after the prompt).
CREATE TRIGGER prompts_current_version_exists BEFORE UPDATE OF current_version ON prompts
WHEN NOT EXISTS (SELECT 1 FROM prompt_versions WHERE prompt_id = NEW.id AND version = NEW.current_version)
BEGIN
  SELECT RAISE(ABORT, 'prompts.current_version must name an existing version');
END;
--> statement-breakpoint
-- A tag row carries its prompt's owner.
CREATE TRIGGER prompt_tags_owner_matches BEFORE INSERT ON prompt_tags
WHEN NEW.owner_id IS NOT (SELECT owner_id FROM prompts WHERE id = NEW.prompt_id)
BEGIN
  SELECT RAISE(ABORT, 'prompt_tags.owner_id must be the prompt''s owner');
END;
--> statement-breakpoint
-- A parent (derived-from) prompt belongs to the same owner.
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
