import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestServer, type TestServer } from "./helpers.js";

/**
 * A connection storm while the event loop is busy: the kernel completes handshakes into the port's accept queue
 * (its backlog) until the process accepts them; past the backlog it drops the clients' SYNs and they wait for a
 * TCP retransmit (1 s, 3 s, ...). Node's default backlog is 511, so 2,000 load-test connections opened at once
 * lost seconds before their first call. Here a second process opens N connections while this process (which
 * serves both ports) blocks its event loop, and counts how many the kernel completed. (Without the fix: ~512.)
 */
const N = 1_000;
// net.core.somaxconn caps every backlog (4096 on current kernels)
const somaxconn = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8"));
const expected = Math.min(N, somaxconn);

// Opens N connections at once; 1 s later writes how many completed (atomically: temp file, then rename).
const CLIENT = `
const net = require("node:net");
const fs = require("node:fs");
const [port, n, out] = process.argv.slice(1);
let connected = 0;
for (let i = 0; i < Number(n); i++) net.connect({ port: Number(port), host: "127.0.0.1" }, () => connected++).on("error", () => {});
setTimeout(() => {
  fs.writeFileSync(out + ".tmp", String(connected));
  fs.renameSync(out + ".tmp", out);
  process.exit(0);
}, 1000);
`;

/**
 * Connections the kernel completed while this process accepted none: the event loop stays blocked (as when a
 * service is saturated) from before the client starts until it has written its count.
 */
async function handshakesWhileBlocked(port: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), "backlog-"));
  const out = join(dir, "count");
  const child = spawn(process.execPath, ["-e", CLIENT, String(port), String(N), out], { stdio: "inherit" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const giveUp = Date.now() + 20_000;
  while (!existsSync(out) && Date.now() < giveUp) {
    // busy: nothing is accepted
  }
  await exited;
  const count = existsSync(out) ? Number(readFileSync(out, "utf8")) : Number.NaN;
  rmSync(dir, { recursive: true, force: true });
  return count;
}

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.server.shutdown({ graceMs: 1_000 });
});

describe("listen backlog", () => {
  it(`the gRPC port queues ${expected} connections while the process is busy`, async () => {
    expect(await handshakesWhileBlocked(t.grpcPort)).toBeGreaterThanOrEqual(expected);
  });

  it(`the Connect port queues ${expected} connections while the process is busy`, async () => {
    expect(await handshakesWhileBlocked(t.connectPort)).toBeGreaterThanOrEqual(expected);
  });
});
