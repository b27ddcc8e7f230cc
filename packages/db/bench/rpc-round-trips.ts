/**
 * CreatePrompt and GetPrompt through prompt-service (in-process, its real gRPC port and middleware chain) on a
 * `file:` database and on a local sqld: latency p50/p95 of sequential calls, CreatePrompt/s under contention,
 * and the HTTP requests each RPC sends to sqld (counted through test/support/counting-proxy.ts).
 *
 *   node --conditions=source --import tsx packages/db/bench/rpc-round-trips.ts [--before DIR] [--calls 300]
 *     [--concurrency 32] [--contended 1500] [--engines file,sqld]
 *
 * `--before DIR` (and `--after DIR`, default this tree): a checkout of another commit (`git worktree add DIR <commit>`) with a node_modules whose
 * `@autoforge/*` links point into DIR (see packages/db/README.md): each engine then runs on both trees, one after
 * the other, in the same run. sqld comes from `SQLD_BIN` (default `../shared/bin/sqld`).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parseArgs } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const mainRoot = resolve(here, "../../..");

const { values } = parseArgs({
  options: {
    before: { type: "string" },
    after: { type: "string" },
    calls: { type: "string", default: "300" },
    concurrency: { type: "string", default: "32" },
    contended: { type: "string", default: "1500" },
    engines: { type: "string", default: "file,sqld" },
    child: { type: "boolean", default: false },
    root: { type: "string" },
    engine: { type: "string" },
  },
});

interface Result {
  create: { p50: number; p95: number };
  get: { p50: number; p95: number };
  writesPerSecond: number;
  createRequests: number | null;
  getRequests: number | null;
}

const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
const summary = (ms: number[]) => {
  const sorted = [...ms].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95) };
};

async function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => done(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

async function startSqld(dir: string): Promise<{ url: string; child: ChildProcess }> {
  const binary = process.env.SQLD_BIN ?? resolve(mainRoot, "../shared/bin/sqld");
  const port = await freePort();
  const child = spawn(
    binary,
    ["--db-path", join(dir, "data.sqld"), "--no-welcome", "--http-listen-addr", `127.0.0.1:${port}`],
    { stdio: "ignore", env: { ...process.env, RUST_LOG: "error" } },
  );
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const response = await fetch(`${url}/health`);
      await response.arrayBuffer();
      if (response.ok) return { url, child };
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error("sqld did not start");
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One tree, one engine: measured in this process, printed as one JSON line. */
async function child(root: string, engine: string): Promise<Result> {
  const load = (path: string) => import(pathToFileURL(join(root, path)).href);
  const db = await load("packages/db/src/index.ts");
  const { createTokenSigner } = await load("packages/server/src/index.ts");
  const { createPromptServer } = await load("services/prompt-service/src/server.ts");
  const { schema } = await load("services/prompt-service/src/db/schema.ts");
  const { migrationsFolder } = await load("services/prompt-service/src/db/migrations-folder.ts");
  const { PromptService } = await import("@autoforge/contracts/prompt/v1");
  const { createClient } = await import("@connectrpc/connect");
  const { createGrpcTransport, Http2SessionManager } = await import("@connectrpc/connect-node");
  const { pino } = await import("pino");
  const { startCountingProxy } = await import(
    pathToFileURL(join(mainRoot, "test/support/counting-proxy.ts")).href
  );

  const dir = mkdtempSync(join(tmpdir(), "rpc-round-trips-"));
  const sqld = engine === "sqld" ? await startSqld(dir) : undefined;
  // a run that fails must not leave its sqld behind
  process.once("exit", () => sqld?.child.kill("SIGKILL"));
  const url = sqld?.url ?? `file:${join(dir, "prompts.db")}`;
  const secret = "bench-secret-of-at-least-thirty-two-bytes";
  const token = await createTokenSigner(secret).signToken({ sub: "bench", roles: ["user"] });

  const serve = async (databaseUrl: string) => {
    const database = await db.createDatabase({ url: databaseUrl, schema });
    await db.migrate(database, migrationsFolder);
    const app = createPromptServer({ db: database, auth: { secret }, logger: pino({ level: "silent" }) });
    const { grpcPort } = await app.server.listen({ host: "127.0.0.1", grpcPort: 0, connectPort: 0 });
    const baseUrl = `http://127.0.0.1:${grpcPort}`;
    const sessionManager = new Http2SessionManager(baseUrl);
    const client = createClient(
      PromptService,
      createGrpcTransport({
        baseUrl,
        sessionManager,
        interceptors: [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${token}`);
            return next(req);
          },
        ],
      }),
    );
    return {
      client,
      async close() {
        await app.server.shutdown({ graceMs: 1_000 });
        sessionManager.abort();
        await database.close();
      },
    };
  };

  const calls = Number(values.calls);
  const { client, close } = await serve(url);
  let n = 0;
  const create = () =>
    client.createPrompt({ title: `t${n}`, name: `p${n++}`, content: "Hello {{name}}", tags: ["a"] });
  for (let i = 0; i < 20; i++) await create();
  const createMs: number[] = [];
  const ids: string[] = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    const { prompt } = await create();
    createMs.push(performance.now() - started);
    ids.push(prompt?.id ?? "");
  }
  const getMs: number[] = [];
  for (let i = 0; i < calls; i++) {
    const started = performance.now();
    await client.getPrompt({ id: ids[i % ids.length] });
    getMs.push(performance.now() - started);
  }
  const contended = Number(values.contended);
  const workers = Number(values.concurrency);
  let left = contended;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (left-- > 0) await create();
    }),
  );
  const writesPerSecond = contended / ((performance.now() - started) / 1000);
  await close();

  let createRequests: number | null = null;
  let getRequests: number | null = null;
  if (sqld !== undefined) {
    // the same database through the counting proxy: requests per call, averaged over 20 calls
    const proxy = await startCountingProxy(sqld.url);
    const counted = await serve(proxy.url);
    await counted.client.createPrompt({ title: "warm-up", content: "x" });
    proxy.reset();
    const made: string[] = [];
    for (let i = 0; i < 20; i++) {
      made.push((await counted.client.createPrompt({ title: `c${i}`, content: "x" })).prompt?.id ?? "");
    }
    createRequests = proxy.requests.length / 20;
    proxy.reset();
    for (const id of made) await counted.client.getPrompt({ id });
    getRequests = proxy.requests.length / 20;
    await counted.close();
    await proxy.close();
  }
  sqld?.child.kill("SIGTERM");
  rmSync(dir, { recursive: true, force: true });
  return {
    create: summary(createMs),
    get: summary(getMs),
    writesPerSecond,
    createRequests,
    getRequests,
  };
}

function runChild(root: string, engine: string): Result {
  const out = execFileSync(
    process.execPath,
    [
      "--conditions=source",
      "--import",
      "tsx",
      fileURLToPath(import.meta.url),
      "--child",
      "--root",
      root,
      "--engine",
      engine,
      "--calls",
      String(values.calls),
      "--concurrency",
      String(values.concurrency),
      "--contended",
      String(values.contended),
    ],
    { cwd: root, encoding: "utf8", stdio: ["ignore", "pipe", "inherit"], maxBuffer: 64 * 1024 * 1024 },
  );
  const line = out
    .trim()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .pop();
  if (line === undefined) throw new Error(`no result from ${root} on ${engine}:\n${out}`);
  return JSON.parse(line) as Result;
}

if (values.child) {
  const result = await child(values.root ?? mainRoot, values.engine ?? "file");
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
} else {
  const trees: [string, string][] = [];
  if (values.before !== undefined) trees.push(["before", resolve(values.before)]);
  trees.push([values.before === undefined ? "this tree" : "after", resolve(values.after ?? mainRoot)]);
  const fmt = (x: number) => x.toFixed(1);
  const rows: string[] = [];
  for (const engine of String(values.engines).split(",")) {
    for (const [name, root] of trees) {
      const r = runChild(root, engine);
      const requests =
        r.createRequests === null ? "–" : `${fmt(r.createRequests)} / ${fmt(r.getRequests ?? 0)}`;
      rows.push(
        `| ${engine} | ${name} | ${fmt(r.create.p50)} / ${fmt(r.create.p95)} | ${fmt(r.get.p50)} / ${fmt(r.get.p95)} | ${r.writesPerSecond.toFixed(0)} | ${requests} |`,
      );
      process.stderr.write(`${rows[rows.length - 1]}\n`);
    }
  }
  const commit = (root: string) =>
    execFileSync("git", ["rev-parse", "--short", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
  console.log(
    `\ncalls ${values.calls} sequential, ${values.contended} CreatePrompt by ${values.concurrency} concurrent clients`,
  );
  for (const [name, root] of trees) console.log(`${name}: ${commit(root)} (${root})`);
  console.log(
    "\n| engine | tree | CreatePrompt p50 / p95 ms | GetPrompt p50 / p95 ms | CreatePrompt/s, contended | HTTP requests per Create / Get |",
  );
  console.log("| --- | --- | --- | --- | --- | --- |");
  for (const row of rows) console.log(row);
}
