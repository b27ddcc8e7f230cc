/**
 * CompareEvaluations' database work and statistics on two large experiments over one dataset version: 10,000
 * items, 3 trials each, 3 declared scores (numeric, boolean, categorical), so 30,000 results and 90,000 values
 * per experiment, on a `file:` database with the real migrations and triggers (lib/large-experiment.ts; the
 * candidate's `relevance` is 0.3 higher). Runs the handler's own reads in one read unit of work (both
 * evaluations, their declarations, the per-item values of `passed`, `score` and the two comparable named scores,
 * the latency percentiles) and then the statistics in memory (the pairing, the t-tests, Holm, the item lists), as
 * the handler does, `rounds` times; prints p50 / p95 / max and the CPU per call, next to a primary-key read of the
 * same evaluation (the baseline: the cheapest unit of work there is) measured in the same run, and the database
 * part alone. Transport is not included.
 *
 *   npm run bench:compare -w services/evaluation-service [-- <items> <trials> <rounds>]
 */
import { NumericTest, PairedTest } from "@autoforge/contracts/evaluation/v1";
import { findEvaluation } from "../src/db/repository.js";
import { comparisonResponse, readComparison } from "../src/handlers/compare-evaluations.js";
import { project, seedExperiments, timeCalls, withBenchDatabase } from "./lib/large-experiment.js";

const items = Number(process.argv[2] ?? 10_000);
const trials = Number(process.argv[3] ?? 3);
const rounds = Number(process.argv[4] ?? 100);
const baselineId = "01920000-0000-7000-8000-000000000001";
const candidateId = "01920000-0000-7000-8000-000000000002";

await withBenchDatabase("compare", async (db) => {
  await seedExperiments(db, { items, trials }, [
    { id: baselineId },
    { id: candidateId, relevanceShift: 0.3 },
  ]);
  // the handler's own two steps: its reads in one read unit of work, then the statistics in memory
  const read = () => db.read((tx) => readComparison(tx, project, { baselineId, candidateId }));
  const compare = async () =>
    comparisonResponse(await read(), { alpha: 0.05, numericTest: NumericTest.T_TEST });
  const sample = await compare();
  console.log(
    `compared: ${(sample.scores ?? []).map((s) => `${s.name} ${PairedTest[s.test ?? 0]} n=${s.pairCount} diff=${s.meanDifference?.toFixed(4)} p=${s.pValue?.toPrecision(3)}`).join(", ")}; skipped: ${(sample.skippedScores ?? []).map((s) => s.name).join(", ")}`,
  );
  await timeCalls(
    [
      ["primary-key read (baseline)", () => db.read((tx) => findEvaluation(tx, project, baselineId))],
      ["reads only", read],
      ["CompareEvaluations", compare],
    ],
    rounds,
  );
});
