/**
 * GetEvaluationSummary's database work on a large experiment: a dataset version of 10,000 items, 3 trials each
 * (30,000 results), 3 declared scores (numeric, boolean, categorical: 90,000 values), on a `file:` database
 * with the real migrations and triggers (lib/large-experiment.ts). Runs the handler's own statements (the
 * evaluation, the default aggregates with latency percentiles, the flaky count, every score's summary) in one
 * read unit of work, as the handler does, `rounds` times, and prints p50 / p95 / max next to a primary-key read
 * of the same evaluation (the baseline: the cheapest unit of work there is) measured in the same run. Transport
 * is not included.
 *
 *   npm run bench:summary -w services/evaluation-service [-- <items> <trials> <rounds>]
 */
import { findEvaluation, summaryQuery } from "../src/db/repository.js";
import { flakyPassedItemCountQuery } from "../src/db/score-repository.js";
import { nearestRank } from "../src/domain/evaluation-state.js";
import { scoreSummaries } from "../src/handlers/score-summary.js";
import { declarationsOf } from "../src/handlers/scores.js";
import { project, seedExperiments, timeCalls, withBenchDatabase } from "./lib/large-experiment.js";

const items = Number(process.argv[2] ?? 10_000);
const trials = Number(process.argv[3] ?? 3);
const rounds = Number(process.argv[4] ?? 200);
const evaluationId = "01920000-0000-7000-8000-000000000001";

await withBenchDatabase("summary", async (db) => {
  await seedExperiments(db, { items, trials }, [{ id: evaluationId }]);
  const summary = () =>
    db.read(async (tx) => {
      const row = await findEvaluation(tx, project, evaluationId);
      if (row === undefined) throw new Error("no evaluation");
      const ranks = {
        p50: nearestRank(50, row.testCount),
        p95: nearestRank(95, row.testCount),
        p99: nearestRank(99, row.testCount),
      };
      await summaryQuery(tx, row.id, ranks);
      await flakyPassedItemCountQuery(tx, row.id);
      return scoreSummaries(tx, { id: row.id, isExperiment: true }, await declarationsOf(tx, row.id));
    });
  const sample = await summary();
  console.log(
    `scores: ${sample.map((s) => `${s.name} n=${s.count} mean=${s.mean?.toFixed(3) ?? "-"}`).join(", ")}`,
  );
  await timeCalls(
    [
      ["primary-key read (baseline)", () => db.read((tx) => findEvaluation(tx, project, evaluationId))],
      ["summary", summary],
    ],
    rounds,
    10,
  );
});
