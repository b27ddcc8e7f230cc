#!/usr/bin/env node
// `npm run bench:streams -- [options]`: the result-stream benchmarks. Builds, starts both services as production
// processes (as `npm run bench` does) on a fresh temp database, and measures, in one run:
//   1. the baseline: the load suite's bare grpc-js echo server (lib/echo-server.mjs), Health/Check over one
//      connection from this process's grpc-js client;
//   2. ingestion: RecordTestResults of 50 results (unary, concurrent), then StreamTestResults in chunks of 1,000,
//      every result carrying 3 named scores (numeric, boolean, categorical);
//   3. export: ExportTestResults of every result recorded (default 1,000,000), with the service's RSS sampled
//      every 100 ms.
// Each line reports the rate, and the server's CPU per item (from /proc: the stable figure on a shared machine).
// Messages are encoded once before the timed part, so the client (on the same cores) costs little. See
// test/load/README.md ("Result streams").
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { UnaryClient } from "./lib/grpc-client.mjs";
import { captureTail, cpuSeconds, freePort, spawnWithLimit, stopChild, waitForHttpOk } from "./lib/procs.mjs";
import { summariseProfile } from "./lib/profile.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, "..", "..");
const t0 = Date.now();
const log = (msg) => console.error(`[streams ${((Date.now() - t0) / 1000).toFixed(1).padStart(6)}s] ${msg}`);

const usage = `usage: npm run bench:streams -- [options]

  --results 1000000     results streamed in (and then exported)
  --streams 2           concurrent StreamTestResults calls (each into its own evaluation)
  --chunk 1000          results per chunk
  --chunks-per-call 50  chunks per StreamTestResults call (one upload is several calls under one request_id:
                        a client stream lasts at most the server's maximum timeout, 30 s)
  --unary-seconds 15    RecordTestResults(50) baseline duration; --unary-concurrency 8
  --echo-seconds 10     echo baseline duration; --echo-concurrency 50
  --batch 500,1000      ExportTestResults batch_size, one export pass per value; --view full|basic
                        (then one more pass at the first batch_size whose client stops reading for 5 s)
  --profile             also run the ingestion and the export again under node --cpu-prof (top frames)
  --no-build            skip npm run build
  --keep                keep the temp directory
  --out FILE            results JSON (default test/load/results/streams-<timestamp>.json)`;

