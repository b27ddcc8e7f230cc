/**
 * Reads on an embedded replica with its primary up, then with the primary stopped (SIGSTOP: it keeps its
 * sockets and answers nothing) while one write waits for it: read latency and the event loop's delay
 * (`monitorEventLoopDelay`, 1 ms resolution) in each phase. A watchdog process sends SIGCONT after
 * `stopSeconds + 3` s whatever happens here, so a blocked event loop ends too (and shows as the stall).
 *
 *   SQLD_BIN=../shared/bin/sqld node --conditions=source --import tsx packages/db/bench/replica-reads.ts [seconds=3]
 *
 * `DB_IMPL=/path/to/index.ts` measures another copy of the package (see common.ts), e.g. the one before the
 * replica worker.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { eq } from "drizzle-orm";
import { loadImpl, migrationsDir, schema } from "./common.js";

const seconds = Number(process.argv[2] ?? 3);
const binary = process.env.SQLD_BIN ?? "sqld";
const { authors } = schema;

const port = await new Promise<number>((resolve) => {
  const server = createServer().listen(0, "127.0.0.1", () => {
    const address = server.address();
    server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
  });
});
const dir = mkdtempSync(join(tmpdir(), "autoforge-replica-bench-"));
const primary = spawn(
  binary,
  ["--db-path", join(dir, "primary.sqld"), "--no-welcome", "--http-listen-addr", `127.0.0.1:${port}`],
  { stdio: "ignore", env: { ...process.env, RUST_LOG: "off" } },
);
const url = `http://127.0.0.1:${port}`;
for (;;) {
  try {
    if ((await fetch(`${url}/health`)).ok) break;
  } catch {
    // not yet
  }
  await new Promise((resolve) => setTimeout(resolve, 50));
}

const dbModule = await loadImpl();
const db = await dbModule.createDatabase({ url: `file:${join(dir, "replica.db")}`, syncUrl: url, schema });
await dbModule.migrate(db, migrationsDir);
const ROWS = 200;
await db.write(async (tx) => {
  for (let id = 1; id <= ROWS; id++) await tx.insert(authors).values({ id, name: `author ${id}` });
});

interface Phase {
  phase: string;
  reads: number;
  failed: number;
  readP50Ms: string;
  readP99Ms: string;
  readMaxMs: string;
  loopDelayP50Ms: string;
  loopDelayP99Ms: string;
  loopDelayMaxMs: string;
}

async function measure(phase: string): Promise<Phase> {
  const latencies: number[] = [];
  let failed = 0;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const end = performance.now() + seconds * 1000;
  let id = 0;
  while (performance.now() < end) {
    id = (id % ROWS) + 1;
    const started = performance.now();
    try {
      await db.read((tx) => tx.select().from(authors).where(eq(authors.id, id)), {
        deadline: Date.now() + 1_000,
      });
      latencies.push(performance.now() - started);
    } catch {
      failed++;
    }
    // a server's reads arrive as I/O: let timers and the loop run between them
    await new Promise((resolve) => setImmediate(resolve));
  }
  loop.disable();
  latencies.sort((a, b) => a - b);
  const at = (q: number) =>
    (latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0).toFixed(2);
  const ms = (ns: number) => (ns / 1e6).toFixed(1);
  return {
    phase,
    reads: latencies.length,
    failed,
    readP50Ms: at(0.5),
    readP99Ms: at(0.99),
    readMaxMs: (latencies.at(-1) ?? 0).toFixed(2),
    loopDelayP50Ms: ms(loop.percentile(50)),
    loopDelayP99Ms: ms(loop.percentile(99)),
    loopDelayMaxMs: ms(loop.max),
  };
}

// the first phase warms up (JIT, statement caches) and is not reported
await measure("warm-up");
const results: Phase[] = [await measure("primary up")];
primary.kill("SIGSTOP");
const watchdog = spawn("sh", ["-c", `sleep ${seconds + 3}; kill -CONT ${primary.pid}`], { stdio: "ignore" });
const pendingWrite = db.write((tx) => tx.insert(authors).values({ id: ROWS + 1, name: "during the stop" }));
pendingWrite.catch(() => undefined);
results.push(await measure("primary SIGSTOPped, a write waiting"));
primary.kill("SIGCONT");
watchdog.kill();
const writeOutcome = await pendingWrite.then(
  () => "committed after SIGCONT",
  (err: unknown) => `failed: ${String(err).slice(0, 80)}`,
);
console.table(results);
console.log(`the waiting write: ${writeOutcome}`);
await db.close();
primary.kill("SIGKILL");
rmSync(dir, { recursive: true, force: true });
