/**
 * PromptCache benchmark. Prints numbers, asserts nothing.
 *
 *   npm run build   # the lag part runs prompt-service from dist/
 *   node --conditions=source --import tsx packages/client/bench/cache.ts [--moves 1000] [--no-lag] [--seconds 2]
 *
 * 1. In process, over a stub client whose feed is up: cached `get` calls/s, and cached `render` of a 2 KB text
 *    prompt with 5 variables, renders/s (each awaited, one at a time, as an app calls them).
 * 2. Invalidation lag against a real prompt-service (`node services/prompt-service/dist/main.js`, a `file:`
 *    database in a temp dir, Connect port over HTTP/2): another client moves the `production` label `--moves`
 *    times; for each move, the time from the SetPromptLabel call until this cache serves the new version
 *    (`get` after the invalidation), and the feed's delivery lag (the `invalidated` hook: now − occur_time).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import {
  GetPromptResponseSchema,
  ListPromptEventsResponseSchema,
  PromptEventType,
  PromptKind,
  PromptSchema,
  PromptService,
  VariableType,
  type WatchPromptEventsResponse,
} from "@autoforge/contracts/prompt/v1";
import { create } from "@bufbuild/protobuf";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { createPromptCache, type PromptCacheClient } from "../src/index.js";

const { values: args } = parseArgs({
  options: {
    moves: { type: "string", default: "1000" },
    seconds: { type: "string", default: "2" },
    "no-lag": { type: "boolean", default: false },
  },
});
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

function machine(): string {
  const [one, five] = loadavg();
  return `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, load average ${one?.toFixed(2)} (1 min) ${five?.toFixed(2)} (5 min), node ${process.version}`;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

// ---- 1. in process -------------------------------------------------------------------------------------------

const variableNames = ["customer", "product", "tone", "limit", "language"];

function twoKilobytePrompt(): string {
  let text = "";
  for (let i = 0; text.length < 2048; i++) {
    text += `Paragraph ${i}: answer as the support assistant of {{${variableNames[i % 5]}}}, briefly and politely. `;
  }
  return text;
}

/** A client whose feed is up and silent, answering GetPrompt from one fixed prompt per name. */
function stubClient(content: string): PromptCacheClient {
  const prompt = (name: string) =>
    create(PromptSchema, {
      id: "0190d000-0000-7000-8000-000000000001",
      project: "acme",
      name,
      kind: PromptKind.TEXT,
      content,
      version: 3,
      currentVersion: 3,
      labels: { production: 3, latest: 3 },
      modelConfig: { model: "gpt-x", temperature: 0.2 },
      variables: variableNames.map((n) => ({ name: n, type: VariableType.STRING, required: true })),
    });
  return {
    getPrompt: async (req: { name?: string }) =>
      create(GetPromptResponseSchema, { prompt: prompt(req.name ?? "") }),
    listPromptEvents: async () => create(ListPromptEventsResponseSchema, { lastSequence: 10n }),
    watchPromptEvents: async function* (_req: unknown, options?: { signal?: AbortSignal }) {
      await new Promise((resolve) => options?.signal?.addEventListener("abort", resolve, { once: true }));
      yield* [] as WatchPromptEventsResponse[];
    },
  } as unknown as PromptCacheClient;
}

async function timeLoop(seconds: number, body: () => Promise<unknown>): Promise<number> {
  // warm-up, then whole batches until the time is up
  for (let i = 0; i < 50_000; i++) await body();
  const batch = 10_000;
  let calls = 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  while (performance.now() < until) {
    for (let i = 0; i < batch; i++) await body();
    calls += batch;
  }
  return calls / ((performance.now() - started) / 1000);
}

async function inProcess(seconds: number) {
  const content = twoKilobytePrompt();
  const cache = createPromptCache({ client: stubClient(content), project: "acme" });
  await cache.fresh();
  const selector = { label: "production" };
  await cache.get("greeting", selector);
  const variables = { customer: "Ada", product: "Widget", tone: "friendly", limit: "3", language: "en" };
  const first = await cache.render("greeting", variables, selector);
  if (first.stale || first.text.includes("{{")) throw new Error("render did not fill every variable");

  const gets = await timeLoop(seconds, () => cache.get("greeting", selector));
  const renders = await timeLoop(seconds, () => cache.render("greeting", variables, selector));
  await cache.close();
  return { gets, renders, bytes: content.length };
}

// ---- 2. invalidation lag against prompt-service ----------------------------------------------------------------

const secret = "bench-secret-of-at-least-32-bytes-long!!";

/** An HS256 token as prompt-service's verifier takes it (what `scripts/mint-token.mjs` makes). */
function token(claims: Record<string, unknown>): string {
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const body = `${b64({ alg: "HS256", typ: "JWT" })}.${b64({ ...claims, iat: now, exp: now + 3600 })}`;
  return `${body}.${createHmac("sha256", secret).update(body).digest("base64url")}`;
}

