import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

/**
 * The script CLIs (`npm run seed`, `scripts/mint-token.mjs`) as a user runs them: `--help` prints the usage and
 * exits 0; an unknown option or a bad value is one line on stderr (no stack trace) and exit code 2. They import
 * the built packages (`npm run build`, which CI runs before the tests).
 */
const root = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

async function script(name: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [`scripts/${name}.mjs`, ...args], {
      cwd: root,
      env: { PATH: process.env.PATH, ...env },
    });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failed = e as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

function oneLine(stderr: string, prefix: string): string {
  const lines = stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(new RegExp(`^${prefix}: `));
  expect(stderr).not.toMatch(/\n\s+at /);
  return lines[0] ?? "";
}

const secret = "x".repeat(40);

describe.each([
  ["seed", {}],
  ["mint-token", { AUTH_JWT_SECRET: secret }],
] as const)("%s", (name, env) => {
  it("--help prints the usage and exits 0", async () => {
    for (const flag of ["--help", "-h"]) {
      const result = await script(name, [flag], env);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^Usage: /);
      expect(result.stdout).toContain("--help");
      expect(result.stderr).toBe("");
    }
  });

  it("an unknown option is one line naming it, exit 2", async () => {
    const result = await script(name, ["--bogus"], env);
    expect(result.code).toBe(2);
    expect(oneLine(result.stderr, name)).toContain("'--bogus'");
  });

  it("an option without its value is one line, exit 2", async () => {
    const result = await script(name, [name === "seed" ? "--prompts" : "--sub"], env);
    expect(result.code).toBe(2);
    oneLine(result.stderr, name);
  });
});

describe("bad values", () => {
  it.each([
    [["--prompts", "many"], '--prompts must be a whole number 0..100000, got "many"'],
    [["--concurrency", "0"], "--concurrency must be a whole number 1..64"],
    [["--project", "Not A Project"], "--project must be a team project id"],
  ])("seed %j", async (args, message) => {
    const result = await script("seed", args);
    expect(result.code).toBe(2);
    expect(oneLine(result.stderr, "seed")).toContain(message);
  });

  it("seed: a bad port variable names it", async () => {
    const result = await script("seed", [], { AUTH_JWT_SECRET: secret, PROMPT_SERVICE_GRPC_PORT: "99999" });
    expect(result.code).toBe(2);
    expect(oneLine(result.stderr, "seed")).toContain(
      "PROMPT_SERVICE_GRPC_PORT must be a whole number 1..65535",
    );
  });

  it.each([
    [["--ttl", "soon"], "--ttl must be seconds or a span"],
    [["--roles", "wizard"], '--roles: "wizard" is not a role'],
    [["--projects", "acme"], '--projects: "acme" is not <id>=<role>'],
    [["--project", "acme"], "--project makes a service principal"],
  ])("mint-token %j", async (args, message) => {
    const result = await script("mint-token", args, { AUTH_JWT_SECRET: secret });
    expect(result.code).toBe(2);
    expect(oneLine(result.stderr, "mint-token")).toContain(message);
  });

  it("mint-token without a secret says so, exit 2", async () => {
    const result = await script("mint-token", []);
    expect(result.code).toBe(2);
    expect(oneLine(result.stderr, "mint-token")).toContain("set AUTH_JWT_SECRET");
  });

  it("mint-token with good options prints only a token", async () => {
    const result = await script("mint-token", ["--sub", "alice", "--projects", "acme=editor"], {
      AUTH_JWT_SECRET: secret,
    });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
  });
});
