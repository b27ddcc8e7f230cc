import type { MigrationInvariant } from "@autoforge/db";

/**
 * Rules of evaluation-service's data that `migrate check` verifies on a migrated copy (each query must return
 * no rows). CHECK constraints cover each row; these cover what triggers maintain across rows, which a
 * migration (running below the triggers, or rebuilding a table) could break.
 */
export const evaluationInvariants: readonly MigrationInvariant[] = [
  {
    name: "test_count and passed_count match the evaluation's test results",
    sql: `SELECT e.id, e.test_count, e.passed_count,
            (SELECT count(*) FROM test_results r WHERE r.evaluation_id = e.id) AS results,
            (SELECT count(*) FROM test_results r WHERE r.evaluation_id = e.id AND r.passed = 1) AS passed
          FROM evaluations e
          WHERE e.test_count <> (SELECT count(*) FROM test_results r WHERE r.evaluation_id = e.id)
             OR e.passed_count <> (SELECT count(*) FROM test_results r WHERE r.evaluation_id = e.id AND r.passed = 1)`,
  },
  {
    // 0002_projects backfills project_id from owner_id; the insert trigger keeps new rows from leaving it empty
    name: "every evaluation belongs to a project",
    sql: "SELECT e.id, e.owner_id FROM evaluations e WHERE length(e.project_id) NOT BETWEEN 1 AND 200",
  },
  {
    name: "an evaluation with test results was started",
    sql: `SELECT e.id, e.status FROM evaluations e
          WHERE e.started_at IS NULL AND EXISTS (SELECT 1 FROM test_results r WHERE r.evaluation_id = e.id)`,
  },
  {
    // the commit trigger checks it once; a migration rebuilding these tables could break it
    name: "a dataset version holds item_count items",
    sql: `SELECT v.dataset_id, v.version, v.item_count FROM dataset_versions v
          WHERE v.item_count <> (SELECT count(*) FROM dataset_version_items i
                                 WHERE i.dataset_id = v.dataset_id AND i.version = v.version)`,
  },
  {
    // versions are committed in the transaction that writes them
    name: "every dataset version is committed, numbered 1..latest_version",
    sql: `SELECT d.id, d.latest_version FROM datasets d
          WHERE d.latest_version <> (SELECT count(*) FROM dataset_versions v WHERE v.dataset_id = d.id AND v.committed = 1)
             OR EXISTS (SELECT 1 FROM dataset_versions v WHERE v.dataset_id = d.id AND (v.committed = 0 OR v.version > d.latest_version))
             OR d.latest_item_count <> coalesce((SELECT v.item_count FROM dataset_versions v
                                                  WHERE v.dataset_id = d.id AND v.version = d.latest_version), 0)`,
  },
  {
    // the insert triggers of 0005_experiments check it once; a migration writing below them could break it
    name: "an experiment runs over a committed dataset version of its own project",
    sql: `SELECT e.id, e.dataset_id, e.dataset_version FROM evaluations e
          WHERE e.dataset_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM dataset_versions v JOIN datasets d ON d.id = v.dataset_id
            WHERE v.dataset_id = e.dataset_id AND v.version = e.dataset_version AND v.committed = 1
              AND d.project_id = e.project_id)`,
  },
  {
    name: "an experiment's results name an item of its version and a trial in 1..trials_per_item; ad-hoc ones neither",
    sql: `SELECT r.id, r.evaluation_id, r.dataset_item_id, r.trial FROM test_results r
          JOIN evaluations e ON e.id = r.evaluation_id
          WHERE (e.dataset_id IS NULL AND (r.dataset_item_id IS NOT NULL OR r.trial IS NOT NULL))
             OR (e.dataset_id IS NOT NULL AND (
                  r.trial IS NULL OR r.trial NOT BETWEEN 1 AND e.trials_per_item
                  OR NOT EXISTS (SELECT 1 FROM dataset_version_items i
                                 WHERE i.dataset_id = e.dataset_id AND i.version = e.dataset_version
                                   AND i.item_id = r.dataset_item_id)))`,
  },
];
