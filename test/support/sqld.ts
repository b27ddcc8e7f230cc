/**
 * A real sqld (libsql-server) for tests: one process per test file, on a free loopback port, in a temp dir
 * of its own, optionally with JWT auth; stopped (SIGTERM, then SIGKILL) and its dir removed after the file.
 *
 * The binary comes from `SQLD_BIN`, else `sqld` on PATH. Without one, suites written with
 * {@link describeWithSqld} are not run on this machine; under `CI=true` they fail instead, since CI always
 * provides the binary (`.ci/run` sets `SQLD_BIN`).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { accessSync, constants, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, isAbsolute, join } from "node:path";
import { afterAll, beforeAll, describe, it, onTestFinished } from "vitest";

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The sqld binary to run: `SQLD_BIN` (a path, or a name looked up on PATH), else `sqld` on PATH. */
export function findSqld(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const wanted = env.SQLD_BIN !== undefined && env.SQLD_BIN !== "" ? env.SQLD_BIN : "sqld";
  if (isAbsolute(wanted) || wanted.includes("/")) return isExecutable(wanted) ? wanted : undefined;
  for (const dir of (env.PATH ?? "").split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, wanted);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

export const sqldBinary: string | undefined = findSqld();
export const hasSqld: boolean = sqldBinary !== undefined;
/**
 * Whether suites that need sqld are run: with a binary, and always under `CI=true` (where a missing binary
 * must fail them, not drop them: {@link startSqld} throws). Without either they are registered as skipped.
 */
export const runSqldSuites: boolean = hasSqld || process.env.CI === "true";

/**
 * `describe` for a suite that needs sqld: runs it when a binary is found; registers nothing that passes when
 * none is (the suite shows as skipped); under `CI=true` without a binary, registers one failing test.
 */
export function describeWithSqld(name: string, suite: () => void): void {
  if (hasSqld) {
    describe(name, suite);
  } else if (process.env.CI === "true") {
    describe(name, () => {
      it("needs an sqld binary", () => {
        throw new Error(
          `no sqld binary: SQLD_BIN=${JSON.stringify(process.env.SQLD_BIN ?? "")} and none on PATH (CI must provide one)`,
        );
      });
    });
  } else {
    describe.runIf(false)(name, suite);
  }
}

export interface SqldOptions {
  /** Start with `--auth-jwt-key-file`: every request then needs a token from {@link SqldServer.token}. */
  auth?: boolean;
  /** How long to wait for the server to answer. Default 15 s. */
  startTimeoutMs?: number;
}

export interface TokenOptions {
  /** `rw` (default) or `ro`: what sqld lets the token do. */
  access?: "rw" | "ro";
  /** Expiry, seconds from now; absent: no `exp` claim. Negative: already expired. */
  expiresInSeconds?: number;
}

export interface SqldServer {
  /** `http://127.0.0.1:<port>`: a `DATABASE_URL` for @libsql/client. */
  readonly url: string;
  readonly port: number;
  /** The server's `--db-path`. */
  readonly dbPath: string;
  /** With `auth`: a full-access token (what tests pass as `authToken`); undefined without auth. */
  readonly authToken: string | undefined;
  /** With `auth`: a token signed with the server's key (EdDSA JWT). Throws without auth. */
  token(options?: TokenOptions): string;
  /** Output the process wrote so far (for failure messages). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs` (default 5 s); removes the temp dir. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

async function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

const b64url = (data: string | Buffer) => Buffer.from(data).toString("base64url");

function signToken(privateKey: KeyObject, options: TokenOptions): string {
  const now = Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { iat: now, a: options.access ?? "rw" };
  if (options.expiresInSeconds !== undefined) claims.exp = now + options.expiresInSeconds;
  const signingInput = `${b64url(JSON.stringify({ alg: "EdDSA", typ: "JWT" }))}.${b64url(JSON.stringify(claims))}`;
  return `${signingInput}.${b64url(sign(null, Buffer.from(signingInput), privateKey))}`;
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once("exit", () => resolve()));
}

/** Waits until sqld answers `GET /health`, failing early if the process exits. */
async function waitUntilAnswering(
  url: string,
  child: ChildProcess,
  timeoutMs: number,
  output: () => string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`sqld exited (${child.exitCode ?? child.signalCode}) before answering:\n${output()}`);
    }
    try {
      const response = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) });
      await response.arrayBuffer();
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`sqld did not answer at ${url} within ${timeoutMs} ms:\n${output()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Servers not stopped yet: killed if the test process exits without stopping them (a crash, a bail-out). */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/** Starts an sqld of its own (see the module comment). The caller stops it; see {@link useSqld}. */
export async function startSqld(options: SqldOptions = {}): Promise<SqldServer> {
  const binary = sqldBinary;
  if (binary === undefined) throw new Error("no sqld binary (set SQLD_BIN or put sqld on PATH)");
  const dir = mkdtempSync(join(tmpdir(), "autoforge-sqld-"));
  const dbPath = join(dir, "data.sqld");
  const args = ["--db-path", dbPath, "--no-welcome"];
  let privateKey: KeyObject | undefined;
  if (options.auth === true) {
    const pair = generateKeyPairSync("ed25519");
    privateKey = pair.privateKey;
    const keyFile = join(dir, "jwt-key.pem");
    writeFileSync(keyFile, pair.publicKey.export({ type: "spki", format: "pem" }));
    args.push("--auth-jwt-key-file", keyFile);
  }

  // The port is free when picked but may be taken before sqld binds it: try a few.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freeLoopbackPort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn(binary, [...args, "--http-listen-addr", `127.0.0.1:${port}`], {
      cwd: dir,
      stdio: ["ignore", "pipe", "pipe"],
      // sqld's own tracing: warnings and errors only, without colours
      env: { ...process.env, RUST_LOG: process.env.SQLD_RUST_LOG ?? "warn", NO_COLOR: "1" },
    });
    running.add(child);
    child.once("exit", () => running.delete(child));
    let log = "";
    const keep = (chunk: Buffer) => {
      log = (log + chunk.toString()).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const output = () => log;
    let stopping: Promise<void> | undefined;
    const stop = (graceMs = 5_000): Promise<void> => {
      stopping ??= (async () => {
        const gone = exited(child);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
          await gone;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    };
    try {
      await waitUntilAnswering(url, child, options.startTimeoutMs ?? 15_000, output);
    } catch (err) {
      lastError = err;
      const gone = exited(child);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      await gone;
      continue;
    }
    const key = privateKey;
    return {
      url,
      port,
      dbPath,
      authToken: key === undefined ? undefined : signToken(key, {}),
      token(tokenOptions = {}) {
        if (key === undefined) throw new Error("this sqld was started without auth");
        return signToken(key, tokenOptions);
      },
      output,
      stop,
    };
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastError;
}

/**
 * One sqld for the current test file (or `describe` block): started in `beforeAll`, stopped in `afterAll`.
 * Returns an accessor, since the server exists only once the hooks ran.
 */
export function useSqld(options: SqldOptions = {}): () => SqldServer {
  let server: SqldServer | undefined;
  beforeAll(async () => {
    server = await startSqld(options);
  });
  afterAll(async () => {
    await server?.stop();
  });
  return () => {
    if (server === undefined) throw new Error("useSqld(): the server is started in beforeAll");
    return server;
  };
}

/** A fresh sqld for the current test only (a clean database), stopped when the test finishes. */
export async function sqldForTest(options: SqldOptions = {}): Promise<SqldServer> {
  const server = await startSqld(options);
  onTestFinished(() => server.stop());
  return server;
}