function client(baseUrl: string, bearer: string): Client<typeof PromptService> {
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${bearer}`);
    return next(req);
  };
  return createClient(
    PromptService,
    createConnectTransport({ baseUrl, httpVersion: "2", interceptors: [auth] }),
  );
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

async function startPromptService(dir: string): Promise<{ child: ChildProcess; baseUrl: string }> {
  const main = join(root, "services", "prompt-service", "dist", "main.js");
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  const [grpcPort, connectPort] = [await freePort(), await freePort()];
  const child = spawn(process.execPath, [main], {
    env: {
      PATH: process.env.PATH ?? "",
      NODE_ENV: "production",
      LOG_LEVEL: "warn",
      HOST: "127.0.0.1",
      GRPC_PORT: String(grpcPort),
      CONNECT_PORT: String(connectPort),
      DATABASE_URL: `file:${join(dir, "prompt-service.db")}`,
      AUTH_JWT_SECRET: secret,
    },
    stdio: ["ignore", "inherit", "inherit"],
  });
  const baseUrl = `http://127.0.0.1:${connectPort}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prompt-service exited (${child.exitCode})`);
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) return { child, baseUrl };
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error("prompt-service did not answer /healthz within 30 s");
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function lag(moves: number) {
  const dir = mkdtempSync(join(tmpdir(), "autoforge-cache-bench-"));
  const { child, baseUrl } = await startPromptService(dir);
  try {
    const mover = client(baseUrl, token({ sub: "mover", roles: [], projects: { acme: "publisher" } }));
    const created = (
      await mover.createPrompt({
        project: "acme",
        name: "greeting",
        title: "Greeting",
        content: "v1 {{customer}}",
      })
    ).prompt;
    if (created === undefined) throw new Error("no prompt");
    await mover.updatePrompt({
      project: "acme",
      id: created.id,
      etag: created.etag,
      updateMask: { paths: ["content"] },
      content: "v2 {{customer}}",
    });
    await mover.setPromptLabel({ project: "acme", id: created.id, label: "production", version: 1 });

    const delivery: number[] = [];
    let waiter: { version: number; resolve: () => void } | undefined;
    const cache = createPromptCache({
      client: client(baseUrl, token({ sub: "app", roles: ["service"], project: "acme" })),
      project: "acme",
      hooks: {
        invalidated(lagMs, event) {
          if (event.type !== PromptEventType.LABEL_SET) return;
          delivery.push(lagMs);
          if (waiter !== undefined && event.version === waiter.version) waiter.resolve();
        },
      },
    });
    await cache.fresh();
    if ((await cache.get("greeting")).prompt.version !== 1) throw new Error("expected version 1");

    const served: number[] = [];
    let missed = 0;
    for (let i = 0; i < moves; i++) {
      const version = i % 2 === 0 ? 2 : 1;
      const invalidated = new Promise<void>((resolve) => {
        waiter = { version, resolve };
      });
      const started = performance.now();
      await mover.setPromptLabel({ project: "acme", id: created.id, label: "production", version });
      await invalidated;
      const read = await cache.get("greeting");
      served.push(performance.now() - started);
      if (read.prompt.version !== version) missed++;
    }
    await cache.close();
    const s = [...served].sort((a, b) => a - b);
    const d = [...delivery].sort((a, b) => a - b);
    return {
      moves,
      missed,
      servedP50: percentile(s, 50),
      servedP99: percentile(s, 99),
      servedMax: s.at(-1) ?? Number.NaN,
      deliveryP50: percentile(d, 50),
      deliveryP99: percentile(d, 99),
    };
  } finally {
    child.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main() {
  console.log(`machine: ${machine()}`);
  const seconds = Number(args.seconds);
  const local = await inProcess(seconds);
  console.log(`cached get:    ${Math.round(local.gets).toLocaleString("en-US")} calls/s`);
  console.log(
    `cached render: ${Math.round(local.renders).toLocaleString("en-US")} renders/s (${local.bytes} B text, 5 variables)`,
  );
  if (!args["no-lag"]) {
    const l = await lag(Number(args.moves));
    const ms = (v: number) => `${v.toFixed(2)} ms`;
    console.log(
      `invalidation lag over ${l.moves} label moves (${l.missed} served the old version): move -> new version served p50 ${ms(l.servedP50)}, p99 ${ms(l.servedP99)}, max ${ms(l.servedMax)}; feed delivery (now - occur_time) p50 ${ms(l.deliveryP50)}, p99 ${ms(l.deliveryP99)}`,
    );
  }
  console.log(`machine after: ${machine()}`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
