#!/usr/bin/env node
// Prints the closing "N passed, N failed" line from vitest's JSON report, so that CI logs end with
// one plain count whatever reporter printed above it. Exits non-zero when no test ran.
import { readFileSync } from "node:fs";

const file = process.argv[2] ?? "test-results/vitest.json";
const report = JSON.parse(readFileSync(file, "utf8"));
const passed = report.numPassedTests ?? 0;
const failed = report.numFailedTests ?? 0;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(passed > 0 && failed === 0 && report.success !== false ? 0 : 1);
