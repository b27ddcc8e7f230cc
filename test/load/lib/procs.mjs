// Child processes of the load run: free ports, a raised fd limit, health waits, clean stops.
import { spawn, spawnSync } from "node:child_process";
import { accessSync, constants, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { delimiter, isAbsolute, join } from "node:path";

/** The sqld (libsql-server) binary: `SQLD_BIN` (a path or a name), else `sqld` on PATH; undefined if none. */
export function findSqld(env = process.env) {
  const wanted = env.SQLD_BIN || "sqld";
  const executable = (path) => {
    try {
      accessSync(path, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (isAbsolute(wanted) || wanted.includes("/")) return executable(wanted) ? wanted : undefined;
  return (env.PATH ?? "")
    .split(delimiter)
    .filter(Boolean)
    .map((dir) => join(dir, wanted))
    .find(executable);
}

/** A port the OS says is free now (closed again before returning; good enough on a test machine). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Soft and hard `ulimit -n` of a shell started from here (what children inherit). */
export function fdLimits() {
  const out = spawnSync("sh", ["-c", "ulimit -Sn; ulimit -Hn"], { encoding: "utf8" })
    .stdout.trim()
    .split("\n");
  const parse = (v) => (v === "unlimited" ? Number.POSITIVE_INFINITY : Number(v));
  return { soft: parse(out[0]), hard: parse(out[1]) };
}

/**
 * The fd limit children get: the soft limit, raised towards `wanted` (up to the hard limit) when lower.
 * Node cannot raise its own rlimit, so children are started through `sh -c 'ulimit -n N; exec ...'`.
 */
export function fdLimitFor(wanted) {
  const { soft, hard } = fdLimits();
  if (soft >= wanted) return { limit: soft, raised: false, soft, hard };
  const limit = Math.min(wanted, hard);
  return { limit, raised: true, soft, hard };
}

/** spawn() through a shell that first sets `ulimit -n` (when `fdLimit` is given). */
export function spawnWithLimit(command, args, options, fdLimit) {
  if (fdLimit === undefined) return spawn(command, args, options);
  return spawn("sh", ["-c", `ulimit -n ${fdLimit} && exec "$0" "$@"`, command, ...args], options);
}

/** Keeps the last lines of a child's stdout/stderr, for error messages. */
export function captureTail(child, max = 60) {
  const lines = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    let buffer = "";
    stream.setEncoding("utf8");
    stream.on("data", (chunk) => {
      buffer += chunk;
      let nl = buffer.indexOf("\n");
      while (nl >= 0) {
        lines.push(buffer.slice(0, nl));
        if (lines.length > max) lines.shift();
        buffer = buffer.slice(nl + 1);
        nl = buffer.indexOf("\n");
      }
    });
  }
  return lines;
}

export async function waitForHttpOk(url, deadlineMs, child, tail) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `process exited (${child.exitCode ?? child.signalCode}) before ${url} answered:\n${tail.join("\n")}`,
      );
    }
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  throw new Error(`${url} did not answer within ${deadlineMs} ms:\n${tail.join("\n")}`);
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (or signal). */
export async function stopChild(child, graceMs = 15_000) {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode ?? child.signalCode;
  const exited = new Promise((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal)));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  const result = await exited;
  clearTimeout(timer);
  return result;
}

/** CPU seconds (user+sys) a process has used so far, from /proc (Linux); undefined elsewhere. */
export function cpuSeconds(pid) {
  return statTicks(`/proc/${pid}/stat`, 11); // utime, stime (fields 14, 15 of stat)
}

/**
 * CPU seconds (user+sys) of this process's children that have exited and been waited for (cutime, cstime):
 * the difference around one ghz run is ghz's own CPU, since the services and the echo server outlive it.
 */
export function exitedChildrenCpuSeconds() {
  return statTicks("/proc/self/stat", 13); // cutime, cstime (fields 16, 17 of stat)
}

/**
 * SYNs the kernel dropped because a listening socket's accept queue was full (TcpExt ListenDrops, whole
 * machine, /proc/net/netstat); undefined elsewhere. The difference around a run shows a connection storm that
 * outran a backlog: each such client waits for TCP's retransmit (1 s, then 3 s) before its first call.
 */
export function listenDrops() {
  try {
    const lines = readFileSync("/proc/net/netstat", "utf8").split("\n");
    const i = lines.findIndex((l) => l.startsWith("TcpExt:"));
    const names = lines[i].split(" ");
    const values = lines[i + 1].split(" ");
    const n = Number(values[names.indexOf("ListenDrops")]);
    return Number.isFinite(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

function statTicks(file, index) {
  try {
    const stat = readFileSync(file, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[index]) + Number(fields[index + 1])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return undefined;
  }
}
