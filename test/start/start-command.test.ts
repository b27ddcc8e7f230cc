import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

/**
 * The README's first command, proven on a fresh clone: `git clone` of this checkout's HEAD (committed files
 * only, no node_modules, no dist, no data), then `npm start` exactly as a newcomer runs it — it installs
 * (`npm ci`; `npm_config_prefer_offline` only lets npm use its cache), builds, starts every service, prints
 * tokens. Then Ctrl-C, emulated as a terminal does it (SIGINT to the whole foreground process group), must
 * stop everything with exit code 0.
 */

// START_TEST_REPO: clone another repository instead (e.g. a scratch commit of uncommitted work, to try it).
const repoRoot = process.env.START_TEST_REPO ?? fileURLToPath(new URL("../..", import.meta.url));
// Not the default ports (other tests and a developer's own `npm start` may hold those), and not fixed ones
// either: free ports below the kernel's ephemeral range (32768+ on Linux), so no port-0 listener or outgoing
// connection of a test running alongside can take one between this check and the services' bind.
let ports: Record<
  | "PROMPT_SERVICE_GRPC_PORT"
  | "PROMPT_SERVICE_CONNECT_PORT"
  | "EVALUATION_SERVICE_GRPC_PORT"
  | "EVALUATION_SERVICE_CONNECT_PORT",
  string
>;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

async function freePorts(count: number): Promise<string[]> {
  const found: string[] = [];
  for (let port = 20_000 + Math.floor(Math.random() * 10_000); found.length < count; port++) {
    if (await canListen(port)) found.push(String(port));
  }
  return found;
}
const STARTUP_TIMEOUT_MS = 300_000; // npm ci + tsc on a shared 2-core machine

let workDir: string | undefined;
let start: ChildProcess | undefined;
afterAll(async () => {
  // A test that failed half-way: stop it the way a user would (the start script then stops the services,
  // which run in their own process groups); SIGKILL only as a last resort.
  const pid = start?.pid;
  if (pid !== undefined && start?.exitCode === null && start.signalCode === null) {
    const gone = new Promise((resolve) => start?.once("exit", resolve));
    try {
      process.kill(-pid, "SIGINT");
    } catch {
      // already gone
    }
    const timer = new Promise((resolve) => setTimeout(resolve, 20_000));
    if ((await Promise.race([gone.then(() => "gone"), timer])) !== "gone") {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }
  if (workDir !== undefined) rmSync(workDir, { recursive: true, force: true, maxRetries: 5 });
}, 30_000);

/** The environment of a newcomer's shell: ours minus npm's and vitest's per-run variables. */
function shellEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^(npm_|VITEST|NODE_OPTIONS$|AUTH_|DATABASE_|TEST$)/i.test(key)) continue;
    env[key] = value;
  }
  return { ...env, CI: "true", npm_config_prefer_offline: "true", ...ports };
}

async function connectCall(port: string, path: string, token: string, body: unknown): Promise<unknown> {
  const response = await fetch(`http://127.0.0.1:${port}/${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json: unknown = await response.json();
  expect(response.status, JSON.stringify(json)).toBe(200);
  return json;
}

describe("README: `npm start` on a fresh clone", () => {
  it(
    "installs, builds, serves with the printed tokens, and Ctrl-C stops every service with exit code 0",
    async () => {
      const [promptGrpc = "", promptConnect = "", evaluationGrpc = "", evaluationConnect = ""] =
        await freePorts(4);
      ports = {
        PROMPT_SERVICE_GRPC_PORT: promptGrpc,
        PROMPT_SERVICE_CONNECT_PORT: promptConnect,
        EVALUATION_SERVICE_GRPC_PORT: evaluationGrpc,
        EVALUATION_SERVICE_CONNECT_PORT: evaluationConnect,
      };
      workDir = mkdtempSync(join(tmpdir(), "autoforge-start-"));
      const clone = join(workDir, "repo");
      execFileSync("git", ["clone", "--quiet", repoRoot, clone], { stdio: "pipe" });

      start = spawn("npm", ["start"], { cwd: clone, env: shellEnv(), detached: true });
      let stdout = "";
      let stderr = "";
      start.stdout?.on("data", (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      start.stderr?.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
      });
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        start?.once("exit", (code, signal) => resolve({ code, signal })),
      );

      const deadline = Date.now() + STARTUP_TIMEOUT_MS;
      while (!stdout.includes("Ctrl-C stops everything.")) {
        if (start.exitCode !== null || Date.now() > deadline) {
          throw new Error(`npm start did not get ready (exit ${start.exitCode})\n${stdout}\n${stderr}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 250));
      }

      const userToken = /export USER_TOKEN=(\S+)/.exec(stdout)?.[1];
      expect(userToken, stdout).toBeDefined();
      const token = userToken as string;
      const prompt = (await connectCall(
        ports.PROMPT_SERVICE_CONNECT_PORT,
        "autoforge.prompt.v1.PromptService/CreatePrompt",
        token,
        { title: "Greeting", content: "Say hello to {{name}}.", tags: ["demo"] },
      )) as { prompt: { id: string; version: number } };
      expect(prompt.prompt).toMatchObject({ version: 1 });
      const list = (await connectCall(
        ports.PROMPT_SERVICE_CONNECT_PORT,
        "autoforge.prompt.v1.PromptService/ListPrompts",
        token,
        {},
      )) as { prompts: { id: string }[] };
      expect(list.prompts.map((p) => p.id)).toEqual([prompt.prompt.id]);

      const started = stdout.includes("evaluation-service: gRPC");
      if (started) {
        // the token printed by `npm start` works on the second service too, which checks the prompt through
        // prompt-service (so this also proves the services found each other)
        const evaluation = (await connectCall(
          ports.EVALUATION_SERVICE_CONNECT_PORT,
          "autoforge.evaluation.v1.EvaluationService/CreateEvaluation",
          token,
          { promptId: prompt.prompt.id, provider: "openai", model: "gpt-4o" },
        )) as { evaluation: { promptId: string } };
        expect(evaluation.evaluation.promptId).toBe(prompt.prompt.id);
      }

      // Ctrl-C: the terminal sends SIGINT to the foreground process group (npm and the start script)
      process.kill(-(start.pid as number), "SIGINT");
      const { code, signal } = await exited;
      // npm itself got the terminal's SIGINT: after its script has exited it ends by that signal (a shell shows
      // 130), as with any `npm run` interrupted by Ctrl-C. The start script's own verdict is in its last line,
      // printed just before it exits 0 (or 1 when any service did not exit 0).
      expect({ code, signal, tail: stderr.slice(-2000) }).toMatchObject(
        code === null ? { signal: "SIGINT" } : { code: 0 },
      );
      const expected = started
        ? "start: stopped (prompt-service exit code 0, evaluation-service exit code 0)"
        : "start: stopped (prompt-service exit code 0)";
      expect(stderr).toContain(expected);
      expect(stderr).not.toMatch(/npm error|exited with code/);
      // nothing is left listening
      await expect(fetch(`http://127.0.0.1:${ports.PROMPT_SERVICE_CONNECT_PORT}/healthz`)).rejects.toThrow();
    },
    STARTUP_TIMEOUT_MS + 60_000,
  );
});
