import { type ChildProcess, execFile, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { type DescMethodUnary, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { Code, createClient } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { afterAll, describe, expect, it } from "vitest";

/**
 * The README's first command, proven on a fresh clone: `git clone` of this checkout's HEAD (committed files
 * only, no node_modules, no dist, no data), then `npm start` exactly as a newcomer runs it — it installs
 * (`npm ci`; `npm_config_prefer_offline` only lets npm use its cache), builds, starts every service, prints
 * tokens. Then Ctrl-C, emulated as a terminal does it (SIGINT to the whole foreground process group), must
 * stop everything with exit code 0. In between, the printed examples run as printed: each `curl` command through
 * bash after the printed `export` lines (as a newcomer pastes them), each `grpcurl` / `ghz` command the same way
 * when the tool is on PATH, else as the equivalent gRPC call with exactly its body, method and token.
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

/** A printed command: `curl ...`, `grpcurl ...` or `ghz ...`, with its `\\`-continued lines, as printed. */
interface PrintedCommand {
  readonly tool: "curl" | "grpcurl" | "ghz";
  readonly text: string;
  readonly service: "PromptService" | "EvaluationService";
  /** The RPC it calls (`CreatePrompt`, ...). */
  readonly method: string;
  /** The token variable it sends (`EDITOR_TOKEN`, ...). */
  readonly token: string;
  /** Its `-d` body, parsed. */
  readonly body: JsonValue;
}

function printedCommands(stdout: string): PrintedCommand[] {
  const lines = stdout.split("\n");
  const commands: PrintedCommand[] = [];
  for (let i = 0; i < lines.length; i++) {
    const tool = /^\s*(curl|grpcurl|ghz) /.exec(lines[i] ?? "")?.[1] as PrintedCommand["tool"] | undefined;
    if (tool === undefined) continue;
    const text = [lines[i] ?? ""];
    while ((text.at(-1) ?? "").endsWith("\\") && i + 1 < lines.length) text.push(lines[++i] ?? "");
    const joined = text.join("\n");
    // `grpcurl -plaintext host:port list`: no method, token or body
    if (tool === "grpcurl" && / list$/.test(joined)) {
      commands.push({ tool, text: joined, service: "PromptService", method: "list", token: "", body: null });
      continue;
    }
    const [, service, method] = /(PromptService|EvaluationService)[/.](\w+)\b/.exec(joined) ?? [];
    const token = /Bearer '?\$(\w+)/.exec(joined)?.[1];
    const body = /-d '([^']*)'/.exec(joined)?.[1];
    if (method === undefined || token === undefined || body === undefined) {
      throw new Error(`cannot read the printed command:\n${joined}`);
    }
    commands.push({
      tool,
      text: joined,
      service: service as PrintedCommand["service"],
      method,
      token,
      body: JSON.parse(body) as JsonValue,
    });
  }
  return commands;
}

const run = promisify(execFile);

/** Runs a printed command in bash after the printed `export` lines, as a user pastes them; its stdout. */
async function runPrinted(exports: string, command: string): Promise<string> {
  const { stdout } = await run("bash", ["-c", `${exports}\n${command}`], { timeout: 60_000 });
  return stdout;
}

function onPath(tool: string): boolean {
  try {
    execFileSync("bash", ["-c", `command -v ${tool}`], { stdio: "pipe" });
    return true;
  } catch {
    return false;
  }
}

/** The printed gRPC call made with a gRPC client: the same method, body (protobuf JSON) and token; JSON back. */
async function grpcEquivalent(port: string, command: PrintedCommand, token: string): Promise<JsonValue> {
  const service = command.service === "PromptService" ? PromptService : EvaluationService;
  const method = service.methods.find((m) => m.name === command.method);
  if (method === undefined || method.methodKind !== "unary") throw new Error(`no unary ${command.method}`);
  const baseUrl = `http://127.0.0.1:${port}`;
  const sessionManager = new Http2SessionManager(baseUrl);
  const transport = createGrpcTransport({ baseUrl, sessionManager });
  const unary = method as DescMethodUnary;
  const client = createClient(service, transport) as unknown as Record<
    string,
    (request: unknown, options: unknown) => Promise<never>
  >;
  const call = client[unary.localName];
  if (call === undefined) throw new Error(`no client method ${unary.localName}`);
  try {
    const response = await call(fromJson(unary.input, command.body), {
      headers: { authorization: `Bearer ${token}` },
    });
    return toJson(unary.output, response);
  } finally {
    sessionManager.abort(); // no connection left open for the Ctrl-C drain below
  }
}

