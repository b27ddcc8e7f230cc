// Seeds both services through their public gRPC APIs (no database access): owners, prompts with several
// versions and a `production` label, completed evaluations with test results, and a pool of RUNNING
// evaluations for the RecordTestResults scenario. Deterministic content (seeded PRNG), random server ids.
import { randomUUID } from "node:crypto";
import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { pool, UnaryClient, withRetry } from "./grpc-client.mjs";

/** mulberry32: a tiny deterministic PRNG, so two runs seed the same text. */
export function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const words = (
  "customer account invoice refund shipping order product review summary tone concise friendly formal " +
  "policy escalation ticket priority answer question context document source citation language translate " +
  "english japanese german support agent draft email reply apology discount subscription renewal billing " +
  "error timeout retry feedback sentiment positive negative neutral classify extract entity date amount " +
  "currency address phone name company role manager engineer release note changelog feature bug fix"
).split(" ");
const tagVocabulary = [
  "support",
  "sales",
  "billing",
  "summarize",
  "classify",
  "translate",
  "extract",
  "email",
  "chat",
  "ja",
  "en",
  "de",
  "prod",
  "experiment",
  "rag",
  "agent",
  "safety",
  "legal",
  "hr",
  "marketing",
];
const models = [
  { provider: "openai", model: "gpt-4o" },
  { provider: "openai", model: "gpt-4o-mini" },
  { provider: "anthropic", model: "claude-sonnet-4" },
  { provider: "google", model: "gemini-2.5-pro" },
];

function pick(rand, list) {
  return list[Math.floor(rand() * list.length)];
}

export function sentence(rand, n) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(pick(rand, words));
  const s = out.join(" ");
  return `${s[0].toUpperCase()}${s.slice(1)}.`;
}

/** A prompt body of roughly `bytes` bytes: instructions, a few rules, placeholders. */
export function promptText(rand, bytes = 1200) {
  const lines = [
    `You are a ${pick(rand, words)} assistant for {{company}}. Answer {{customer_name}} in {{language}}.`,
  ];
  let size = lines[0].length;
  let rule = 1;
  while (size < bytes) {
    const line = `${rule++}. ${sentence(rand, 8 + Math.floor(rand() * 10))}`;
    lines.push(line);
    size += line.length + 1;
  }
  lines.push("Return JSON with the fields answer, confidence and citations.");
  return lines.join("\n");
}

function modelConfig(rand) {
  const m = pick(rand, models);
  return { ...m, temperature: Math.round(rand() * 10) / 10, max_tokens: 256 * (1 + Math.floor(rand() * 8)) };
}

function testResults(rand, n, prefix) {
  const results = [];
  for (let i = 0; i < n; i++) {
    const passed = rand() < 0.8;
    results.push({
      name: `${prefix}-case-${String(i).padStart(3, "0")}`,
      input: sentence(rand, 30),
      expectedOutput: sentence(rand, 15),
      actualOutput: sentence(rand, 15),
      passed,
      score: passed ? 0.7 + rand() * 0.3 : rand() * 0.7,
      latencyMs: BigInt(150 + Math.floor(-Math.log(1 - rand()) * 600)),
      metadata: { tokens_in: 300 + Math.floor(rand() * 500), tokens_out: 50 + Math.floor(rand() * 300) },
    });
  }
  return results;
}

/**
 * @param {object} o
 * @param {string} o.promptAddress host:port of prompt-service's gRPC port
 * @param {string} o.evaluationAddress host:port of evaluation-service's gRPC port
 * @param {(sub: string) => Promise<string>} o.tokenFor a `user`+`publisher` token for an owner
 */
