#!/usr/bin/env node
// `npm run bench -- [options]`: the load suite. Builds, starts both services as production processes on fresh
// temp databases, seeds them through the public gRPC API, runs each scenario with ghz (plus a bare grpc-js
// echo server as the ceiling, same settings), optionally CPU-profiles the read scenarios, writes
// test/load/results/<timestamp>.json and prints markdown tables. See test/load/README.md.
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  ensureGhz,
  ghzVersion,
  ownerMetadata,
  runGhz,
  STORM_SECONDS,
  scenarioData,
  summarise,
} from "./lib/ghz.mjs";
import {
  captureTail,
  cpuSeconds,
  exitedChildrenCpuSeconds,
  fdLimitFor,
  findSqld,
  freePort,
  listenDrops,
  spawnWithLimit,
  stopChild,
  waitForHttpOk,
} from "./lib/procs.mjs";
import { summariseProfile } from "./lib/profile.mjs";
import { refreshEtags, seed } from "./lib/seed.mjs";
import { eventLoopDelayMs, handlingQuantileMs, scrapeMetrics } from "./lib/server-metrics.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const t0 = Date.now();
const log = (msg) => console.error(`[bench ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);

const usage = `usage: npm run bench -- [options]

  --scenarios a,b,c     scenario names (test/load/scenarios/*.json without .json), or reads | writes | all (default all)
  --duration 30s        measured time per scenario (closed loop)            [--quick: 3s]
  --warmup 5s           unmeasured run of each scenario before it            [--quick: 1s]
  --concurrency 50      ghz workers (-c)
  --connections N       HTTP/2 connections (closed loop default 1; open loop default 2000)
  --open-loop           open-loop mode: a constant --rps over --connections (concurrency >= connections)
  --rps 100             open loop: total requests/s per scenario; "auto" = half of this run's closed-loop RPS
                        (default with --mode both); per scenario: --rps 100,record-test-results=40
  --mode closed|open|both   what to run (--open-loop = --mode open); both share one seed
  --quick               tiny seed (10 owners x 10 prompts, 20 evaluations), 3 s per scenario, short profile
  --owners 100 --prompts-per-owner 100 --versions 5 --evaluations-per-owner 20 --results 50 --running-per-owner 2
  --seed-concurrency 32 concurrent seeding calls
  --profile / --no-profile   CPU-profile the read scenarios (node --cpu-prof on a restarted service; default on)
  --profile-scenarios reads   which scenarios to profile (same syntax as --scenarios)
  --profile-duration 15s
  --engine file|sqld|replica   each service's database: a local file (default), its own sqld (libsql-server)
                        over HTTP, or an embedded replica of its own sqld; sqld from SQLD_BIN or PATH
  --no-build            skip npm run build (use the current dist/)
  --service-env K=V     extra environment for both services (repeatable), e.g. LOG_LEVEL=info
  --node-arg FLAG       extra node flag for both services (repeatable), e.g. --node-arg=--trace-gc: the output
                        goes to <name>.log in the run directory (--keep), and each scenario records its start
                        in ms since each service started (trace-gc's clock)
  --keep                keep the temp directory (databases, ghz configs, profiles, service logs)
  --out FILE            results file (default test/load/results/<timestamp>.json)`;

const { values: opt } = parseArgs({
  options: {
    scenarios: { type: "string", default: "all" },
    duration: { type: "string" },
    warmup: { type: "string" },
    concurrency: { type: "string", default: "50" },
    connections: { type: "string" },
    "open-loop": { type: "boolean", default: false },
    rps: { type: "string" },
    mode: { type: "string" },
    quick: { type: "boolean", default: false },
    owners: { type: "string" },
    "prompts-per-owner": { type: "string" },
    versions: { type: "string" },
    "evaluations-per-owner": { type: "string" },
    results: { type: "string" },
    "running-per-owner": { type: "string" },
    "seed-concurrency": { type: "string", default: "32" },
    profile: { type: "boolean", default: true },
    "profile-scenarios": { type: "string", default: "reads" },
    "no-profile": { type: "boolean", default: false },
    "profile-duration": { type: "string" },
    "no-build": { type: "boolean", default: false },
    engine: { type: "string", default: "file" },
    keep: { type: "boolean", default: false },
    "service-env": { type: "string", multiple: true, default: [] },
    "node-arg": { type: "string", multiple: true, default: [] },
    out: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (opt.help) {
  console.log(usage);
  process.exit(0);
}

function seconds(s) {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(s);
  if (!m) throw new Error(`not a duration: ${s} (e.g. 30s, 500ms, 2m)`);
  const n = Number(m[1]);
  return m[2] === "ms" ? n / 1000 : m[2] === "m" ? n * 60 : n;
}
const int = (s, name) => {
  if (!/^\d+$/.test(s)) throw new Error(`--${name} must be a non-negative integer, got ${s}`);
  return Number(s);
};

const quick = opt.quick;
const mode = opt.mode ?? (opt["open-loop"] ? "open" : "closed");
if (!["closed", "open", "both"].includes(mode)) throw new Error(`--mode must be closed, open or both`);
if (!["file", "sqld", "replica"].includes(opt.engine))
  throw new Error("--engine must be file, sqld or replica");
const cfg = {
  mode,
  engine: opt.engine,
  duration: seconds(opt.duration ?? (quick ? "3s" : "30s")),
  warmup: seconds(opt.warmup ?? (quick ? "1s" : "5s")),
  concurrency: int(opt.concurrency, "concurrency"),
  closedConnections: int(mode === "closed" && opt.connections ? opt.connections : "1", "connections"),
  openConnections: int(mode !== "closed" && opt.connections ? opt.connections : "2000", "connections"),
  rpsSpec: opt.rps ?? (mode === "both" ? "auto" : "100"),
  owners: int(opt.owners ?? (quick ? "10" : "100"), "owners"),
  promptsPerOwner: int(opt["prompts-per-owner"] ?? (quick ? "10" : "100"), "prompts-per-owner"),
  versions: int(opt.versions ?? (quick ? "3" : "5"), "versions"),
  evaluationsPerOwner: int(opt["evaluations-per-owner"] ?? (quick ? "2" : "20"), "evaluations-per-owner"),
  results: int(opt.results ?? "50", "results"),
  runningPerOwner: int(opt["running-per-owner"] ?? "2", "running-per-owner"),
  seedConcurrency: int(opt["seed-concurrency"], "seed-concurrency"),
  profile: opt.profile && !opt["no-profile"],
  profileDuration: seconds(opt["profile-duration"] ?? (quick ? "3s" : "15s")),
  nodeArgs: opt["node-arg"],
  serviceEnv: Object.fromEntries(
    opt["service-env"].map((kv) => {
      const eq = kv.indexOf("=");
      if (eq < 1) throw new Error(`--service-env must be KEY=VALUE, got ${kv}`);
      return [kv.slice(0, eq), kv.slice(eq + 1)];
    }),
  ),
};
if (cfg.versions < 1 || cfg.owners < 1 || cfg.promptsPerOwner < 1) throw new Error("seed sizes must be >= 1");

// Scenarios: the checked-in ghz configs.
const scenarioDir = join(here, "scenarios");
const allScenarios = Object.fromEntries(
  readdirSync(scenarioDir)
    .filter((f) => f.endsWith(".json"))
    .map((f) => [f.slice(0, -5), JSON.parse(readFileSync(join(scenarioDir, f), "utf8"))]),
);
const order = [
  "get-prompt-by-id",
  "get-prompt-by-label",
  "list-prompts",
  "get-evaluation-summary",
  "create-prompt",
  "update-prompt",
  "create-evaluation",
  "record-test-results",
];
function selectScenarios(spec) {
  const names = new Set();
  for (const part of spec
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean)) {
    if (part === "all") for (const n of order) names.add(n);
    else if (part === "reads" || part === "writes") {
      for (const n of order) if (allScenarios[n]["x-autoforge"].kind === part.slice(0, -1)) names.add(n);
    } else if (allScenarios[part] && part !== "echo") names.add(part);
    else throw new Error(`unknown scenario ${part}; known: ${order.join(", ")}, reads, writes, all`);
  }
  return order.filter((n) => names.has(n));
}
const selected = selectScenarios(opt.scenarios);

// The fd limit: ghz and the server each hold one socket per connection.
const maxConnections = Math.max(cfg.closedConnections, mode === "closed" ? 0 : cfg.openConnections);
const fd = fdLimitFor(maxConnections + 1024);
if (fd.limit < maxConnections + 256) {
  throw new Error(`ulimit -n is ${fd.soft} (hard ${fd.hard}): too low for ${maxConnections} connections`);
}
if (fd.raised) log(`raising ulimit -n for children from ${fd.soft} to ${fd.limit}`);

const ghz = ensureGhz(log);
const ghzReportedVersion = spawnSync(ghz, ["--version"], { encoding: "utf8" }).stdout.trim();

if (!opt["no-build"]) {
  log("npm run build");
  const r = spawnSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error("npm run build failed");
}
for (const s of ["prompt-service", "evaluation-service"]) {
  if (!existsSync(join(root, "services", s, "dist", "main.js")))
    throw new Error(`services/${s}/dist/main.js missing: build first`);
}

const work = mkdtempSync(join(tmpdir(), "autoforge-load-"));
log(`work dir ${work}`);
const protoset = join(work, "autoforge.binpb");
{
  // Same as `npm run protoset`, written to the temp dir so a run never touches the shared build/.
  const r = spawnSync(join(root, "node_modules", ".bin", "buf"), ["build", "-o", protoset], {
    cwd: root,
    stdio: "inherit",
  });
  if (r.status !== 0) throw new Error("buf build failed");
}

const { createTokenSigner } = await import("@autoforge/server");
const secret = randomBytes(48).toString("base64url");
const signer = createTokenSigner(secret);
const serviceToken = await signer.signToken({
  sub: "evaluation-service",
  roles: ["service"],
  projects: "*",
  ttl: "24h",
});

// ---------------------------------------------------------------------------------------------- processes
const procs = {};
/** The service's database as its environment on --engine (an sqld per service, started on first use). */
async function databaseEnv(name) {
  if (cfg.engine === "file") return { DATABASE_URL: `file:${join(work, `${name}.db`)}` };
  const key = `${name}-sqld`;
  procs[key] ??= await startSqld(name);
  const { url } = procs[key];
  return cfg.engine === "sqld"
    ? { DATABASE_URL: url }
    : { DATABASE_URL: `file:${join(work, `${name}-replica.db`)}`, DATABASE_SYNC_URL: url };
}
async function startSqld(name) {
  const binary = findSqld();
  if (binary === undefined)
    throw new Error(`--engine ${cfg.engine} needs sqld: set SQLD_BIN or put sqld on PATH`);
  const port = await freePort();
  const child = spawnWithLimit(
    binary,
    ["--db-path", join(work, `${name}.sqld`), "--http-listen-addr", `127.0.0.1:${port}`, "--no-welcome"],
    { cwd: work, env: { ...process.env, RUST_LOG: "error" }, stdio: ["ignore", "pipe", "pipe"] },
    fd.limit,
  );
  const tail = captureTail(child, 50);
  const url = `http://127.0.0.1:${port}`;
  await waitForHttpOk(`${url}/health`, 30_000, child, tail);
  return { name: `${name} sqld`, child, tail, url };
}
async function startService(name, { cpuProfDir } = {}) {
  const old = procs[name];
  const grpcPort = old?.grpcPort ?? (await freePort());
  const connectPort = old?.connectPort ?? (await freePort());
  const env = {
    PATH: process.env.PATH ?? "",
    HOME: process.env.HOME ?? "",
    NODE_ENV: "production",
    HOST: "127.0.0.1",
    GRPC_PORT: String(grpcPort),
    CONNECT_PORT: String(connectPort),
    ...(await databaseEnv(name)),
    AUTH_JWT_SECRET: secret,
    LOG_LEVEL: "warn",
    SERVICE_TOKEN: serviceToken,
    ...cfg.serviceEnv,
  };
  if (name === "evaluation-service")
    env.PROMPT_SERVICE_URL = `http://127.0.0.1:${procs["prompt-service"].grpcPort}`;
  const spawnedAt = Date.now();
  const args = [...cfg.nodeArgs];
  if (cpuProfDir) args.push("--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`);
  args.push("dist/main.js");
  const child = spawnWithLimit(
    process.execPath,
    args,
    { cwd: join(root, "services", name), env, stdio: ["ignore", "pipe", "pipe"] },
    fd.limit,
  );
  const tail = captureTail(child, 200);
  // everything the service logs (warn and above), kept with --keep: retries, slow units, errors
  const logFile = createWriteStream(join(work, `${name}.log`), { flags: "a" });
  child.stdout?.pipe(logFile);
  child.stderr?.pipe(logFile);
  await waitForHttpOk(`http://127.0.0.1:${connectPort}/healthz`, 60_000, child, tail);
  procs[name] = { name, child, tail, grpcPort, connectPort, address: `127.0.0.1:${grpcPort}`, spawnedAt };
  return procs[name];
}
async function startEcho() {
  const child = spawnWithLimit(
    process.execPath,
    [join(here, "lib", "echo-server.mjs")],
    { cwd: root, stdio: ["ignore", "pipe", "pipe"] },
    fd.limit,
  );
  const port = await new Promise((resolve, reject) => {
    let buf = "";
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (c) => {
      buf += c;
      const m = /"grpcPort":(\d+)/.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once("exit", (code) => reject(new Error(`echo server exited (${code})`)));
  });
  procs.echo = { name: "echo", child, tail: [], address: `127.0.0.1:${port}` };
}
async function stopAll() {
  for (const name of [
    "evaluation-service",
    "prompt-service",
    "echo",
    "evaluation-service-sqld",
    "prompt-service-sqld",
  ]) {
    if (procs[name]) await stopChild(procs[name].child);
  }
}
let interrupted = false;
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    log(`${sig}: stopping services`);
    stopAll().finally(() => process.exit(130));
  });
}
process.on("exit", () => {
  for (const p of Object.values(procs))
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
});

// ------------------------------------------------------------------------------------------------- helpers
function interleave(perOwner) {
  const n = Math.min(...perOwner.map((l) => l.length));
  const out = [];
  for (let j = 0; j < n; j++) for (let o = 0; o < perOwner.length; o++) out.push(perOwner[o][j]);
  return out;
}
const fmtS = (s) => `${Number.isInteger(s) ? s : s.toFixed(3)}s`;

const results = {
  startedAt: new Date(t0).toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    ghz: process.env.GHZ ? ghzReportedVersion || "unknown" : ghzVersion,
    loadavgAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    fdLimit: fd.limit,
    note: "ghz runs on the same machine as the servers; the machine is shared (noisy)",
  },
  options: { ...cfg, scenarios: selected },
  seed: null,
  closedLoop: null,
  openLoop: null,
  profiles: [],
};

