import { execFile } from "node:child_process";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it, onTestFinished } from "vitest";
import { startService, tempDir } from "../e2e/harness.js";

/**
 * A port someone else holds: `npm start` says which before it installs, builds or prints anything; a service
 * says it in one line naming the port and its variable, instead of a stack trace.
 */
const root = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);

/** A port nobody held a moment ago (listened on, then released). */
async function freePort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

async function holdPort(): Promise<number> {
  const server: Server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("ports already in use", () => {
  it("npm start names the taken port and its variable, and starts nothing", async () => {
    const taken = await holdPort();
    // the other three free (the defaults may be held by a developer's own `npm start`)
    const env = {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PROMPT_SERVICE_GRPC_PORT: String(await freePort()),
      PROMPT_SERVICE_CONNECT_PORT: String(await freePort()),
      EVALUATION_SERVICE_GRPC_PORT: String(await freePort()),
      EVALUATION_SERVICE_CONNECT_PORT: String(taken),
    };
    const failed = await run(process.execPath, ["scripts/start.mjs"], { cwd: root, env }).then(
      () => undefined,
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    expect(failed?.code).toBe(1);
    expect(failed?.stdout).toBe("");
    expect(failed?.stderr.trim().split("\n")).toEqual([
      `start: 127.0.0.1:${taken} (evaluation-service, EVALUATION_SERVICE_CONNECT_PORT) is in use`,
      "start: stop whatever holds it (another `npm start`?) or choose other ports, e.g. " +
        `EVALUATION_SERVICE_CONNECT_PORT=${taken + 100} npm start`,
    ]);
  });

  it.each([
    ["GRPC_PORT", "CONNECT_PORT"],
    ["CONNECT_PORT", "GRPC_PORT"],
  ])("a service whose %s is taken exits 1 with one line naming it", async (variable, other) => {
    const taken = await holdPort();
    const dir = tempDir();
    const started = startService("prompt-service", {
      DATABASE_URL: `file:${join(dir, "prompt-service.db")}`,
      [variable]: String(taken),
      [other]: "0",
    });
    const error = await started.then(
      () => undefined,
      (e: Error) => e,
    );
    expect(error?.message).toMatch(/exited \(1\) before listening/);
    const stderrLines = (error?.message ?? "").split("\n").filter((l) => !l.startsWith("{"));
    expect(stderrLines).toContain(
      `prompt-service: cannot listen: 127.0.0.1:${taken} is already in use (another instance running?); ` +
        `set ${variable} to another port`,
    );
    expect(error?.message).not.toMatch(/\n\s+at /);
  });
});
