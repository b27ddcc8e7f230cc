/**
 * CompareEvaluations' database work and statistics on two large experiments over one dataset version: 10,000
 * items, 3 trials each, 3 declared scores (numeric, boolean, categorical), so 30,000 results and 90,000 values
 * per experiment, on a `file:` database with the real migrations and triggers (seeded as bench-summary.ts seeds
 * one). Runs the handler's own reads in one read unit of work (both evaluations, their declarations, the
 * per-item values of `passed`, `score` and the two comparable named scores, the latency percentiles) and then
 * the statistics in memory (the pairing, the t-tests, Holm, the item lists), as the handler does, `rounds`
 * times; prints p50 / p95 / max and the CPU per call, next to a primary-key read of the same evaluation (the
 * baseline: the cheapest unit of work there is) measured in the same run, and the database part alone.
 * Transport is not included.
 *
 *   npm run bench:compare -w services/evaluation-service [-- <items> <trials> <rounds>]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { NumericTest, PairedTest } from "@autoforge/contracts/evaluation/v1";
import { createDatabase, migrate } from "@autoforge/db";
import { migrationsFolder } from "../src/db/migrations-folder.js";
import { findEvaluation } from "../src/db/repository.js";
import { schema } from "../src/db/schema.js";
import { comparisonResponse, readComparison } from "../src/handlers/compare-evaluations.js";

const items = Number(process.argv[2] ?? 10_000);
const trials = Number(process.argv[3] ?? 3);
const rounds = Number(process.argv[4] ?? 100);
const project = "user:bench";
const datasetId = "01910000-0000-7000-8000-000000000001";
const evaluationIds = ["01920000-0000-7000-8000-000000000001", "01920000-0000-7000-8000-000000000002"];

function percentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

async function run() {
  const dir = mkdtempSync(join(tmpdir(), "eval-compare-bench-"));
  const db = await createDatabase({ url: `file:${join(dir, "bench.db")}`, schema });
  try {
    await migrate(db, migrationsFolder);
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
      for (const [k, evaluationId] of evaluationIds.entries()) {
        await tx.run(
          `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, status, created_at,
             updated_at, dataset_id, dataset_version, trials_per_item)
           VALUES ('${evaluationId}', '${project}', 'bench', '01800000-0000-7000-8000-000000000001', 1, 'p', 'm', 'pending', 1, 1,
             '${datasetId}', 1, ${trials})`,
        );
        await tx.run(
          `INSERT INTO evaluation_scores (evaluation_id, name, position, kind, min_value, max_value, categories, direction) VALUES
             ('${evaluationId}', 'relevance', 0, 'numeric', 0, 10, NULL, 'higher'),
             ('${evaluationId}', 'toxic', 1, 'boolean', NULL, NULL, NULL, 'lower'),
             ('${evaluationId}', 'tone', 2, 'categorical', NULL, NULL, '["rude","neutral","friendly"]', 'higher')`,
        );
        await tx.run(
          `UPDATE evaluations SET status = 'running', started_at = 1 WHERE id = '${evaluationId}'`,
        );
        await tx.run(
          `WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ${items * trials})
           INSERT INTO test_results (id, evaluation_id, name, passed, score, latency_ms, created_at, dataset_item_id, trial)
           SELECT printf('0193000${k + 1}-0000-7000-8000-%012d', i), '${evaluationId}', 't', abs(random()) % 2,
             (abs(random()) % 101) / 100.0, abs(random()) % 5000, 2, printf('item-%06d', i / ${trials}), i % ${trials} + 1 FROM n`,
        );
        for (const [name, value] of [
          [
            "relevance",
            k === 0 ? "(abs(random()) % 1001) / 100.0" : "min(10.0, (abs(random()) % 1001) / 100.0 + 0.3)",
          ],
          ["toxic", "abs(random()) % 2"],
          ["tone", "abs(random()) % 3"],
        ]) {
          await tx.run(
            `INSERT INTO test_result_scores (result_id, name, evaluation_id, dataset_item_id, value)
             SELECT id, '${name}', evaluation_id, dataset_item_id, ${value} FROM test_results WHERE evaluation_id = '${evaluationId}'`,
          );
        }
      }
    });
    await db.write((tx) => tx.run("ANALYZE"));
    console.log(
      `seeded 2 experiments of ${items} items x ${trials} trials (each ${items * trials} results, ${items * trials * 3} score values) in ${((performance.now() - seeded) / 1000).toFixed(1)} s`,
    );
    const [baselineId, candidateId] = evaluationIds as [string, string];

    // the handler's own two steps: its reads in one read unit of work, then the statistics in memory
    const ids = { baselineId, candidateId };
    const read = () => db.read((tx) => readComparison(tx, project, ids));
    const compare = async () =>
      comparisonResponse(await read(), { alpha: 0.05, numericTest: NumericTest.T_TEST });
    const baseline = () => db.read((tx) => findEvaluation(tx, project, baselineId));
    const sample = await compare();
    console.log(
      `compared: ${(sample.scores ?? []).map((s) => `${s.name} ${PairedTest[s.test ?? 0]} n=${s.pairCount} diff=${s.meanDifference?.toFixed(4)} p=${s.pValue?.toPrecision(3)}`).join(", ")}; skipped: ${(sample.skippedScores ?? []).map((s) => s.name).join(", ")}`,
    );

    for (const [name, fn] of [
      ["primary-key read (baseline)", baseline],
      ["reads only", read],
      ["CompareEvaluations", compare],
    ] as const) {
      for (let i = 0; i < 5; i++) await fn(); // warm-up
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
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await run();