try {
  // -------------------------------------------------------------------------------------------- start + seed
  log(
    "starting prompt-service, evaluation-service (NODE_ENV=production, LOG_LEVEL=warn) and the echo server",
  );
  await startService("prompt-service");
  await startService("evaluation-service");
  await startEcho();

  const seedStarted = performance.now();
  log(
    `seeding ${cfg.owners} owners x ${cfg.promptsPerOwner} prompts x ${cfg.versions} versions, ` +
      `${cfg.owners * cfg.evaluationsPerOwner} evaluations x ${cfg.results} results, concurrency ${cfg.seedConcurrency}`,
  );
  const seeded = await seed({
    promptAddress: procs["prompt-service"].address,
    evaluationAddress: procs["evaluation-service"].address,
    tokenFor: (sub) => signer.signToken({ sub, roles: ["user", "publisher"], ttl: "24h" }),
    owners: cfg.owners,
    promptsPerOwner: cfg.promptsPerOwner,
    versions: cfg.versions,
    evaluationsPerOwner: cfg.evaluationsPerOwner,
    resultsPerEvaluation: cfg.results,
    runningPerOwner: cfg.runningPerOwner,
    concurrency: cfg.seedConcurrency,
    log,
  });
  const seedSeconds = (performance.now() - seedStarted) / 1000;
  const promptCalls = seeded.timings.prompts.calls;
  results.seed = {
    seconds: Math.round(seedSeconds * 10) / 10,
    owners: cfg.owners,
    prompts: cfg.owners * cfg.promptsPerOwner,
    promptVersions: cfg.owners * cfg.promptsPerOwner * cfg.versions,
    evaluations: cfg.owners * cfg.evaluationsPerOwner,
    testResults: cfg.owners * cfg.evaluationsPerOwner * cfg.results,
    runningEvaluations: cfg.owners * cfg.runningPerOwner,
    phases: Object.fromEntries(
      Object.entries(seeded.timings).map(([k, v]) => [
        k,
        {
          seconds: Math.round(v.seconds * 10) / 10,
          calls: v.calls,
          callsPerSecond: Math.round(v.calls / v.seconds),
        },
      ]),
    ),
  };
  log(
    `seeded in ${seedSeconds.toFixed(1)} s (prompts: ${promptCalls} calls in ${seeded.timings.prompts.seconds.toFixed(1)} s; ` +
      `evaluations: ${seeded.timings.evaluations.calls} calls in ${seeded.timings.evaluations.seconds.toFixed(1)} s)`,
  );

  const tokens = seeded.owners.map((o) => o.token);
  const metadata = ownerMetadata(tokens);
  const pools = {
    prompts: interleave(seeded.prompts),
    evaluations: interleave(seeded.evaluations),
    running: interleave(seeded.running),
  };
  // UpdatePrompt consumes one prompt (its etag) per request: a cursor over the prompts; when too few are left,
  // the used ones get their etags re-read (GetPrompt) and the cursor starts again.
  let updateCursor = 0;
  async function takeUpdateTargets(wanted) {
    const K = tokens.length;
    const all = pools.prompts;
    if (all.length - updateCursor < Math.min(wanted, all.length) && updateCursor > 0) {
      log(`update targets: re-reading the etags of ${updateCursor} updated prompts`);
      await refreshEtags(
        procs["prompt-service"].address,
        seeded.owners,
        all.slice(0, updateCursor),
        cfg.seedConcurrency,
      );
      updateCursor = 0;
    }
    let n = Math.min(wanted, all.length - updateCursor);
    if (n > K) n -= n % K; // keep item i <-> owner i % K
    const items = all.slice(updateCursor, updateCursor + n);
    updateCursor += n; // ghz -n sends exactly n requests
    return items;
  }

  // ------------------------------------------------------------------------------------------ one ghz run
  async function runScenario(name, settings, { warm = false, label, metadata: md = metadata } = {}) {
    const scenario = name === "echo" ? allScenarios.echo : allScenarios[name];
    const x = scenario["x-autoforge"];
    const target = x.service === "echo" ? procs.echo : procs[`${x.service}-service`];
    let items;
    const s = { ...settings, host: target.address };
    if (x.consumes) {
      // One prompt per request, so exactly as many requests as targets: ghz -n (its -x would ignore -n).
      items = await takeUpdateTargets(settings.total);
      s.total = items.length;
      delete s.duration;
    } else if (x.pool) items = pools[x.pool];
    const data = scenarioData(scenario, items);
    const services = [procs["prompt-service"], procs["evaluation-service"]];
    const watched = [...services, procs.echo];
    const cpuBefore = watched.map((p) => cpuSeconds(p.child.pid));
    // the services' sqld processes (--engine sqld | replica): the database's share of a request
    const databases = ["prompt-service-sqld", "evaluation-service-sqld"].map((k) => procs[k]).filter(Boolean);
    const databaseCpuBefore = databases.map((p) => cpuSeconds(p.child.pid));
    const clientCpuBefore = exitedChildrenCpuSeconds();
    const dropsBefore = listenDrops();
    // also resets each service's event-loop delay histogram: the scrape after the run covers the run
    const metricsBefore = await Promise.all(services.map((p) => scrapeMetrics(p.connectPort)));
    const startedAt = Date.now();
    const load = loadavg()[0];
    const run = await runGhz({
      ghz,
      root,
      dir: work,
      name: `${label ?? "run"}-${name}${warm ? "-warmup" : ""}`,
      scenario,
      data,
      metadata: md,
      settings: s,
      protoset,
      fdLimit: fd.limit,
    });
    const cpuAfter = watched.map((p) => cpuSeconds(p.child.pid));
    const databaseCpu = databases.reduce((t, p, i) => t + cpuSeconds(p.child.pid) - databaseCpuBefore[i], 0);
    const clientCpu = exitedChildrenCpuSeconds() - clientCpuBefore;
    const drops = listenDrops();
    const metricsAfter = await Promise.all(services.map((p) => scrapeMetrics(p.connectPort)));
    const targetIndex = services.indexOf(target);
    const sum = summarise(run.report);
    const cpu = Object.fromEntries(
      watched.map((p, i) => [
        p.name,
        Math.round(((cpuAfter[i] - cpuBefore[i]) / Math.max(0.001, sum.seconds)) * 100),
      ]),
    );
    const serviceCpu =
      x.service === "echo"
        ? cpuAfter[2] - cpuBefore[2]
        : cpuAfter[0] - cpuBefore[0] + cpuAfter[1] - cpuBefore[1];
    return {
      scenario: name,
      name: scenario.name,
      service: target.name,
      kind: x.kind,
      ...sum,
      fixedRequests: x.consumes ? s.total : undefined,
      serverCpuPct: cpu,
      serverCpuMsPerRequest: perRequestMs(serviceCpu, sum.count),
      databaseCpuMsPerRequest:
        databases.length === 0 || x.service === "echo" ? undefined : perRequestMs(databaseCpu, sum.count),
      // ghz's CPU (warm-up excluded: it is a run of its own) — on a 2-core machine, the client's share matters
      clientCpuMsPerRequest: perRequestMs(clientCpu, sum.count),
      // what the target service measured itself: p95 of the handling time in its middleware chain (upper bound
      // of the histogram bucket), and each service's event-loop delay during the run
      serverHandlingP95Ms:
        targetIndex === -1
          ? undefined
          : handlingQuantileMs(metricsBefore[targetIndex], metricsAfter[targetIndex], scenario.call, 0.95),
      // SYNs dropped on full accept queues during the run (whole machine: other processes count too)
      listenDrops: drops === undefined || dropsBefore === undefined ? undefined : drops - dropsBefore,
      eventLoopDelayMs: Object.fromEntries(
        services.map((p, i) => [p.name, eventLoopDelayMs(metricsAfter[i])]),
      ),
      loadavg1m: Math.round(load * 100) / 100,
      // when the run started on each service's own clock (ms since it was spawned), to line up its logs
      serviceClockMs: Object.fromEntries(
        watched.filter((p) => p.spawnedAt !== undefined).map((p) => [p.name, startedAt - p.spawnedAt]),
      ),
      settings: {
        concurrency: s.concurrency,
        connections: s.connections,
        duration: s.duration,
        total: s.total,
        rps: s.rps || undefined,
      },
    };
  }

  function perRequestMs(seconds, count) {
    return count && Number.isFinite(seconds) ? Math.round((seconds * 1000 * 100) / count) / 100 : null;
  }

  /** Open-loop rate of a scenario: --rps N | auto (half the closed-loop RPS of this run) | N,name=M,... */
  function rpsFor(name) {
    const parts = cfg.rpsSpec.split(",").map((p) => p.trim());
    const override = parts.find((p) => p.startsWith(`${name}=`));
    const spec = override ? override.slice(name.length + 1) : parts.find((p) => !p.includes("="));
    if (spec === "auto") {
      const closed = results.closedLoop?.scenarios.find((r) => r.scenario === name);
      if (!closed) throw new Error("--rps auto needs the closed loop in the same run (--mode both)");
      return Math.max(1, Math.round(closed.rps / 2));
    }
    if (!/^\d+$/.test(spec ?? "")) throw new Error(`--rps: no rate for ${name} in ${cfg.rpsSpec}`);
    return Number(spec);
  }

  async function runSuite(kind) {
    const open = kind === "open";
    const base = open
      ? { concurrency: Math.max(cfg.openConnections, cfg.concurrency), connections: cfg.openConnections }
      : { concurrency: cfg.concurrency, connections: cfg.closedConnections };
    const rates = open ? Object.fromEntries(selected.map((n) => [n, rpsFor(n)])) : {};
    // The echo runs at the highest scenario rate (open loop).
    if (open) rates.echo = Math.max(...Object.values(rates));
    log(
      open
        ? `open loop: ${JSON.stringify(rates)} req/s over ${cfg.openConnections} connections (c=${base.concurrency}), ${fmtS(cfg.duration)} each`
        : `closed loop: c=${cfg.concurrency} over ${cfg.closedConnections} connection(s), ${fmtS(cfg.duration)} each (+${fmtS(cfg.warmup)} warm-up)`,
    );
    const rows = [];
    const echoRuns = [];
    const once = async (name) => {
      const consumes = allScenarios[name]?.["x-autoforge"].consumes === true;
      const rps = open ? rates[name] : undefined;
      let total; // for UpdatePrompt: requests = targets, sized to last about --duration
      if (open) total = Math.ceil(rps * cfg.duration);
      else total = Math.ceil(cfg.duration * 100);
      if (cfg.warmup > 0 && !open) {
        const warm = await runScenario(
          name,
          {
            ...base,
            duration: fmtS(cfg.warmup),
            total: consumes ? Math.max(base.concurrency * 4, Math.ceil(cfg.warmup * 50)) : undefined,
          },
          { warm: true, label: kind },
        );
        if (consumes) total = Math.ceil(warm.rps * cfg.duration * 1.3); // the warm-up rate underestimates (JIT, ramp)
      }
      const row = await runScenario(
        name,
        { ...base, rps, duration: fmtS(cfg.duration), total: consumes ? total : undefined },
        { label: kind },
      );
      if (open) row.targetRps = rps;
      if (open && name === "echo") row.targetRps = rates.echo;
      log(
        `  ${row.name}: ${row.rps} req/s, p50 ${row.p50} ms, p95 ${row.p95} ms, p99 ${row.p99} ms, ` +
          `errors ${(row.errorRate * 100).toFixed(2)} % (${row.count} requests), server CPU ${JSON.stringify(row.serverCpuPct)}`,
      );
      if (row.errors > 0) log(`    errors: ${JSON.stringify(row.errorDistribution).slice(0, 400)}`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      return row;
    };
    echoRuns.push(await once("echo"));
    for (const name of selected) rows.push(await once(name));
    echoRuns.push(await once("echo"));
    // For reference: the same echo with one static token (no per-request metadata template in ghz).
    const staticEcho = await runScenario(
      "echo",
      { ...base, rps: rates.echo, duration: fmtS(cfg.duration) },
      { label: `${kind}-static`, metadata: ownerMetadata(tokens.slice(0, 1)) },
    );
    if (open) staticEcho.targetRps = rates.echo;
    log(`  echo, one static token: ${staticEcho.rps} req/s, p95 ${staticEcho.p95} ms`);
    const ceiling = Math.max(...echoRuns.map((r) => r.rps));
    for (const r of rows) r.fractionOfEcho = Math.round((r.rps / ceiling) * 1000) / 1000;
    return {
      settings: base,
      duration: cfg.duration,
      echo: echoRuns,
      echoStaticToken: staticEcho,
      ceilingRps: ceiling,
      scenarios: rows,
    };
  }

  if (mode === "closed" || mode === "both") results.closedLoop = await runSuite("closed");
  if (mode === "open" || mode === "both") results.openLoop = await runSuite("open");

  // --------------------------------------------------------------------------------------------- profiles
  const toProfile = selectScenarios(opt["profile-scenarios"]).filter((n) => selected.includes(n));
  if (cfg.profile && toProfile.length > 0) {
    const profDir = join(work, "profiles");
    mkdirSync(profDir, { recursive: true });
    for (const name of toProfile) {
      const service = `${allScenarios[name]["x-autoforge"].service}-service`;
      const dir = join(profDir, name);
      mkdirSync(dir);
      log(
        `profiling ${service} under ${name} (node --cpu-prof, ${fmtS(cfg.profileDuration)}, c=${cfg.concurrency})`,
      );
      await stopChild(procs[service].child);
      await startService(service, { cpuProfDir: dir });
      await runScenario(
        name,
        {
          concurrency: cfg.concurrency,
          connections: cfg.closedConnections,
          duration: fmtS(Math.max(1, cfg.warmup)),
        },
        { label: "profile", warm: true },
      );
      const fromMs = Date.now() - procs[service].spawnedAt;
      const row = await runScenario(
        name,
        {
          concurrency: cfg.concurrency,
          connections: cfg.closedConnections,
          duration: fmtS(cfg.profileDuration),
        },
        { label: "profile" },
      );
      const toMs = Date.now() - procs[service].spawnedAt;
      await stopChild(procs[service].child);
      const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
      if (!file) {
        log(`  no profile written for ${service}: ${procs[service].tail.slice(-5).join(" | ")}`);
      } else {
        const summary = summariseProfile(join(dir, file), { fromMs, toMs });
        results.profiles.push({ scenario: name, service, rpsWhileProfiling: row.rps, ...summary });
        log(
          `  ${name}: ${row.rps} req/s while profiling; busy ${summary.busyMs} ms of ${summary.totalMs} ms`,
        );
      }
      await startService(service);
    }
  }
} finally {
  await stopAll();
}

// ------------------------------------------------------------------------------------------------- report
const outFile =
  opt.out ??
  join(here, "results", `${new Date(t0).toISOString().replace(/[:.]/g, "-").replace(/Z$/, "")}Z.json`);
mkdirSync(dirname(outFile), { recursive: true });
results.finishedAt = new Date().toISOString();
writeFileSync(outFile, `${JSON.stringify(results, null, 2)}\n`);
if (!opt.keep) rmSync(work, { recursive: true, force: true });
else log(`kept ${work}`);

/** The target service's own view of a run: handling p95 (bucket bound) | its event-loop delay p99 / max. */
function inService(r) {
  const p95 = r.serverHandlingP95Ms;
  const delay = r.eventLoopDelayMs?.[r.service];
  const bound = p95 === undefined ? "-" : Number.isFinite(p95) ? `≤ ${p95}` : "> 10000";
  return `${bound} | ${delay?.p99 === undefined ? "-" : `${delay.p99} / ${delay.max}`}`;
}

function table(suite, title) {
  const open = suite.scenarios.some((r) => r.targetRps !== undefined) || suite.echo.some((r) => r.targetRps);
  const columns = open
    ? ["target RPS", "achieved RPS", "p50 ms", "p95 ms", "p99 ms", `p95 ms after ${STORM_SECONDS} s`]
    : ["RPS", "p50 ms", "p95 ms", "p99 ms"];
  columns.push("errors", "error rate");
  if (!open) columns.push("RPS / echo");
  columns.push("server CPU ms/req");
  if (cfg.engine !== "file") columns.push("sqld CPU ms/req");
  columns.push("ghz CPU ms/req", "in-service p95 ms", "event-loop delay p99 / max ms");
  if (open) columns.push("SYNs dropped");
  const lines = [
    `### ${title}`,
    "",
    `ghz ${results.machine.ghz}, -c ${suite.settings.concurrency}, --connections ${suite.settings.connections}, ` +
      `${fmtS(suite.duration)} per scenario${open ? "" : ` (after a ${fmtS(cfg.warmup)} warm-up)`}; ` +
      `echo ceiling ${suite.ceilingRps} req/s (runs: ${suite.echo.map((e) => e.rps).join(", ")})`,
    "",
    `| scenario | ${columns.join(" | ")} |`,
    `|---|${"---:|".repeat(columns.length)}`,
  ];
  const sqldCpu = (r) => (cfg.engine === "file" ? "" : ` ${r.databaseCpuMsPerRequest ?? "-"} |`);
  const row = (r, frac) =>
    open
      ? `| ${r.name} | ${r.targetRps ?? "-"} | ${r.rps} | ${r.p50 ?? "-"} | ${r.p95 ?? "-"} | ${r.p99 ?? "-"} | ` +
        `${r.timeline?.afterStart?.p95 ?? "-"} | ` +
        `${r.errors}/${r.count} | ${(r.errorRate * 100).toFixed(2)} % | ${r.serverCpuMsPerRequest ?? "-"} |${sqldCpu(r)} ` +
        `${r.clientCpuMsPerRequest ?? "-"} | ${inService(r)} | ${r.listenDrops ?? "-"} |`
      : `| ${r.name} | ${r.rps} | ${r.p50 ?? "-"} | ${r.p95 ?? "-"} | ${r.p99 ?? "-"} | ${r.errors}/${r.count} | ` +
        `${(r.errorRate * 100).toFixed(2)} % | ${frac} | ${r.serverCpuMsPerRequest ?? "-"} |${sqldCpu(r)} ${r.clientCpuMsPerRequest ?? "-"} | ` +
        `${inService(r)} |`;
  for (const r of suite.scenarios) lines.push(row(r, r.fractionOfEcho.toFixed(2)));
  for (const [i, e] of suite.echo.entries()) lines.push(row({ ...e, name: `${e.name} #${i + 1}` }, "1.00"));
  const st = suite.echoStaticToken;
  if (st) {
    lines.push(
      row(
        { ...st, name: "echo, one static token (no metadata template; reference only)" },
        (st.rps / suite.ceilingRps).toFixed(2),
      ),
    );
  }
  return lines.join("\n");
}
const out = [`## Load run ${results.startedAt} (engine: ${cfg.engine})`, ""];
out.push(
  `Seed: ${results.seed?.prompts} prompts (${results.seed?.promptVersions} versions) of ${results.seed?.owners} owners, ` +
    `${results.seed?.evaluations} evaluations with ${results.seed?.testResults} results, in ${results.seed?.seconds} s. ` +
    `Machine: ${results.machine.cpus} CPUs (${results.machine.cpuModel}), load average at start ${results.machine.loadavgAtStart.join(" ")}.`,
  "",
);
if (results.closedLoop) out.push(table(results.closedLoop, "Closed loop"), "");
if (results.openLoop) out.push(table(results.openLoop, "Open loop"), "");
for (const p of results.profiles) {
  out.push(
    `### CPU profile: ${p.service} under ${p.scenario} (${p.rpsWhileProfiling} req/s while profiling, busy ${Math.round((100 * p.busyMs) / Math.max(1, p.totalMs))} % of the main thread)`,
    "",
    "| self % | self ms | frame | where |",
    "|---:|---:|---|---|",
    ...p.top
      .slice(0, 15)
      .map((f) => `| ${f.selfPct} | ${f.selfMs} | \`${f.frame}\` | ${f.location || f.owner} |`),
    "",
    `By layer (self time): ${p.byLayer.map((o) => `${o.layer} ${o.selfPct} %`).join("; ")}`,
    "",
    `By package (self time): ${p.byOwner.map((o) => `${o.owner} ${o.selfPct} %`).join(", ")}`,
    "",
  );
}
out.push(`Results: ${outFile}`);
console.log(out.join("\n"));
const failed = [results.closedLoop, results.openLoop]
  .filter(Boolean)
  .flatMap((s) => s.scenarios)
  .filter((r) => r.count === 0);
process.exit(failed.length > 0 ? 1 : 0);
