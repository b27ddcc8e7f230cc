/**
 * An sqld primary for embedded-replica tests that can be killed, stopped (SIGSTOP) and restarted on the same
 * `--db-path` and port, as a primary that crashes and comes back. Removed after the test.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { onTestFinished } from "vitest";
import { sqldBinary } from "../../../test/support/sqld.js";

export interface RestartablePrimary {
  readonly url: string;
  /** SIGKILL (default) or SIGTERM, and wait for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same data and port; resolves once it answers. */
  restart(): Promise<void>;
  /** SIGSTOP: the process keeps its sockets but answers nothing. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Primaries still running when the test process exits (a crash, a timeout) are killed, stopped ones too. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) {
    child.kill("SIGCONT");
    child.kill("SIGKILL");
  }
});

export async function restartablePrimary(): Promise<RestartablePrimary> {
  const binary = sqldBinary;
  if (binary === undefined) throw new Error("no sqld binary (set SQLD_BIN or put sqld on PATH)");
  const dir = mkdtempSync(join(tmpdir(), "autoforge-primary-"));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let log = "";

  const exited = (c: ChildProcess) =>
    c.exitCode !== null || c.signalCode !== null
      ? Promise.resolve()
      : new Promise<void>((resolve) => c.once("exit", () => resolve()));

  async function start(): Promise<void> {
    const c = spawn(
      binary as string,
      ["--db-path", join(dir, "data.sqld"), "--no-welcome", "--http-listen-addr", `127.0.0.1:${port}`],
      {
        cwd: dir,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, RUST_LOG: "warn", NO_COLOR: "1" },
      },
    );
    child = c;
    running.add(c);
    c.once("exit", () => running.delete(c));
    const keep = (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-20_000);
    };
    c.stdout?.on("data", keep);
    c.stderr?.on("data", keep);
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (c.exitCode !== null || c.signalCode !== null) throw new Error(`sqld exited:\n${log}`);
      try {
        const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
        await response.arrayBuffer();
        if (response.ok) return;
      } catch {
        // not listening yet (the port may still be in TIME_WAIT after a kill)
      }
      if (Date.now() > deadline) throw new Error(`sqld did not answer at ${url}:\n${log}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  onTestFinished(async () => {
    const c = child;
    if (c !== undefined && c.exitCode === null && c.signalCode === null) {
      c.kill("SIGCONT");
      c.kill("SIGKILL");
      await exited(c);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  await start();
  return {
    url,
    async kill(signal = "SIGKILL") {
      const c = child;
      if (c === undefined) return;
      c.kill("SIGCONT");
      c.kill(signal);
      await exited(c);
    },
    restart: start,
    pause() {
      child?.kill("SIGSTOP");
    },
    resume() {
      child?.kill("SIGCONT");
    },
  };
}