/** A Connect JSON call that must fail with `code` (the error JSON's `code`, e.g. "not_found"). */
async function connectError(port: string, path: string, token: string, body: unknown, code: Code) {
  const response = await fetch(`http://127.0.0.1:${port}/${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as { code?: string };
  expect(json.code, JSON.stringify(json)).toBe(codeName(code));
}

/** Connect's JSON error code names: `not_found`, `permission_denied`, ... */
function codeName(code: Code): string {
  return (Code[code] ?? "").replace(/[A-Z]/g, (c, i: number) =>
    i === 0 ? c.toLowerCase() : `_${c.toLowerCase()}`,
  );
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

      // The printed examples of the team project, run as printed (a fresh start: the demo prompt is not there yet).
      const printedTokens = Object.fromEntries(
        [...stdout.matchAll(/^ {2}export (\w+_TOKEN)=(\S+)$/gm)].map((m) => [m[1] ?? "", m[2] ?? ""]),
      );
      expect(Object.keys(printedTokens).sort()).toEqual(
        [
          "ADMIN_TOKEN",
          "DEMO_PUBLISHER_TOKEN",
          "DEMO_SERVICE_TOKEN",
          "EDITOR_TOKEN",
          "PUBLISHER_TOKEN",
          "USER_TOKEN",
          "VIEWER_TOKEN",
        ].sort(),
      );
      const exportLines = stdout
        .split("\n")
        .filter((line) => /^ {2}export \w+_TOKEN=\S+$/.test(line))
        .join("\n");
      const tokenOf = (name: string) => {
        const t = printedTokens[name];
        if (t === undefined) throw new Error(`no ${name} printed`);
        return t;
      };
      const commands = printedCommands(stdout);
      const curls = commands.filter((c) => c.tool === "curl");
      expect(curls.map((c) => `${c.method} ${c.token}`)).toEqual([
        "CreatePrompt EDITOR_TOKEN",
        "GetPrompt DEMO_SERVICE_TOKEN",
        "RenderPrompt DEMO_SERVICE_TOKEN",
        "ListPrompts VIEWER_TOKEN",
        "ListPrompts USER_TOKEN",
      ]);
      for (const c of commands) {
        // every example names the project and the prompt by name, never an id
        expect(c.text).not.toMatch(/[0-9a-f]{8}-[0-9a-f]{4}-/);
        if (c.token !== "USER_TOKEN" && c.method !== "list")
          expect(c.body).toMatchObject({ project: "demo" });
      }
      type PromptJson = { id: string; name: string; project: string; content: string; version: number };
      const results: JsonValue[] = [];
      for (const c of curls) results.push(JSON.parse(await runPrinted(exportLines, c.text)) as JsonValue);
      const [created, got, rendered, viewerList, userList] = results as [
        { prompt?: PromptJson },
        { prompt?: PromptJson },
        { text?: string },
        { prompts?: PromptJson[] },
        { prompts?: PromptJson[] },
      ];
      // the editor created it in demo, by name
      expect(created.prompt, JSON.stringify(created)).toMatchObject({
        project: "demo",
        name: "checkout-greeting",
        content: "Hello {{customer}}, thanks for your order!",
        version: 1,
      });
      const demoPromptId = created.prompt?.id as string;
      // the app (the demo service token) reads it by name and renders it
      expect(got.prompt, JSON.stringify(got)).toMatchObject({ id: demoPromptId, name: "checkout-greeting" });
      expect(rendered, JSON.stringify(rendered)).toMatchObject({ text: "Hello Ada, thanks for your order!" });
      // the viewer lists it; dev-user's personal project does not have it
      expect((viewerList.prompts ?? []).map((p) => p.id)).toEqual([demoPromptId]);
      expect((userList.prompts ?? []).map((p) => p.id)).not.toContain(demoPromptId);
      // and dev-user (no member of demo) cannot see it at all: NOT_FOUND by name, in demo or in its own project
      const getPath = "autoforge.prompt.v1.PromptService/GetPrompt";
      for (const body of [{ project: "demo", name: "checkout-greeting" }, { name: "checkout-greeting" }]) {
        await connectError(ports.PROMPT_SERVICE_CONNECT_PORT, getPath, token, body, Code.NotFound);
      }
      await connectError(
        ports.PROMPT_SERVICE_CONNECT_PORT,
        "autoforge.prompt.v1.PromptService/ListPrompts",
        token,
        { project: "demo" },
        Code.NotFound,
      );

      // grpcurl and ghz: as printed when installed, else the same call (method, body, token) by a gRPC client
      const grpcCommands = commands.filter((c) => c.tool !== "curl");
      expect(grpcCommands.map((c) => `${c.tool} ${c.method} ${c.token}`.trimEnd())).toEqual([
        "grpcurl list",
        "grpcurl RenderPrompt DEMO_SERVICE_TOKEN",
        "grpcurl ListPrompts VIEWER_TOKEN",
        "ghz GetPrompt DEMO_SERVICE_TOKEN",
        "grpcurl ListEvaluations VIEWER_TOKEN",
      ]);
      for (const c of grpcCommands) {
        const port =
          c.service === "PromptService" ? ports.PROMPT_SERVICE_GRPC_PORT : ports.EVALUATION_SERVICE_GRPC_PORT;
        expect(c.text).toContain(`127.0.0.1:${port}`);
        if (c.tool === "ghz") expect(c.text).toContain("--duration-stop=wait");
        if (c.method === "list") {
          // reflection lists the services (checked by its own test without grpcurl: health-reflection.test.ts)
          if (onPath("grpcurl")) {
            const listed = (await runPrinted(exportLines, c.text)).trim().split("\n");
            expect(listed).toEqual(
              expect.arrayContaining([
                "autoforge.prompt.v1.PromptService",
                "autoforge.admin.v1.AdminService",
              ]),
            );
          }
          continue;
        }
        let answer: JsonValue;
        if (c.tool === "grpcurl" && onPath("grpcurl")) {
          answer = JSON.parse(await runPrinted(exportLines, c.text)) as JsonValue;
        } else {
          if (c.tool === "ghz" && onPath("ghz")) {
            const report = await runPrinted(exportLines, c.text);
            expect(report).toMatch(/\[OK\]\s+\d+ responses/);
            expect(report).not.toMatch(/Error distribution/);
          }
          answer = await grpcEquivalent(port, c, tokenOf(c.token));
        }
        if (c.method === "ListEvaluations") {
          expect(answer).toEqual({}); // none yet in demo; the viewer may list them
        } else if (c.method === "RenderPrompt") {
          expect(answer).toMatchObject({ text: "Hello Ada, thanks for your order!" });
        } else if (c.method === "ListPrompts") {
          expect(((answer as { prompts?: PromptJson[] }).prompts ?? []).map((p) => p.id)).toEqual([
            demoPromptId,
          ]);
        } else {
          expect(answer).toMatchObject({ prompt: { id: demoPromptId, name: "checkout-greeting" } });
        }
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