export async function seed(o) {
  const {
    owners: ownerCount,
    promptsPerOwner,
    versions,
    evaluationsPerOwner,
    resultsPerEvaluation,
    runningPerOwner,
    concurrency,
    log,
  } = o;
  const clients = Array.from({ length: Math.max(1, Math.ceil(concurrency / 16)) }, () => ({
    prompt: new UnaryClient(o.promptAddress),
    evaluation: new UnaryClient(o.evaluationAddress),
  }));
  const clientFor = (i) => clients[i % clients.length];
  const owners = [];
  for (let i = 0; i < ownerCount; i++) {
    const sub = `load-owner-${String(i).padStart(3, "0")}`;
    owners.push({ sub, token: await o.tokenFor(sub) });
  }
  const timings = {};
  const progress = (what, total) => {
    let last = Date.now();
    return (done) => {
      if (Date.now() - last > 5000 || done === total) {
        last = Date.now();
        log(`  ${what}: ${done}/${total}`);
      }
    };
  };

  // Prompts: create, then versions-1 content updates, then `production` -> an older version.
  const promptJobs = [];
  for (let j = 0; j < promptsPerOwner; j++)
    for (let i = 0; i < ownerCount; i++) promptJobs.push({ owner: i, j });
  const prompts = owners.map(() => []);
  let started = performance.now();
  let calls = 0;
  await pool(
    promptJobs,
    concurrency,
    async ({ owner, j }, index) => {
      const { prompt: c } = clientFor(index);
      const token = owners[owner].token;
      const r = prng(owner * 100_003 + j);
      let content = promptText(r, 600 + Math.floor(r() * 1200));
      const tags = [
        ...new Set([pick(r, tagVocabulary), pick(r, tagVocabulary), pick(r, tagVocabulary)]),
      ].slice(0, 1 + Math.floor(r() * 3));
      let res = await withRetry(() =>
        c.call(
          PromptService,
          "createPrompt",
          {
            title: `${sentence(r, 4).slice(0, -1)} #${j}`,
            content,
            tags,
            metadata: { team: pick(r, ["growth", "support", "platform", "research"]), seeded: true },
            modelConfig: modelConfig(r),
            requestId: randomUUID(),
          },
          token,
        ),
      );
      calls++;
      let p = res.prompt;
      for (let v = 2; v <= versions; v++) {
        const lines = content.split("\n");
        lines[1 + Math.floor(r() * (lines.length - 2))] = `${v}. ${sentence(r, 12)}`;
        content = lines.join("\n");
        const etag = p.etag;
        res = await withRetry(() =>
          c.call(
            PromptService,
            "updatePrompt",
            {
              id: p.id,
              etag,
              updateMask: { paths: ["content"] },
              content,
              changeNote: `seed revision ${v}`,
            },
            token,
          ),
        );
        calls++;
        p = res.prompt;
      }
      const labelVersion = Math.max(1, versions - 2);
      res = await withRetry(() =>
        c.call(
          PromptService,
          "setPromptLabel",
          { id: p.id, label: "production", version: labelVersion },
          token,
        ),
      );
      calls++;
      p = res.prompt;
      prompts[owner][j] = { owner, id: p.id, etag: p.etag, currentVersion: p.currentVersion, content };
    },
    progress("prompts", promptJobs.length),
  );
  timings.prompts = { seconds: (performance.now() - started) / 1000, calls };

  // Completed evaluations with results.
  const evalJobs = [];
  for (let j = 0; j < evaluationsPerOwner; j++)
    for (let i = 0; i < ownerCount; i++) evalJobs.push({ owner: i, j });
  const evaluations = owners.map(() => []);
  started = performance.now();
  calls = 0;
  await pool(
    evalJobs,
    concurrency,
    async ({ owner, j }, index) => {
      const { evaluation: c } = clientFor(index);
      const token = owners[owner].token;
      const r = prng(7_000_003 + owner * 10_007 + j);
      const target = prompts[owner][Math.floor(r() * promptsPerOwner)];
      const m = pick(r, models);
      const created = await withRetry(() =>
        c.call(
          EvaluationService,
          "createEvaluation",
          {
            promptId: target.id,
            promptVersion: 1 + Math.floor(r() * versions),
            provider: m.provider,
            model: m.model,
            metadata: { suite: pick(r, ["regression", "smoke", "nightly"]) },
            requestId: randomUUID(),
          },
          token,
        ),
      );
      const id = created.evaluation.id;
      await withRetry(() => c.call(EvaluationService, "startEvaluation", { id }, token));
      if (resultsPerEvaluation > 0) {
        await withRetry(() =>
          c.call(
            EvaluationService,
            "recordTestResults",
            {
              evaluationId: id,
              results: testResults(r, resultsPerEvaluation, `seed${j}`),
              requestId: randomUUID(),
            },
            token,
          ),
        );
      }
      await withRetry(() => c.call(EvaluationService, "completeEvaluation", { id }, token));
      calls += resultsPerEvaluation > 0 ? 4 : 3;
      evaluations[owner][j] = { id };
    },
    progress("evaluations", evalJobs.length),
  );
  timings.evaluations = { seconds: (performance.now() - started) / 1000, calls };

  // RUNNING evaluations that RecordTestResults appends to.
  const runJobs = [];
  for (let j = 0; j < runningPerOwner; j++)
    for (let i = 0; i < ownerCount; i++) runJobs.push({ owner: i, j });
  const running = owners.map(() => []);
  started = performance.now();
  await pool(runJobs, concurrency, async ({ owner, j }, index) => {
    const { evaluation: c } = clientFor(index);
    const token = owners[owner].token;
    const created = await withRetry(() =>
      c.call(
        EvaluationService,
        "createEvaluation",
        {
          promptId: prompts[owner][j % promptsPerOwner].id,
          provider: "openai",
          model: "gpt-4o",
          requestId: randomUUID(),
        },
        token,
      ),
    );
    await withRetry(() => c.call(EvaluationService, "startEvaluation", { id: created.evaluation.id }, token));
    running[owner][j] = { id: created.evaluation.id };
  });
  timings.running = { seconds: (performance.now() - started) / 1000, calls: runJobs.length * 2 };

  for (const c of clients) {
    c.prompt.close();
    c.evaluation.close();
  }
  return { owners, prompts, evaluations, running, timings };
}

/**
 * Reads the current etag of prompts whose etag an UpdatePrompt run used up, in place.
 * @param {{owner: number, id: string, etag: string}[]} prompts
 */
export async function refreshEtags(address, owners, prompts, concurrency) {
  const client = new UnaryClient(address);
  await pool(prompts, concurrency, async (p) => {
    const res = await withRetry(() =>
      client.call(PromptService, "getPrompt", { id: p.id }, owners[p.owner].token),
    );
    p.etag = res.prompt.etag;
    p.currentVersion = res.prompt.currentVersion;
  });
  client.close();
}
