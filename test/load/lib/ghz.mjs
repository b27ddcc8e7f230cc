// ghz: installation (pinned), per-run configs built from the checked-in scenario configs, and reports.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { spawnWithLimit } from "./procs.mjs";

export const ghzModule = "github.com/bojand/ghz/cmd/ghz";
export const ghzVersion = "v0.121.0";

function goEnv(name) {
  const r = spawnSync("go", ["env", name], { encoding: "utf8" });
  return r.status === 0 ? r.stdout.trim() : "";
}

/** The ghz binary: $GHZ, then GOBIN / GOPATH/bin / ~/go/bin; `go install`s the pinned version when missing. */
export function ensureGhz(log) {
  if (process.env.GHZ) return process.env.GHZ;
  const gobin = goEnv("GOBIN");
  const gopath = goEnv("GOPATH").split(":")[0];
  const candidates = [gobin, gopath && join(gopath, "bin"), join(homedir(), "go", "bin")].filter(Boolean);
  for (const dir of candidates) {
    const bin = join(dir, "ghz");
    if (existsSync(bin)) {
      // `go install` builds report "dev" from --version; the module version is in the build info.
      const info = spawnSync("go", ["version", "-m", bin], { encoding: "utf8" }).stdout ?? "";
      const version = /\bmod\s+github\.com\/bojand\/ghz\s+(\S+)/.exec(info)?.[1];
      if (version === ghzVersion) return bin;
      log(`ghz at ${bin} is ${version ?? "of unknown version"}, want ${ghzVersion}: reinstalling`);
      break;
    }
  }
  log(`installing ghz ${ghzVersion} (go install ${ghzModule}@${ghzVersion}; about a minute on 2 cores)`);
  const r = spawnSync("go", ["install", `${ghzModule}@${ghzVersion}`], { stdio: "inherit" });
  if (r.status !== 0) throw new Error("go install of ghz failed (is Go and its module proxy reachable?)");
  for (const dir of [goEnv("GOBIN"), join(goEnv("GOPATH").split(":")[0], "bin")].filter(Boolean)) {
    if (existsSync(join(dir, "ghz"))) return join(dir, "ghz");
  }
  throw new Error("ghz was installed but not found in GOBIN or GOPATH/bin");
}

/** ghz metadata: one owner's token per request, `RequestNumber % owners` (data files are interleaved the same way). */
export function ownerMetadata(tokens) {
  if (tokens.length === 1) return { authorization: `Bearer ${tokens[0]}` };
  const list = tokens.map((t) => `\`${t}\``).join(" ");
  return { authorization: `Bearer {{index (list ${list}) (mod .RequestNumber ${tokens.length})}}` };
}

function repeatResults(data, repeat) {
  const template = data[repeat.field][0];
  const out = [];
  for (let i = 0; i < repeat.times; i++) {
    const item = JSON.parse(JSON.stringify(template).replaceAll("$i", String(i).padStart(3, "0")));
    for (const [field, values] of Object.entries(repeat.vary ?? {})) item[field] = values[i % values.length];
    out.push(item);
  }
  return { ...data, [repeat.field]: out };
}

/**
 * The message(s) a scenario sends: its `data`, expanded (`repeat`), and, when it reads a seed pool, one
 * message per pool item (interleaved by owner, so item `i` belongs to owner `i % owners`).
 */
