#!/usr/bin/env node
// Prints the closing "N passed, N failed" line from vitest's JSON reports, so that CI logs end with one plain
// count whatever reporter printed above it. Exits non-zero when a report failed or no test ran.
//
//   node scripts/test-summary.mjs [--engines] [LABEL=]FILE ...
//
// One report: its line. Several (one run per engine: `file=a.json sqld=b.json`): a line per report, naming it,
// then the total. `--engines` also lists, per report, the tests skipped for a capability the engine lacks (or has)
// (titles ending in `[needs <capability>]`, test/support/engine.ts), counted by capability.
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const listCapabilities = args.includes("--engines");
const reports = args.filter((a) => a !== "--engines");
if (reports.length === 0) reports.push("test-results/vitest.json");

const counts = (report) => ({
  passed: report.numPassedTests ?? 0,
  failed: report.numFailedTests ?? 0,
  skipped: (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0),
});
const line = ({ passed, failed, skipped }) =>
  `${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`;

/**
 * Skipped tests per missing capability: [["localFile", ["file > test", ...]], ...] (a test needing two is listed
 * under each).
 */
function capabilitySkips(report) {
  const byCapability = new Map();
  for (const file of report.testResults ?? []) {
    for (const test of file.assertionResults ?? []) {
      if (test.status !== "pending" && test.status !== "skipped") continue;
      // the capability is in the test's own title or in one of its describe blocks'
      const titles = [test.title, ...(test.ancestorTitles ?? [])];
      // `[needs x]`: skipped where x is missing (listed as x); `[without x]`: where x is present (as "not x")
      const needs = titles.flatMap((t) => [
        ...[...t.matchAll(/\[needs ([^\]]+)\]/g)].flatMap((m) => m[1].split(/,\s*/)),
        ...[...t.matchAll(/\[without ([^\]]+)\]/g)].map((m) => `not ${m[1]}`),
      ]);
      const name = `${(file.name ?? "").replace(`${process.cwd()}/`, "")} > ${test.fullName ?? test.title}`;
      for (const capability of new Set(needs)) {
        byCapability.set(capability, [...(byCapability.get(capability) ?? []), name]);
      }
    }
  }
  return [...byCapability].sort(([a], [b]) => a.localeCompare(b));
}

let ok = true;
const total = { passed: 0, failed: 0, skipped: 0 };
for (const entry of reports) {
  const eq = entry.indexOf("=");
  const [label, file] = eq > 0 ? [entry.slice(0, eq), entry.slice(eq + 1)] : [undefined, entry];
  let report;
  try {
    report = JSON.parse(readFileSync(file, "utf8"));
  } catch (err) {
    // a run that crashed before writing its report fails the summary without hiding the others
    console.log(`${label ?? file}: no report (${err instanceof Error ? err.message : String(err)})`);
    ok = false;
    continue;
  }
  const c = counts(report);
  total.passed += c.passed;
  total.failed += c.failed;
  total.skipped += c.skipped;
  if (c.passed === 0 || c.failed > 0 || report.success === false) ok = false;
  if (reports.length > 1 || label !== undefined) console.log(`${label ?? file}: ${line(c)}`);
  if (listCapabilities) {
    const skips = capabilitySkips(report);
    const text = skips.map(([capability, tests]) => `${capability} ${tests.length}`).join(", ");
    console.log(`  skipped by capability (lacking it, or "not" having it): ${text === "" ? "none" : text}`);
    for (const [capability, tests] of skips)
      for (const test of tests) console.log(`    ${capability}: ${test}`);
  }
}
console.log(line(total));
process.exit(ok ? 0 : 1);
