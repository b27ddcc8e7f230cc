-- Rules a CHECK cannot express. Triggers abort with SQLITE_CONSTRAINT_TRIGGER (mapped to INVALID_ARGUMENT),
-- so even ad-hoc SQL cannot break them. The handlers check the same rules first and answer with precise codes.

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
-- What an evaluation evaluates, and whose it is, never changes.
CREATE TRIGGER evaluations_identity_immutable BEFORE UPDATE OF owner_id, prompt_id, prompt_version, created_at ON evaluations
WHEN NEW.owner_id IS NOT OLD.owner_id OR NEW.prompt_id IS NOT OLD.prompt_id
  OR NEW.prompt_version IS NOT OLD.prompt_version OR NEW.created_at IS NOT OLD.created_at
BEGIN
  SELECT RAISE(ABORT, 'evaluations: owner, prompt, version and creation time cannot change');
END;
--> statement-breakpoint
-- The state machine: PENDING -> RUNNING -> COMPLETED | FAILED, PENDING -> FAILED. Nothing leaves a final state.
CREATE TRIGGER evaluations_status_transition BEFORE UPDATE OF status ON evaluations
WHEN NEW.status IS NOT OLD.status AND NOT (
  (OLD.status = 'pending' AND NEW.status IN ('running', 'failed')) OR
  (OLD.status = 'running' AND NEW.status IN ('completed', 'failed'))
)
BEGIN
  SELECT RAISE(ABORT, 'evaluations: illegal status transition');
END;
--> statement-breakpoint
-- Test results are recorded only while their evaluation runs.
CREATE TRIGGER test_results_only_while_running BEFORE INSERT ON test_results
WHEN (SELECT status FROM evaluations WHERE id = NEW.evaluation_id) IS NOT 'running'
BEGIN
  SELECT RAISE(ABORT, 'test_results: the evaluation is not running');
END;
--> statement-breakpoint
-- Results are history: never rewritten (they are deleted only with their evaluation, by cascade).
CREATE TRIGGER test_results_immutable BEFORE UPDATE ON test_results
BEGIN
  SELECT RAISE(ABORT, 'test_results rows are immutable');
END;
--> statement-breakpoint
-- evaluations.test_count / passed_count always equal the rows' counts.
CREATE TRIGGER test_results_count AFTER INSERT ON test_results
BEGIN
  UPDATE evaluations
  SET test_count = test_count + 1, passed_count = passed_count + NEW.passed
  WHERE id = NEW.evaluation_id;
END;
