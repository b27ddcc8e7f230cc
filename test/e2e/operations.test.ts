/**
 * Running it like production, with both services as real processes (their main.ts wiring): the Prometheus
 * metrics each serves at GET /metrics on its Connect port, and `npm run seed` against them.
 */
import { spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { MaintenanceTask } from "@autoforge/contracts/admin/v1";
import { EvaluationStatus } from "@autoforge/contracts/evaluation/v1";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  Code,
  clients,
  expectCode,
  must,
  pollUntil,
  type ServiceProcess,
  secret,
  startEvaluationService,
  startPromptService,
  tempDir,
} from "./harness.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

async function scrape(service: ServiceProcess): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${service.connectPort}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  return res.text();
}

/** The value of one sample (`name{labels} value`), or undefined when absent. Labels in exposition order. */
function sample(text: string, name: string, labels = ""): number | undefined {
  const prefix = labels === "" ? `${name} ` : `${name}{${labels}} `;
  const line = text.split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

/** Runs scripts/seed.mjs from source against the given services; resolves with its JSON summary line. */
function runSeed(args: string[], env: Record<string, string>): Promise<Record<string, unknown>> {
  const child = spawn(
    process.execPath,
    ["--conditions=source", "--import", "tsx", "scripts/seed.mjs", ...args],
    {
      cwd: root,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding("utf8").on("data", (c: string) => {
    stderr += c;
  });
  return new Promise((resolve, reject) => {
    child.once("exit", (code) => {
      if (code !== 0) return reject(new Error(`seed exited ${code}:\n${stderr}\n${stdout}`));
      resolve(JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as Record<string, unknown>);
    });
  });
}

describe("operations", () => {
  it("GET /metrics shows RPC codes, transactions, queue depth, database size, maintenance and consumer lag", async () => {
    const dir = tempDir();
    const prompt = await startPromptService(dir);
    const evaluation = await startEvaluationService(dir, prompt.url);
    const promptClients = clients(prompt.url);
    const alice = await promptClients.prompts("alice");
    const evals = await clients(evaluation.url).evaluations("alice");

    // the scripted workload: OKs, a NOT_FOUND, an INVALID_ARGUMENT, a maintenance run
    const created = must((await alice.createPrompt({ title: "metrics", content: "v1" })).prompt);
    await alice.getPrompt({ id: created.id });
    await expectCode(alice.getPrompt({ id: "0190f5a0-0000-7000-8000-000000000000" }), Code.NotFound);
    await expectCode(alice.createPrompt({ title: "", content: "x" }), Code.InvalidArgument);
    const e = must(
      (await evals.createEvaluation({ promptId: created.id, provider: "p", model: "m" })).evaluation,
    );
    await expectCode(evals.getEvaluation({ id: "0190f5a0-0000-7000-8000-000000000000" }), Code.NotFound);
    await evals.getEvaluation({ id: e.id });
    // the integrity check: the task that runs on every engine (sqld and replicas leave ANALYZE to the server)
    await (await promptClients.admin()).runMaintenance({ tasks: [MaintenanceTask.INTEGRITY_CHECK] });

    const text = await scrape(prompt);
    // go-grpc-prometheus's names and labels, plus the protocol (these clients call the gRPC port)
    const unary = (service: string, method: string) =>
      `grpc_type="unary",grpc_service="${service}",grpc_method="${method}",protocol="grpc"`;
    const rpc = (method: string, code: string) =>
      sample(
        text,
        "grpc_server_handled_total",
        `${unary("autoforge.prompt.v1.PromptService", method)},grpc_code="${code}"`,
      );
    expect(rpc("CreatePrompt", "OK")).toBe(1);
    expect(rpc("GetPrompt", "OK")).toBeGreaterThanOrEqual(1); // + evaluation-service's check of the prompt
    expect(rpc("GetPrompt", "NotFound")).toBe(1);
    expect(rpc("CreatePrompt", "InvalidArgument")).toBe(1);
    expect(
      sample(text, "grpc_server_started_total", unary("autoforge.prompt.v1.PromptService", "GetPrompt")),
    ).toBeGreaterThanOrEqual(2);
    expect(
      sample(
        text,
        "grpc_server_handling_seconds_count",
        unary("autoforge.prompt.v1.PromptService", "GetPrompt"),
      ),
    ).toBeGreaterThanOrEqual(2);
    expect(
      sample(text, "db_transaction_duration_seconds_count", 'kind="write",outcome="commit"'),
    ).toBeGreaterThan(0);
    expect(
      sample(text, "db_transaction_duration_seconds_count", 'kind="read",outcome="commit"'),
    ).toBeGreaterThan(0);
    expect(text).toContain("# TYPE db_transaction_retries_total counter");
    expect(sample(text, "db_write_queue_depth")).toBe(0);
    expect(sample(text, "db_size_bytes")).toBeGreaterThan(0);
    // Node's process metrics: CPU, memory, event-loop delay
    expect(sample(text, "process_cpu_seconds_total")).toBeGreaterThan(0);
    expect(sample(text, "nodejs_heap_size_used_bytes")).toBeGreaterThan(0);
    expect(sample(text, "nodejs_eventloop_lag_p99_seconds")).toBeGreaterThanOrEqual(0); // since the last scrape
    expect(sample(text, "maintenance_runs_total", 'task="integrity_check",outcome="ok"')).toBe(1);
    expect(
      sample(text, "maintenance_last_success_timestamp_seconds", 'task="integrity_check"'),
    ).toBeGreaterThan(0);

    const evalText = await scrape(evaluation);
    expect(
      sample(
        evalText,
        "grpc_server_handled_total",
        `${unary("autoforge.evaluation.v1.EvaluationService", "GetEvaluation")},grpc_code="NotFound"`,
      ),
    ).toBe(1);
    expect(sample(evalText, "db_size_bytes")).toBeGreaterThan(0);
    // the consumer applies the CREATED event: lag back to 0 with the sequence applied
    await pollUntil(async () => {
      const t = await scrape(evaluation);
      return (
        sample(t, "event_consumer_lag", 'consumer="prompt-events"') === 0 &&
        (sample(t, "event_consumer_last_applied_sequence", 'consumer="prompt-events"') ?? 0) >= 1
      );
    });
  });

  it("npm run seed fills both services with demo data through the public API", async () => {
    const dir = tempDir();
    const prompt = await startPromptService(dir);
    const evaluation = await startEvaluationService(dir, prompt.url);
    const summary = await runSeed(
      ["--owners", "2", "--prompts", "5", "--versions", "3", "--evaluations", "4", "--results", "3"],
      {
        AUTH_JWT_SECRET: secret,
        PROMPT_SERVICE_GRPC_PORT: String(prompt.grpcPort),
        EVALUATION_SERVICE_GRPC_PORT: String(evaluation.grpcPort),
      },
    );
    expect(summary).toMatchObject({
      owners: ["dev-user", "demo-owner-2"],
      templates: 4,
      prompts: 5,
      versions: 15,
      evaluations: 4,
      testResults: 12,
    });

    // counted through the API, as each owner sees it
    const promptClients = clients(prompt.url);
    const evalClients = clients(evaluation.url);
    let prompts = 0;
    let evaluations = 0;
    let results = 0;
    for (const [owner, expected] of [
      ["dev-user", { prompts: 3, evaluations: 2 }],
      ["demo-owner-2", { prompts: 2, evaluations: 2 }],
    ] as const) {
      const p = await promptClients.prompts(owner);
      const listed = (await p.listPrompts({ pageSize: 100 })).prompts;
      expect(listed).toHaveLength(expected.prompts);
      for (const x of listed) {
        expect(x.currentVersion).toBe(3);
        expect(x.tags.length).toBeGreaterThan(0);
        expect(x.labels).toEqual({ latest: 3, staging: 3, production: 2 });
      }
      expect((await p.listPromptTemplates({})).templates).toHaveLength(2);
      expect((await p.listPromptVersions({ promptId: must(listed[0]).id })).versions).toHaveLength(3);
      const ev = await evalClients.evaluations(owner);
      const done = (await ev.listEvaluations({ status: EvaluationStatus.COMPLETED, pageSize: 100 }))
        .evaluations;
      expect(done).toHaveLength(expected.evaluations);
      for (const x of done) {
        expect(x.testCount).toBe(3);
        expect(x.overallScore).toBeGreaterThanOrEqual(0);
        results += (await ev.listTestResults({ evaluationId: x.id })).testResults.length;
      }
      prompts += listed.length;
      evaluations += done.length;
    }
    expect({ prompts, evaluations, results }).toEqual({ prompts: 5, evaluations: 4, results: 12 });
  });

  it("npm run seed -- --project seeds a team project: every owner a publisher there, prompts by name", async () => {
    const dir = tempDir();
    const prompt = await startPromptService(dir);
    const evaluation = await startEvaluationService(dir, prompt.url);
    const env = {
      AUTH_JWT_SECRET: secret,
      PROMPT_SERVICE_GRPC_PORT: String(prompt.grpcPort),
      EVALUATION_SERVICE_GRPC_PORT: String(evaluation.grpcPort),
    };
    const args = [
      "--owners",
      "2",
      "--prompts",
      "5",
      "--versions",
      "2",
      "--evaluations",
      "4",
      "--results",
      "3",
    ];
    const summary = await runSeed([...args, "--project", "acme"], env);
    expect(summary).toMatchObject({
      owners: ["dev-user", "demo-owner-2"],
      projects: ["acme"],
      templates: 4,
      prompts: 5,
      versions: 10,
      evaluations: 4,
      testResults: 12,
    });
    await expect(runSeed([...args, "--project", "Not A Project"], env)).rejects.toThrow(
      /seed: --project must be a team project id/,
    );

    // a viewer of acme sees all of it (both owners' prompts, by name); the owners' personal projects are empty
    const viewerClaims = { sub: "lin", projects: { acme: "viewer" } } as const;
    const viewer = {
      prompts: (await clients(prompt.url).as(viewerClaims)).prompts,
      evaluations: (await clients(evaluation.url).as(viewerClaims)).evaluations,
    };
    const listed = (await viewer.prompts.listPrompts({ project: "acme", pageSize: 100 })).prompts;
    expect(listed).toHaveLength(5);
    expect(new Set(listed.map((p) => p.ownerId))).toEqual(new Set(["dev-user", "demo-owner-2"]));
    for (const p of listed) {
      expect(p).toMatchObject({
        project: "acme",
        currentVersion: 2,
        labels: { latest: 2, staging: 2, production: 1 },
      });
      expect(p.name).toMatch(new RegExp(`^seed-${String(summary.runId)}-[1-5]$`));
      const byName = must((await viewer.prompts.getPrompt({ project: "acme", name: p.name })).prompt);
      expect(byName.version).toBe(1); // by name: the production label's version
    }
    expect((await viewer.prompts.listPromptTemplates({ project: "acme" })).templates).toHaveLength(4);
    const done = (
      await viewer.evaluations.listEvaluations({
        project: "acme",
        status: EvaluationStatus.COMPLETED,
        pageSize: 100,
      })
    ).evaluations;
    expect(done).toHaveLength(4);
    expect(done.every((e) => e.project === "acme" && e.testCount === 3)).toBe(true);
    const devUser = await clients(prompt.url).prompts("dev-user");
    expect((await devUser.listPrompts({})).prompts).toEqual([]);
  });
});
