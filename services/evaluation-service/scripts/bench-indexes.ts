/**
 * Which index serves the review's "mean score of passed tests" best?
 *   SELECT avg(score) FROM test_results WHERE evaluation_id = ? AND passed = 1
 * Builds one temp database per candidate (the real test_results DDL from the migrations, without the triggers,
 * plus only the candidate index besides (evaluation_id, id)), loads the same rows (default 200,000: 1,000
 * evaluations x 200 results, ~60 % passed; results of different evaluations interleaved, as concurrent runs
 * record them), runs ANALYZE, prints EXPLAIN QUERY PLAN, then times the query over every evaluation (5 rounds,
 * median; warm page cache).
 *
 *   npm run bench:indexes -w services/evaluation-service [-- <rows> <results per evaluation>]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createDatabase } from "@autoforge/db";

const totalRows = Number(process.argv[2] ?? 200_000);
const perEvaluation = Number(process.argv[3] ?? 200);
const evaluationCount = Math.max(1, Math.floor(totalRows / perEvaluation));
const rounds = 5;

const candidates = [
  { name: "review (evaluation_id, score)", ddl: "CREATE INDEX cand ON test_results (evaluation_id, score)" },
  {
    name: "(evaluation_id, passed, score)",
    ddl: "CREATE INDEX cand ON test_results (evaluation_id, passed, score)",
  },
  { name: "none (only (evaluation_id, id))", ddl: "" },
];

const query = "SELECT avg(score) AS m FROM test_results WHERE evaluation_id = ? AND passed = 1";

function evaluationId(i: number): string {
  return `0190${i.toString(16).padStart(4, "0")}-0000-7000-8000-000000000000`;
}

// Deterministic pseudo-random numbers, so every candidate gets the same rows.
function rng(seed: number) {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

async function run() {
  const dir = mkdtempSync(join(tmpdir(), "eval-bench-"));
  try {
    for (const c of candidates) {
      const db = await createDatabase({ url: `file:${join(dir, `${candidates.indexOf(c)}.db`)}` });
      await db.write(async (tx) => {
        await tx.run(`CREATE TABLE evaluations (id text PRIMARY KEY)`);
        await tx.run(`CREATE TABLE test_results (
          id text PRIMARY KEY NOT NULL, evaluation_id text NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
          name text NOT NULL, input text DEFAULT '' NOT NULL, expected_output text DEFAULT '' NOT NULL,
          actual_output text DEFAULT '' NOT NULL, passed integer NOT NULL, score real NOT NULL,
          latency_ms integer NOT NULL, metadata text DEFAULT '{}' NOT NULL, created_at integer NOT NULL)`);
        await tx.run("CREATE INDEX test_results_evaluation_id_idx ON test_results (evaluation_id, id)");
        if (c.ddl !== "") await tx.run(c.ddl);
      });
      const random = rng(42);
      const load = performance.now();
      const batchRows = 2_000;
      for (let e = 0; e < evaluationCount; e += 500) {
        await db.write(async (_tx, ctx) => {
          const ids = [];
          for (let i = e; i < Math.min(evaluationCount, e + 500); i++)
            ids.push({ sql: "INSERT INTO evaluations (id) VALUES (?)", args: [evaluationId(i)] });
          await ctx.transaction.batch(ids);
        });
      }
      // Row n belongs to evaluation n % evaluationCount: results of all evaluations interleaved.
      for (let start = 0; start < evaluationCount * perEvaluation; start += batchRows) {
        await db.write(async (_tx, ctx) => {
          const stmts = [];
          for (let n = start; n < Math.min(evaluationCount * perEvaluation, start + batchRows); n++) {
            const ev = evaluationId(n % evaluationCount);
            const passed = random() < 0.6 ? 1 : 0;
            stmts.push({
              sql: "INSERT INTO test_results (id, evaluation_id, name, input, expected_output, actual_output, passed, score, latency_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
              args: [
                `r-${n.toString().padStart(9, "0")}`,
                ev,
                `test ${n}`,
                "input ".repeat(20),
                "expected ".repeat(10),
                "actual ".repeat(10),
                passed,
                passed ? 0.5 + random() / 2 : random() / 2,
                Math.floor(random() * 2000),
                1_700_000_000_000 + n,
              ],
            });
          }
          await ctx.transaction.batch(stmts);
        });
      }
      const loadMs = performance.now() - load;
      await db.write((tx) => tx.run("ANALYZE"));
      const plan = await db.client.execute({ sql: `EXPLAIN QUERY PLAN ${query}`, args: [evaluationId(1)] });
      const times: number[] = [];
      let checksum = 0;
      for (let round = 0; round < rounds; round++) {
        const t = performance.now();
        for (let e = 0; e < evaluationCount; e++) {
          const rs = await db.client.execute({ sql: query, args: [evaluationId(e)] });
          checksum += Number(rs.rows[0]?.m ?? 0);
        }
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)] ?? 0;
      const size = await db.client
        .execute("SELECT sum(pgsize) AS s FROM dbstat WHERE name = 'cand'")
        .catch(() => null);
      console.log(
        JSON.stringify({
          candidate: c.name,
          rows: evaluationCount * perEvaluation,
          plan: plan.rows.map((r) => String(r.detail)),
          medianMsFor: `${evaluationCount} queries`,
          medianMs: Number(median.toFixed(1)),
          perQueryUs: Number(((median / evaluationCount) * 1000).toFixed(1)),
          indexBytes: size === null ? "dbstat unavailable" : Number(size.rows[0]?.s ?? 0),
          loadMs: Math.round(loadMs),
          checksum: Number((checksum / rounds).toFixed(3)),
        }),
      );
      await db.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

run().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
