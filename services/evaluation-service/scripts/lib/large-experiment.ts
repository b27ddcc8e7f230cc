/**
 * What the benchmarks of experiment reads share: a `file:` database with the real migrations and triggers,
 * seeded in SQL with one dataset version of `items` items and experiments over it (`trials` trials per item, 3
 * declared scores: numeric, boolean, categorical), and a timer printing p50 / p95 / max and CPU per call.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { createDatabase, type Database, migrate } from "@autoforge/db";
import { migrationsFolder } from "../../src/db/migrations-folder.js";
import { type Schema, schema } from "../../src/db/schema.js";

export const project = "user:bench";
const datasetId = "01910000-0000-7000-8000-000000000001";

export interface SeededExperiment {
  readonly id: string;
  /** Added to every `relevance` value (capped at 10): a known effect between two experiments. */
  readonly relevanceShift?: number;
}

export async function withBenchDatabase(
  name: string,
  run: (db: Database<Schema>) => Promise<void>,
): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), `eval-${name}-bench-`));
  const db = await createDatabase({ url: `file:${join(dir, "bench.db")}`, schema });
  try {
    await migrate(db, migrationsFolder);
    await run(db);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The dataset version, then each experiment: PENDING with its scores, RUNNING, its results and their values. */
export async function seedExperiments(
  db: Database<Schema>,
  size: { items: number; trials: number },
  experiments: readonly SeededExperiment[],
): Promise<void> {
  const { items, trials } = size;
  const seeded = performance.now();
  await db.write(async (tx) => {
    await tx.run(
      `INSERT INTO datasets (id, project_id, owner_id, name, created_at, updated_at) VALUES ('${datasetId}', '${project}', 'bench', 'qa', 1, 1)`,
    );
    await tx.run(
      `INSERT INTO dataset_versions (dataset_id, version, parent_version, item_count, added_count, changed_count, removed_count, creator_id, created_at)
       VALUES ('${datasetId}', 1, NULL, ${items}, ${items}, 0, 0, 'bench', 1)`,
    );
    await tx.run(
      `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ${items})
       INSERT INTO dataset_items (dataset_id, item_id, digest, input_kind, input, created_at)
       SELECT '${datasetId}', printf('item-%06d', i), printf('%064x', i), 'text', 'q', 1 FROM n`,
    );
    await tx.run(
      `INSERT INTO dataset_version_items (dataset_id, version, item_id, digest)
       SELECT dataset_id, 1, item_id, digest FROM dataset_items WHERE dataset_id = '${datasetId}'`,
    );
    await tx.run(
      `UPDATE dataset_versions SET committed = 1 WHERE dataset_id = '${datasetId}' AND version = 1`,
    );
    await tx.run(
      `UPDATE datasets SET latest_version = 1, latest_item_count = ${items} WHERE id = '${datasetId}'`,
    );
    for (const [k, e] of experiments.entries()) {
      await tx.run(
        `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, status, created_at,
           updated_at, dataset_id, dataset_version, trials_per_item)
         VALUES ('${e.id}', '${project}', 'bench', '01800000-0000-7000-8000-000000000001', 1, 'p', 'm', 'pending', 1, 1,
           '${datasetId}', 1, ${trials})`,
      );
      await tx.run(
        `INSERT INTO evaluation_scores (evaluation_id, name, position, kind, min_value, max_value, categories, direction) VALUES
           ('${e.id}', 'relevance', 0, 'numeric', 0, 10, NULL, 'higher'),
           ('${e.id}', 'toxic', 1, 'boolean', NULL, NULL, NULL, 'lower'),
           ('${e.id}', 'tone', 2, 'categorical', NULL, NULL, '["rude","neutral","friendly"]', 'higher')`,
      );
      await tx.run(`UPDATE evaluations SET status = 'running', started_at = 1 WHERE id = '${e.id}'`);
      await tx.run(
        `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ${items * trials})
         INSERT INTO test_results (id, evaluation_id, name, passed, score, latency_ms, created_at, dataset_item_id, trial)
         SELECT printf('0193000${k + 1}-0000-7000-8000-%012d', i), '${e.id}', 't', abs(random()) % 2,
           (abs(random()) % 101) / 100.0, abs(random()) % 5000, 2, printf('item-%06d', i / ${trials}), i % ${trials} + 1 FROM n`,
      );
      const shift = e.relevanceShift ?? 0;
      for (const [name, value] of [
        [
          "relevance",
          shift === 0
            ? "(abs(random()) % 1001) / 100.0"
            : `min(10.0, (abs(random()) % 1001) / 100.0 + ${shift})`,
        ],
        ["toxic", "abs(random()) % 2"],
        ["tone", "abs(random()) % 3"],
      ]) {
        await tx.run(
          `INSERT INTO test_result_scores (result_id, name, evaluation_id, dataset_item_id, value)
           SELECT id, '${name}', evaluation_id, dataset_item_id, ${value} FROM test_results WHERE evaluation_id = '${e.id}'`,
        );
      }
    }
  });
  await db.write((tx) => tx.run("ANALYZE"));
  console.log(
    `seeded ${experiments.length} experiment(s) of ${items} items x ${trials} trials (each ${items * trials} results, ${items * trials * 3} score values) in ${((performance.now() - seeded) / 1000).toFixed(1)} s`,
  );
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** Each call `rounds` times after a warm-up, one after another: latency percentiles and CPU per call. */
export async function timeCalls(
  calls: readonly (readonly [string, () => Promise<unknown>])[],
  rounds: number,
  warmUp = 5,
): Promise<void> {
  for (const [name, fn] of calls) {
    for (let i = 0; i < warmUp; i++) await fn();
    const times: number[] = [];
    const cpu = process.cpuUsage();
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      await fn();
      times.push(performance.now() - t0);
    }
    const used = process.cpuUsage(cpu);
    times.sort((a, b) => a - b);
    console.log(
      `${name.padEnd(28)} p50 ${percentile(times, 50).toFixed(2)} ms  p95 ${percentile(times, 95).toFixed(2)} ms  max ${percentile(times, 100).toFixed(2)} ms  CPU ${((used.user + used.system) / 1000 / rounds).toFixed(2)} ms/call (${rounds} calls)`,
    );
  }
}