const { values: opt } = parseArgs({
  options: {
    results: { type: "string", default: "1000000" },
    streams: { type: "string", default: "2" },
    chunk: { type: "string", default: "1000" },
    "chunks-per-call": { type: "string", default: "50" },
    "unary-seconds": { type: "string", default: "15" },
    "unary-concurrency": { type: "string", default: "8" },
    "echo-seconds": { type: "string", default: "10" },
    "echo-concurrency": { type: "string", default: "50" },
    batch: { type: "string", default: "500,1000" },
    view: { type: "string", default: "full" },
    profile: { type: "boolean", default: false },
    "no-build": { type: "boolean", default: false },
    keep: { type: "boolean", default: false },
    out: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (opt.help) {
  console.log(usage);
  process.exit(0);
}
const cfg = {
  results: Number(opt.results),
  streams: Number(opt.streams),
  chunk: Number(opt.chunk),
  chunksPerCall: Number(opt["chunks-per-call"]),
  unarySeconds: Number(opt["unary-seconds"]),
  unaryConcurrency: Number(opt["unary-concurrency"]),
  echoSeconds: Number(opt["echo-seconds"]),
  echoConcurrency: Number(opt["echo-concurrency"]),
  batches: opt.batch.split(",").map(Number),
  view: opt.view === "basic" ? 1 : 2,
};

if (!opt["no-build"]) {
  log("npm run build");
  const r = spawnSync("npm", ["run", "--silent", "build"], { cwd: root, stdio: "inherit" });
  if (r.status !== 0) throw new Error("npm run build failed");
}

// the workspace packages are imported once built
const { createTokenSigner } = await import("@autoforge/server");
const {
  EvaluationService,
  ExportTestResultsRequestSchema,
  RecordTestResultsRequestSchema,
  ScoreKind,
  StreamTestResultsRequestSchema,
  StreamTestResultsResponseSchema,
} = await import("@autoforge/contracts/evaluation/v1");
const { PromptService } = await import("@autoforge/contracts/prompt/v1");
const secret = randomBytes(48).toString("base64url");
const signer = createTokenSigner(secret);
const serviceToken = await signer.signToken({
  sub: "evaluation-service",
  roles: ["service"],
  projects: "*",
  ttl: "24h",
});
const token = await signer.signToken({ sub: "bench-owner", roles: ["user", "publisher"], ttl: "24h" });

const work = mkdtempSync(join(tmpdir(), "autoforge-streams-"));
log(`work dir ${work}`);

// ---------------------------------------------------------------------------------------------- processes
const procs = {};
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
    DATABASE_URL: `file:${join(work, `${name}.db`)}`,
    AUTH_JWT_SECRET: secret,
    LOG_LEVEL: "warn",
    SERVICE_TOKEN: serviceToken,
  };
  if (name === "evaluation-service")
    env.PROMPT_SERVICE_URL = `http://127.0.0.1:${procs["prompt-service"].grpcPort}`;
  const args = cpuProfDir ? ["--cpu-prof", `--cpu-prof-dir=${cpuProfDir}`, "dist/main.js"] : ["dist/main.js"];
  const child = spawnWithLimit(process.execPath, args, {
    cwd: join(root, "services", name),
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const tail = captureTail(child, 200);
  const logFile = createWriteStream(join(work, `${name}.log`), { flags: "a" });
  child.stdout?.pipe(logFile);
  child.stderr?.pipe(logFile);
  await waitForHttpOk(`http://127.0.0.1:${connectPort}/healthz`, 60_000, child, tail);
  procs[name] = { name, child, tail, grpcPort, connectPort, address: `127.0.0.1:${grpcPort}` };
  return procs[name];
}
async function startEcho() {
  const child = spawnWithLimit(process.execPath, [join(here, "lib", "echo-server.mjs")], {
    cwd: root,
    stdio: ["ignore", "pipe", "pipe"],
  });
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
  procs.echo = { name: "echo", child, address: `127.0.0.1:${port}` };
}
async function stopAll() {
  for (const name of ["evaluation-service", "prompt-service", "echo"])
    if (procs[name]) await stopChild(procs[name].child);
}
process.on("exit", () => {
  for (const p of Object.values(procs))
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill("SIGKILL");
});

/** RSS of a process in MiB, from /proc (Linux). */
function rssMiB(pid) {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : Number.NaN;
}

/** Runs `fn` while measuring wall time and each watched process's CPU seconds. */
async function measured(watched, fn) {
  const before = watched.map((p) => cpuSeconds(p.child.pid));
  const started = performance.now();
  const value = await fn();
  const seconds = (performance.now() - started) / 1000;
  const cpu = watched.map((p, i) => cpuSeconds(p.child.pid) - before[i]);
  return { value, seconds, cpu };
}

const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

// ------------------------------------------------------------------------------------------------ messages
const scores = [
  { name: "quality", kind: ScoreKind.NUMERIC, min: 0, max: 10 },
  { name: "safe", kind: ScoreKind.BOOLEAN },
  { name: "grade", kind: ScoreKind.CATEGORICAL, categories: ["bad", "ok", "good"] },
];
const grades = ["bad", "ok", "good"];
/** Result i: about 150 bytes of text, metadata, and the three score values. */
function resultOf(i) {
  return {
    name: `case ${i}`,
    input: `question ${i}: what is ${i % 97} + ${i % 89}?`,
    expectedOutput: String((i % 97) + (i % 89)),
    actualOutput: i % 5 === 0 ? "unsure" : String((i % 97) + (i % 89)),
    passed: i % 5 !== 0,
    score: (i % 11) / 10,
    latencyMs: BigInt(100 + (i % 900)),
    metadata: { shard: i % 8 },
    scores: [
      { name: "quality", value: { case: "number", value: i % 11 } },
      { name: "safe", value: { case: "boolean", value: i % 3 !== 0 } },
      { name: "grade", value: { case: "category", value: grades[i % 3] } },
    ],
  };
}

const md = new grpc.Metadata();
md.set("authorization", `Bearer ${token}`);
const passThrough = (b) => b;

/**
 * One StreamTestResults call of chunks `from`..`to - 1` of `size` results into `evaluationId`. The results block
 * is encoded once; each message is its header (chunk_index, and in the first the evaluation and request ids)
 * concatenated with it (protobuf fields concatenate). Each write waits for grpc-js to take the previous one.
 */
function streamCall(client, evaluationId, requestId, from, to, resultsBlock) {
  return new Promise((resolve, reject) => {
    const call = client.makeClientStreamRequest(
      `/${EvaluationService.typeName}/StreamTestResults`,
      passThrough,
      (b) => fromBinary(StreamTestResultsResponseSchema, b),
      md,
      { deadline: Date.now() + 3_600_000 },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    let i = from;
    const next = () => {
      if (i === to) {
        call.end();
        return;
      }
      const header = toBinary(
        StreamTestResultsRequestSchema,
        create(
          StreamTestResultsRequestSchema,
          i === from ? { evaluationId, requestId, chunkIndex: i } : { chunkIndex: i },
        ),
      );
      i++;
      call.write(Buffer.concat([header, resultsBlock]), next);
    };
    next();
  });
}

/**
 * One upload of `chunks` chunks under one request_id, as calls of at most `cfg.chunksPerCall` chunks each, every
 * call continuing the chunk_index where the previous one ended: a client stream lasts at most the server's
 * maximum timeout (30 s), like a unary call. Resolves with the summed counts.
 */
async function streamChunks(client, evaluationId, requestId, chunks, resultsBlock) {
  const total = { recordedCount: 0, committedChunks: 0, skippedChunks: 0 };
  for (let from = 0; from < chunks; from += cfg.chunksPerCall) {
    const res = await streamCall(
      client,
      evaluationId,
      requestId,
      from,
      Math.min(chunks, from + cfg.chunksPerCall),
      resultsBlock,
    );
    total.recordedCount += res.recordedCount;
    total.committedChunks += res.committedChunks;
    total.skippedChunks += res.skippedChunks;
  }
  return total;
}

/** Counts the repeated field 1 (test_results) of an ExportTestResultsResponse without decoding the results. */
function countResults(bytes) {
  let n = 0;
  let p = 0;
  const varint = () => {
    let v = 0;
    let shift = 0;
    for (;;) {
      const b = bytes[p++];
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
      shift += 7;
    }
  };
  while (p < bytes.length) {
    const tag = varint();
    const len = varint();
    if (tag === 0x0a) n++;
    p += len;
  }
  return n;
}

/**
 * One ExportTestResults call: messages, results, bytes received. `pauseAfter`: the client stops reading for
 * `pauseMs` after that many messages (grpc-js then stops taking data: HTTP/2 flow control reaches the server).
 */
function exportAll(client, evaluationId, batchSize, { pauseAfter = -1, pauseMs = 0 } = {}) {
  return new Promise((resolve, reject) => {
    const request = create(ExportTestResultsRequestSchema, { evaluationId, batchSize, view: cfg.view });
    const call = client.makeServerStreamRequest(
      `/${EvaluationService.typeName}/ExportTestResults`,
      (m) => Buffer.from(toBinary(ExportTestResultsRequestSchema, m)),
      passThrough,
      request,
      md,
      { deadline: Date.now() + 3_600_000 },
    );
    let messages = 0;
    let results = 0;
    let bytes = 0;
    call.on("data", (b) => {
      if (messages === pauseAfter) {
        call.pause();
        setTimeout(() => call.resume(), pauseMs);
      }
      messages++;
      bytes += b.length;
      results += countResults(b);
    });
    call.on("error", reject);
    call.on("end", () => resolve({ messages, results, bytes }));
  });
}

/** Closed-loop unary calls for `seconds` at `concurrency`: how many completed. */
async function closedLoop(seconds, concurrency, call) {
  const until = performance.now() + seconds * 1000;
  let done = 0;
  const worker = async () => {
    while (performance.now() < until) {
      await call(done);
      done++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return done;
}

// ------------------------------------------------------------------------------------------------------ run
const report = {
  startedAt: new Date(t0).toISOString(),
  machine: {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    node: process.version,
    loadavgAtStart: loadavg().map((x) => round(x)),
  },
  options: cfg,
};
try {
  log(
    "starting prompt-service, evaluation-service (NODE_ENV=production, LOG_LEVEL=warn, file: databases) and the echo server",
  );
  await startService("prompt-service");
  await startService("evaluation-service");
  await startEcho();
  const svc = procs["evaluation-service"];
  const unary = new UnaryClient(svc.address);
  const prompts = new UnaryClient(procs["prompt-service"].address);
  const prompt = (
    await prompts.call(PromptService, "createPrompt", { title: "bench", content: "Answer: {{q}}" }, token)
  ).prompt;
  const newEvaluation = async () => {
    const { evaluation } = await unary.call(
      EvaluationService,
      "createEvaluation",
      { promptId: prompt.id, provider: "p", model: "m", scores },
      token,
    );
    await unary.call(EvaluationService, "startEvaluation", { id: evaluation.id }, token);
    return evaluation.id;
  };

  // 1. the echo baseline
  {
    const echo = new grpc.Client(procs.echo.address, grpc.credentials.createInsecure());
    const check = () =>
      new Promise((resolve, reject) =>
        echo.makeUnaryRequest(
          "/grpc.health.v1.Health/Check",
          () => Buffer.alloc(0),
          passThrough,
          {},
          (err) => (err ? reject(err) : resolve()),
        ),
      );
    await closedLoop(2, cfg.echoConcurrency, check); // warm-up
    const r = await measured([procs.echo], () => closedLoop(cfg.echoSeconds, cfg.echoConcurrency, check));
    echo.close();
    report.echo = {
      requests: r.value,
      rps: round(r.value / r.seconds, 0),
      serverCpuMsPerRequest: round((r.cpu[0] / r.value) * 1000, 3),
    };
    log(`echo: ${report.echo.rps} req/s, echo server ${report.echo.serverCpuMsPerRequest} ms CPU/req`);
  }

  // 2a. RecordTestResults(50), unary, concurrent
  {
    const evaluationId = await newEvaluation();
    report.unaryEvaluation = evaluationId;
    const bodies = Array.from({ length: 20 }, (_, b) =>
      create(RecordTestResultsRequestSchema, {
        evaluationId,
        results: Array.from({ length: 50 }, (_, k) => resultOf(b * 50 + k)),
      }),
    );
    const record = (n) =>
      unary.call(EvaluationService, "recordTestResults", bodies[n % bodies.length], token);
    await closedLoop(2, cfg.unaryConcurrency, record); // warm-up
    const r = await measured([svc], () => closedLoop(cfg.unarySeconds, cfg.unaryConcurrency, record));
    const results = r.value * 50;
    report.recordTestResults = {
      calls: r.value,
      results,
      resultsPerSecond: round(results / r.seconds, 0),
      serverCpuUsPerResult: round((r.cpu[0] / results) * 1e6, 1),
    };
    log(
      `RecordTestResults(50) x${cfg.unaryConcurrency}: ${report.recordTestResults.resultsPerSecond} results/s, ${report.recordTestResults.serverCpuUsPerResult} µs CPU/result`,
    );
  }

  // 2b. StreamTestResults: cfg.streams concurrent streams, cfg.results in all
  const streamClient = new grpc.Client(svc.address, grpc.credentials.createInsecure(), {
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
  });
  const block = Buffer.from(
    toBinary(
      StreamTestResultsRequestSchema,
      create(StreamTestResultsRequestSchema, {
        results: Array.from({ length: cfg.chunk }, (_, k) => resultOf(k)),
      }),
    ),
  );
  const chunksPerStream = Math.ceil(cfg.results / cfg.chunk / cfg.streams);
  const ingest = async () => {
    const ids = [];
    for (let s = 0; s < cfg.streams; s++) ids.push(await newEvaluation());
    const r = await measured([svc], () =>
      Promise.all(
        ids.map((id, s) =>
          streamChunks(streamClient, id, `bench-${s}-${Date.now()}`, chunksPerStream, block),
        ),
      ),
    );
    const recorded = r.value.reduce((n, res) => n + res.recordedCount, 0);
    return { ids, recorded, seconds: r.seconds, cpu: r.cpu[0] };
  };
  {
    log(
      `StreamTestResults: ${cfg.streams} streams x ${chunksPerStream} chunks of ${cfg.chunk} results (3 named scores each)`,
    );
    const rssBefore = rssMiB(svc.child.pid);
    const r = await ingest();
    report.streamTestResults = {
      streams: cfg.streams,
      chunk: cfg.chunk,
      results: r.recorded,
      seconds: round(r.seconds, 1),
      resultsPerSecond: round(r.recorded / r.seconds, 0),
      serverCpuUsPerResult: round((r.cpu / r.recorded) * 1e6, 1),
      serverCpuBusy: round(r.cpu / r.seconds, 2),
      rssMiB: { before: round(rssBefore, 0), after: round(rssMiB(svc.child.pid), 0) },
    };
    report.evaluations = r.ids;
    log(
      `StreamTestResults: ${r.recorded} results in ${r.seconds.toFixed(1)} s = ${report.streamTestResults.resultsPerSecond} results/s, ${report.streamTestResults.serverCpuUsPerResult} µs CPU/result`,
    );
  }

  // 3. export every result recorded by the streams: one export per evaluation, one after the other, per batch size
  const exportEach = async (batchSize, pause) => {
    let rssMax = 0;
    const rssStart = rssMiB(svc.child.pid);
    const sampler = setInterval(() => {
      rssMax = Math.max(rssMax, rssMiB(svc.child.pid));
    }, 100);
    const r = await measured([svc], async () => {
      const out = { messages: 0, results: 0, bytes: 0 };
      for (const id of report.evaluations) {
        const one = await exportAll(streamClient, id, batchSize, pause);
        out.messages += one.messages;
        out.results += one.results;
        out.bytes += one.bytes;
      }
      return out;
    });
    clearInterval(sampler);
    return { ...r, rssStart, rssMax: Math.max(rssMax, rssMiB(svc.child.pid)) };
  };
  report.exportTestResults = [];
  const passes = [
    ...cfg.batches.map((batch) => ({ batch })),
    { batch: cfg.batches[0], pause: { pauseAfter: 20, pauseMs: 5_000 } },
  ];
  // warm-up (unmeasured): export the RecordTestResults baseline's evaluation
  await exportAll(streamClient, report.unaryEvaluation, cfg.batches[0]);
  for (const { batch, pause } of passes) {
    const r = await exportEach(batch, pause);
    const pass = {
      batch,
      view: cfg.view === 1 ? "basic" : "full",
      clientPausedMs: pause?.pauseMs ?? 0,
      messages: r.value.messages,
      results: r.value.results,
      mib: round(r.value.bytes / 2 ** 20, 0),
      seconds: round(r.seconds, 1),
      rowsPerSecond: round(r.value.results / r.seconds, 0),
      serverCpuUsPerRow: round((r.cpu[0] / r.value.results) * 1e6, 2),
      serverCpuBusy: round(r.cpu[0] / r.seconds, 2),
      rssMiB: {
        start: round(r.rssStart, 0),
        max: round(r.rssMax, 0),
        growth: round(r.rssMax - r.rssStart, 0),
      },
    };
    report.exportTestResults.push(pass);
    log(
      `ExportTestResults batch ${batch}${pause ? ` (client paused ${pause.pauseMs} ms per export)` : ""}: ${pass.results} rows in ${pass.seconds} s = ${pass.rowsPerSecond} rows/s, ` +
        `${pass.serverCpuUsPerRow} µs CPU/row, RSS ${pass.rssMiB.start} -> max ${pass.rssMiB.max} MiB`,
    );
  }

  // 4. optionally: the same again under --cpu-prof, for where the time goes
  if (opt.profile) {
    // each phase again in a process of its own under --cpu-prof, counted from its /healthz answer to its stop
    streamClient.close();
    const profiled = async (name, phase) => {
      const dir = join(work, `profile-${name}`);
      mkdirSync(dir, { recursive: true });
      await stopChild(procs["evaluation-service"].child);
      const spawned = Date.now();
      const p = await startService("evaluation-service", { cpuProfDir: dir });
      const healthy = Date.now();
      const client = new grpc.Client(p.address, grpc.credentials.createInsecure());
      await phase(client);
      client.close();
      const done = Date.now();
      await stopChild(p.child);
      const file = readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
      return file === undefined
        ? undefined
        : summariseProfile(join(dir, file), { fromMs: healthy - spawned, toMs: done - spawned });
    };
    report.profiles = {
      ingest: await profiled("ingest", async (client) => {
        const ids = [];
        for (let s = 0; s < cfg.streams; s++) ids.push(await newEvaluation());
        const small = Math.max(1, Math.floor(chunksPerStream / 4));
        await Promise.all(ids.map((id, s) => streamChunks(client, id, `prof-${s}`, small, block)));
      }),
      export: await profiled("export", async (client) => {
        for (const id of report.evaluations) await exportAll(client, id, cfg.batches[0]);
      }),
    };
    await startService("evaluation-service");
  }
  unary.close();
  prompts.close();
  if (!opt.profile) streamClient.close();
} finally {
  await stopAll();
  if (!opt.keep) rmSync(work, { recursive: true, force: true });
}

const outFile =
  opt.out ?? join(here, "results", `streams-${new Date(t0).toISOString().replaceAll(":", "-")}.json`);
mkdirSync(dirname(outFile), { recursive: true });
writeFileSync(outFile, `${JSON.stringify(report, null, 2)}\n`);
log(`results: ${outFile}`);
console.log(JSON.stringify(report, null, 2));