export function scenarioData(scenario, items) {
  const x = scenario["x-autoforge"];
  let data = scenario.data ?? {};
  if (x.repeat) data = repeatResults(data, x.repeat);
  if (!x.pool) return data;
  return items.map((item) => {
    const message = { ...data };
    for (const [field, from] of Object.entries(x.fields)) message[field] = item[from];
    // Seeded text contains `{{placeholders}}`: escape them for ghz's template engine.
    if (x.contentFrom) {
      message.content = `${item[x.contentFrom].replaceAll("{{", "{{`{{`}}")}${x.appendToContent ?? ""}`;
    }
    return message;
  });
}

/**
 * Runs ghz once. `settings`: host, concurrency, connections, duration | total (+ maxDuration), rps, timeout.
 * Returns the parsed JSON report without per-request details.
 */
export async function runGhz({
  ghz,
  root,
  dir,
  name,
  scenario,
  data,
  metadata,
  settings,
  protoset,
  fdLimit,
}) {
  const base = Object.fromEntries(Object.entries(scenario).filter(([k]) => !k.startsWith("x-")));
  const dataFile = join(dir, `${name}.data.json`);
  writeFileSync(dataFile, JSON.stringify(data));
  delete base.data;
  const config = {
    ...base,
    ...(base.proto ? { proto: join(root, base.proto) } : { protoset }),
    host: settings.host,
    insecure: true,
    "data-file": dataFile,
    metadata,
    concurrency: settings.concurrency,
    connections: settings.connections,
    timeout: settings.timeout ?? "20s",
    "duration-stop": "ignore",
    format: "json",
    output: join(dir, `${name}.report.json`),
    cpus: settings.cpus ?? 2,
    "connect-timeout": "30s",
  };
  if (settings.total) {
    config.total = settings.total;
    if (settings.maxDuration) config["max-duration"] = settings.maxDuration;
  } else config.duration = settings.duration;
  if (settings.rps) config.rps = settings.rps;
  const configFile = join(dir, `${name}.ghz.json`);
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const started = Date.now();
  const child = spawnWithLimit(ghz, ["--config", configFile], { stdio: ["ignore", "pipe", "pipe"] }, fdLimit);
  let output = "";
  child.stdout.on("data", (c) => {
    output += c;
  });
  child.stderr.on("data", (c) => {
    output += c;
  });
  const code = await new Promise((resolve) => child.once("exit", (c) => resolve(c)));
  if (code !== 0 || !existsSync(config.output)) {
    throw new Error(`ghz ${name} failed (exit ${code}):\n${output.slice(-4000)}\nconfig: ${configFile}`);
  }
  const report = JSON.parse(readFileSync(config.output, "utf8"));
  report.timeline = timeline(report.details ?? []);
  delete report.details;
  rmSync(config.output, { force: true });
  rmSync(dataFile, { force: true });
  return { report, wallSeconds: (Date.now() - started) / 1000, configFile, ghzPid: child.pid };
}

/** Seconds at the start of a run that `afterStart` leaves out: an open-loop run opens every connection then. */
export const STORM_SECONDS = 5;

/**
 * Latency over time, from ghz's per-request details (start timestamp, latency in ns): p95 per 5-second window
 * of request start, and p50/p95/p99 of the requests started after the first STORM_SECONDS — the connection
 * storm of an open-loop run — so that a run's steady state can be told from its start.
 */
function timeline(details) {
  if (details.length === 0) return undefined;
  const starts = details.map((d) => Date.parse(d.timestamp));
  const first = starts.reduce((a, b) => Math.min(a, b), Number.POSITIVE_INFINITY);
  const quantile = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))];
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  const windows = [];
  const later = [];
  details.forEach((d, i) => {
    const offset = (starts[i] - first) / 1000;
    const w = Math.floor(offset / 5);
    windows[w] ??= [];
    windows[w].push(d.latency);
    if (offset >= STORM_SECONDS) later.push(d.latency);
  });
  later.sort((a, b) => a - b);
  return {
    p95By5s: windows.map((w) =>
      w
        ? ms(
            quantile(
              w.sort((a, b) => a - b),
              0.95,
            ),
          )
        : null,
    ),
    afterStart:
      later.length === 0
        ? undefined
        : {
            count: later.length,
            p50: ms(quantile(later, 0.5)),
            p95: ms(quantile(later, 0.95)),
            p99: ms(quantile(later, 0.99)),
          },
  };
}

/** The numbers the table shows, from a ghz JSON report. */
export function summarise(report) {
  const ms = (ns) => Math.round(ns / 1e4) / 100;
  const pct = (p) => report.latencyDistribution?.find((l) => l.percentage === p)?.latency;
  const codes = report.statusCodeDistribution ?? {};
  const count = Object.values(codes).reduce((a, b) => a + b, 0) || report.count;
  const ok = codes.OK ?? 0;
  const errors = count - ok;
  return {
    count,
    ok,
    errors,
    errorRate: count === 0 ? 0 : errors / count,
    rps: Math.round(report.rps * 10) / 10,
    okRps: Math.round(((report.rps * ok) / Math.max(1, count)) * 10) / 10,
    p50: pct(50) === undefined ? null : ms(pct(50)),
    p95: pct(95) === undefined ? null : ms(pct(95)),
    p99: pct(99) === undefined ? null : ms(pct(99)),
    slowest: report.slowest ? ms(report.slowest) : null,
    seconds: Math.round(report.total / 1e7) / 100,
    statusCodeDistribution: codes,
    errorDistribution: report.errorDistribution ?? {},
    timeline: report.timeline,
  };
}
