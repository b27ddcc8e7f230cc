#!/usr/bin/env node
// `npm run seed -- [--prompts N] [--owners N] [--versions N] [--evaluations N] [--results N] [--concurrency N]
//                  [--project <id>]`
// Fills the RUNNING services (`npm start`) with demo data through their public gRPC API, as their users would:
// per owner a couple of templates and prompts (named `seed-<runid>-<n>`; several versions, tags, model configs,
// `staging` and — with a publisher token — `production` labels), then evaluations of those prompt versions with
// test results, completed. By default each owner works in its personal project (`user:<owner>`); with
// `--project <id>` every owner is a publisher of that team project and everything is made there. Tokens are minted with the secret `npm start` uses (AUTH_JWT_SECRET, else data/dev-jwt-secret);
// ports are the defaults or the same overrides start.mjs honours (HOST, PROMPT_SERVICE_GRPC_PORT,
// EVALUATION_SERVICE_GRPC_PORT). Every name carries a run id, so seeding twice adds a second set.
// Needs the built packages (`npm start` builds them; or `npm run build`).
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { PromptService, VariableType } from "@autoforge/contracts/prompt/v1";
import { createTokenSigner, teamProjectPattern } from "@autoforge/server";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

const help = `Usage: npm run seed -- [options]   (or: node scripts/seed.mjs [options])

Fills the running services (\`npm start\`) with demo data through their gRPC API.

Options:
  --prompts <n>        prompts in all (0..100000, default 24)
  --owners <n>         owners the prompts are spread over (1..1000, default 3)
  --versions <n>       versions per prompt (1..100, default 3)
  --evaluations <n>    evaluations in all (0..100000, default 30)
  --results <n>        test results per evaluation (1..1000, default 20)
  --concurrency <n>    calls in flight (1..64, default 8)
  --project <id>       seed this team project (every owner a publisher of it); default: each owner's
                       personal project user:<owner>
  -h, --help           this text

Environment: AUTH_JWT_SECRET (else data/dev-jwt-secret), AUTH_ISSUER, AUTH_AUDIENCE, HOST,
PROMPT_SERVICE_GRPC_PORT, EVALUATION_SERVICE_GRPC_PORT (the same as npm start).`;

/** Exit codes: 1 the seeding failed, 2 bad usage (an unknown option or a bad value; one line on stderr). */
function fail(message, code = 1) {
  console.error(`seed: ${message}`);
  process.exit(code);
}

function usage(message) {
  fail(`${message} (--help lists the options)`, 2);
}

function count(name, raw, min, max) {
  if (!/^\d{1,6}$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    usage(`${name} must be a whole number ${min}..${max}, got ${JSON.stringify(raw)}`);
  }
  return Number(raw);
}

function port(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  return count(name, raw, 1, 65535);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      prompts: { type: "string", default: "24" },
      owners: { type: "string", default: "3" },
      versions: { type: "string", default: "3" },
      evaluations: { type: "string", default: "30" },
      results: { type: "string", default: "20" },
      concurrency: { type: "string", default: "8" },
      project: { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  }));
} catch (e) {
  usage(e instanceof Error ? e.message : String(e));
}
if (values.help) {
  console.log(help);
  process.exit(0);
}
if (values.project !== undefined && !teamProjectPattern.test(values.project)) {
  usage(
    `--project must be a team project id (${teamProjectPattern.source}), got ${JSON.stringify(values.project)}; ` +
      "without --project each owner seeds its personal project",
  );
}
const opts = {
  prompts: count("--prompts", values.prompts, 0, 100_000),
  owners: count("--owners", values.owners, 1, 1_000),
  versions: count("--versions", values.versions, 1, 100),
  evaluations: count("--evaluations", values.evaluations, 0, 100_000),
  results: count("--results", values.results, 1, 1_000),
  concurrency: count("--concurrency", values.concurrency, 1, 64),
  /** The team project to seed, or undefined: each owner's personal project. */
  project: values.project,
};
/** The `project` field of every request: the team project, or "" (the caller's personal project). */
const project = opts.project ?? "";

const secretFile = join(root, "data", "dev-jwt-secret");
const secret =
  process.env.AUTH_JWT_SECRET ??
  (existsSync(secretFile) ? readFileSync(secretFile, "utf8").trim() : undefined);
if (secret === undefined || secret === "") {
  fail(`no secret: set AUTH_JWT_SECRET, or run \`npm start\` once (it writes ${secretFile})`);
}
const host = process.env.HOST ?? "127.0.0.1";
const promptUrl = `http://${host}:${port("PROMPT_SERVICE_GRPC_PORT", 50051)}`;
const evaluationUrl = `http://${host}:${port("EVALUATION_SERVICE_GRPC_PORT", 50052)}`;
const signer = createTokenSigner(secret, {
  ...(process.env.AUTH_ISSUER ? { issuer: process.env.AUTH_ISSUER } : {}),
  ...(process.env.AUTH_AUDIENCE ? { audience: process.env.AUTH_AUDIENCE } : {}),
});
const runId = Date.now().toString(36);

