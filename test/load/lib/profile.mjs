// Summarises a V8 .cpuprofile (node --cpu-prof): top frames by self time, and self time by package.
import { readFileSync } from "node:fs";

/** Where a frame's code lives: a package name, the repo's own code, node internals, or a V8 pseudo-frame. */
export function frameOwner(url, functionName) {
  if (url === "") {
    if (functionName.startsWith("(")) return functionName; // (garbage collector), (program), (idle)
    return "(native/V8 builtin)";
  }
  if (url.startsWith("node:")) return "node internals";
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) {
    const rest = url.slice(nm + "/node_modules/".length).split("/");
    return rest[0].startsWith("@") ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const m = url.match(/\/(packages|services)\/([^/]+)\//);
  if (m) return `${m[1]}/${m[2]}`;
  return url.replace(/^file:\/\//, "");
}

function shortUrl(url) {
  const nm = url.lastIndexOf("/node_modules/");
  if (nm >= 0) return url.slice(nm + "/node_modules/".length);
  const m = url.match(/\/((packages|services)\/.*)$/);
  if (m) return m[1];
  return url.replace(/^file:\/\//, "");
}

/** Coarse layers, to say what a request's CPU goes to. */
export function layerOf(owner) {
  if (
    ["libsql", "@libsql/client", "drizzle-orm", "packages/db"].includes(owner) ||
    owner.startsWith("@libsql/")
  )
    return "database (libsql native calls, @libsql/client, drizzle-orm, packages/db)";
  if (owner === "@grpc/grpc-js" || owner === "node internals" || owner === "(native/V8 builtin)")
    return "transport and runtime (grpc-js, node http2/streams, V8 builtins)";
  if (owner === "@bufbuild/protobuf" || owner.startsWith("protobufjs") || owner.startsWith("@protobufjs/"))
    return "protobuf (de)serialisation";
  if (owner === "(garbage collector)") return "garbage collector";
  if (owner === "(program)") return "(program: native code outside JS)";
  return "application and middleware (services/*, packages/server, zod, jose, pino, prom-client, ...)";
}

/**
 * @returns {{ totalMs: number, busyMs: number, idleMs: number, top: object[], byOwner: object[] }}
 */
export function summariseProfile(file, { fromMs = 0, toMs = Number.POSITIVE_INFINITY, topN = 25 } = {}) {
  const profile = JSON.parse(readFileSync(file, "utf8"));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const hits = new Map();
  // Sample i lasted timeDeltas[i + 1] (the delta before the next sample); the last one is dropped. Only samples
  // inside [fromMs, toMs] after the profile's start count (the load, not startup and shutdown).
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i];
    const ms = at / 1000;
    if (ms < fromMs || ms > toMs) continue;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    const id = profile.samples[i];
    hits.set(id, (hits.get(id) ?? 0) + dt);
  }
  const frames = new Map();
  const owners = new Map();
  let totalUs = 0;
  let idleUs = 0;
  for (const [id, us] of hits) {
    const { callFrame: f } = byId.get(id);
    totalUs += us;
    if (f.functionName === "(idle)") {
      idleUs += us;
      continue;
    }
    const key = `${f.functionName || "(anonymous)"} ${shortUrl(f.url)}:${f.lineNumber + 1}`;
    const entry = frames.get(key) ?? {
      frame: f.functionName || "(anonymous)",
      location: f.url === "" ? "" : `${shortUrl(f.url)}:${f.lineNumber + 1}`,
      owner: frameOwner(f.url, f.functionName),
      selfUs: 0,
    };
    entry.selfUs += us;
    frames.set(key, entry);
    const owner = frameOwner(f.url, f.functionName);
    owners.set(owner, (owners.get(owner) ?? 0) + us);
  }
  const busyUs = totalUs - idleUs;
  const pct = (us) => Math.round((1000 * us) / Math.max(1, busyUs)) / 10;
  const top = [...frames.values()]
    .sort((a, b) => b.selfUs - a.selfUs)
    .slice(0, topN)
    .map((e) => ({
      frame: e.frame,
      location: e.location,
      owner: e.owner,
      selfMs: Math.round(e.selfUs / 1000),
      selfPct: pct(e.selfUs),
    }));
  const layers = new Map();
  for (const [owner, us] of owners) layers.set(layerOf(owner), (layers.get(layerOf(owner)) ?? 0) + us);
  const byLayer = [...layers.entries()]
    .sort((a, b) => b[1] - a[1])
    .map(([layer, us]) => ({ layer, selfMs: Math.round(us / 1000), selfPct: pct(us) }));
  const byOwner = [...owners.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 15)
    .map(([owner, us]) => ({ owner, selfMs: Math.round(us / 1000), selfPct: pct(us) }));
  return {
    totalMs: Math.round(totalUs / 1000),
    busyMs: Math.round(busyUs / 1000),
    idleMs: Math.round(idleUs / 1000),
    top,
    byLayer,
    byOwner,
  };
}