/**
 * Clients of both services for one owner, a publisher (so it may move `production`): of its personal project
 * (roles user + publisher), or with --project of that team project (`projects: { <id>: "publisher" }`).
 */
async function ownerClients(sub) {
  const token = await signer.signToken(
    opts.project === undefined
      ? { sub, roles: ["user", "publisher"], ttl: "1h" }
      : { sub, projects: { [opts.project]: "publisher" }, ttl: "1h" },
  );
  const interceptors = [
    (next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    },
  ];
  const options = { interceptors, defaultTimeoutMs: 30_000 };
  return {
    sub,
    project: opts.project ?? `user:${sub}`,
    prompts: createClient(PromptService, createGrpcTransport({ baseUrl: promptUrl, ...options })),
    evaluations: createClient(EvaluationService, createGrpcTransport({ baseUrl: evaluationUrl, ...options })),
  };
}

/** Runs `fn` over `items` with at most `limit` calls in flight; fails on the first error. */
async function mapBounded(items, limit, fn) {
  const out = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

const topics = [
  [
    "Support reply",
    "Answer the customer's question about {{topic}} politely and in at most five sentences.",
    ["support", "email"],
  ],
  [
    "Release notes",
    "Summarise these changes as release notes for {{audience}}, grouped by area.",
    ["docs", "release"],
  ],
  [
    "SQL explainer",
    "Explain what this SQL query does, step by step, for a junior developer.",
    ["sql", "education"],
  ],
  [
    "Meeting summary",
    "Summarise the meeting transcript: decisions, owners, deadlines.",
    ["meetings", "summary"],
  ],
  [
    "Code review",
    "Review this diff for bugs, security issues and readability. Be specific.",
    ["code", "review"],
  ],
  ["Product copy", "Write a product description for {{product}} in a friendly tone.", ["marketing"]],
  ["Translation", "Translate the text into Japanese, keeping technical terms in English.", ["i18n", "ja"]],
  [
    "Classifier",
    "Classify the ticket as bug, feature request or question. Answer with one word.",
    ["support", "triage"],
  ],
];
const models = [
  { provider: "openai", model: "gpt-4o-mini" },
  { provider: "anthropic", model: "claude-3-5-haiku" },
  { provider: "google", model: "gemini-1.5-flash" },
];

/** A google.protobuf.Value holding a string. */
const text = (value) => ({ kind: { case: "stringValue", value } });

/** Everything the seed makes, in dependency order: templates, prompts (versions, labels), evaluations. */
async function seed() {
  const started = performance.now();
  const owners = await Promise.all(
    // the first owner is `npm start`'s dev-user, so its printed USER_TOKEN / PUBLISHER_TOKEN see the demo data
    Array.from({ length: opts.owners }, (_, i) => ownerClients(i === 0 ? "dev-user" : `demo-owner-${i + 1}`)),
  );

  // Two templates per owner (names are unique per project: in a shared team project they carry the owner's number).
  const templates = await mapBounded(owners, opts.concurrency, async (owner, ownerIndex) => {
    const suffix = opts.project === undefined ? "" : `-${ownerIndex + 1}`;
    const greeting = await owner.prompts.createPromptTemplate({
      project,
      name: `greeting-${runId}${suffix}`,
      description: "A greeting in the customer's language",
      body: "Greet {{name}} in {{language}} and offer help with {{topic}}.",
      variables: [
        { name: "name", type: VariableType.STRING, required: true },
        { name: "language", type: VariableType.STRING, required: false, defaultValue: text("English") },
        { name: "topic", type: VariableType.STRING, required: true },
      ],
    });
    const summary = await owner.prompts.createPromptTemplate({
      project,
      name: `summary-${runId}${suffix}`,
      description: "Summarise a document in N bullet points",
      body: "Summarise the document in {{bullets}} bullet points for {{audience}}.",
      variables: [
        { name: "bullets", type: VariableType.NUMBER, required: true },
        { name: "audience", type: VariableType.STRING, required: true },
      ],
    });
    return [greeting.template, summary.template];
  });

  // Prompts, round-robin over the owners: version 1, then content changes up to --versions, labels and tags.
  const prompts = await mapBounded(
    Array.from({ length: opts.prompts }, (_, i) => i),
    opts.concurrency,
    async (i) => {
      const ownerIndex = i % owners.length;
      const owner = owners[ownerIndex];
      const [title, content, tags] = topics[i % topics.length];
      const { provider, model } = models[i % models.length];
      let prompt;
      if (i % 5 === 4) {
        // some prompts start from a template: the rendered text, linked to its template
        const template = templates[ownerIndex][0];
        const rendered = await owner.prompts.renderPromptTemplate({
          project,
          id: template.id,
          variables: { name: text("Ada"), topic: text("billing") },
        });
        prompt = (
          await owner.prompts.createPrompt({
            project,
            name: `seed-${runId}-${i + 1}`,
            title: `Greeting #${i + 1}`,
            content: rendered.text,
            tags: ["greeting", "template"],
            templateId: template.id,
            requestId: `seed-${runId}-prompt-${i}`,
          })
        ).prompt;
      } else {
        prompt = (
          await owner.prompts.createPrompt({
            project,
            name: `seed-${runId}-${i + 1}`,
            title: `${title} #${i + 1}`,
            content,
            tags,
            metadata: { team: ["platform", "support", "growth"][i % 3], seeded: true },
            modelConfig: { provider, model, temperature: 0.2 },
            requestId: `seed-${runId}-prompt-${i}`,
          })
        ).prompt;
      }
      for (let v = 2; v <= opts.versions; v++) {
        prompt = (
          await owner.prompts.updatePrompt({
            project,
            id: prompt.id,
            etag: prompt.etag,
            updateMask: { paths: ["content", "model_config"] },
            content: `${prompt.content}\nRevision ${v}: be concise${v % 2 === 0 ? " and cite sources" : ""}.`,
            modelConfig: { provider, model, temperature: Math.round((0.2 + 0.1 * v) * 10) / 10 },
            changeNote: `revision ${v}`,
          })
        ).prompt;
      }
      const current = prompt.currentVersion;
      await owner.prompts.setPromptLabel({ project, id: prompt.id, label: "staging", version: current });
      await owner.prompts.setPromptLabel({
        project,
        id: prompt.id,
        label: "production",
        version: Math.max(1, current - 1),
      });
      return { owner, prompt: { id: prompt.id, versions: current } };
    },
  );

  // Evaluations, round-robin over the prompts (as their owners): create, start, record results, complete.
  let resultCount = 0;
  const evaluations =
    prompts.length === 0
      ? []
      : await mapBounded(
          Array.from({ length: opts.evaluations }, (_, i) => i),
          opts.concurrency,
          async (i) => {
            const { owner, prompt } = prompts[i % prompts.length];
            const { provider, model } = models[i % models.length];
            const evaluation = (
              await owner.evaluations.createEvaluation({
                project,
                promptId: prompt.id,
                promptVersion: 1 + (i % prompt.versions),
                provider,
                model,
                metadata: { dataset: "demo-v1", seeded: true },
                requestId: `seed-${runId}-evaluation-${i}`,
              })
            ).evaluation;
            await owner.evaluations.startEvaluation({ project, id: evaluation.id });
            const quality = 0.5 + 0.5 * (((i * 7) % 10) / 10);
            const results = Array.from({ length: opts.results }, (_, k) => {
              const score = Math.min(1, Math.max(0, quality + (((k * 13) % 7) - 3) / 10));
              return {
                name: `case ${k + 1}`,
                input: `Demo input ${k + 1}`,
                expectedOutput: "expected answer",
                actualOutput: score >= 0.7 ? "expected answer" : "something else",
                passed: score >= 0.7,
                score,
                latencyMs: BigInt(200 + ((k * 37 + i * 11) % 900)),
              };
            });
            await owner.evaluations.recordTestResults({
              project,
              evaluationId: evaluation.id,
              results,
              requestId: `seed-${runId}-results-${i}`,
            });
            resultCount += results.length;
            await owner.evaluations.completeEvaluation({ project, id: evaluation.id });
            return evaluation.id;
          },
        );

  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  console.log(
    JSON.stringify({
      runId,
      owners: owners.map((o) => o.sub),
      projects: [...new Set(owners.map((o) => o.project))],
      templates: templates.flat().length,
      prompts: prompts.length,
      versions: prompts.reduce((n, p) => n + p.prompt.versions, 0),
      labels: prompts.length * 2,
      evaluations: evaluations.length,
      testResults: resultCount,
      seconds: Number(seconds),
    }),
  );
  console.error(
    `seed: made ${templates.flat().length} templates, ${prompts.length} prompts (${opts.versions} versions each, ` +
      `staging + production labels), ${evaluations.length} completed evaluations with ${resultCount} test results ` +
      `for ${owners.length} owner(s) (${owners.map((o) => o.sub).join(", ")}) ` +
      `in ${opts.project === undefined ? "their personal projects" : `project ${opts.project}`}, ${seconds}s`,
  );
}

seed().catch((e) => {
  const hint = String(e?.message ?? e).includes("ECONNREFUSED")
    ? ` (is \`npm start\` running? prompt-service ${promptUrl}, evaluation-service ${evaluationUrl})`
    : "";
  fail(`${e?.message ?? e}${hint}`);
});
