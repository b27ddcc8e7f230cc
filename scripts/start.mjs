#!/usr/bin/env node
// `npm start`: installs (when needed), builds, and runs every service on embedded libSQL files under
// ./data, with a local JWT secret generated once. Prints ready-to-use tokens and example calls.
// Ctrl-C (SIGINT) or SIGTERM drains and stops every service, then exits.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dataDir = join(root, "data");
const host = process.env.HOST ?? "127.0.0.1";

/** `PROMPT_SERVICE_GRPC_PORT=...` style overrides (e.g. for a test beside other servers); defaults otherwise. */
function portFromEnv(name, fallback) {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  if (!/^\d{1,5}$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
    console.error(`start: ${name} must be a port number 1..65535, got ${JSON.stringify(raw)}`);
    process.exit(1);
  }
  return Number(raw);
}

/** Services this repository contains, with their ports (defaults: architecture §7a). */
const known = [
  { name: "prompt-service", grpcPort: 50051, connectPort: 8081 },
  { name: "evaluation-service", grpcPort: 50052, connectPort: 8082 },
]
  .filter((s) => existsSync(join(root, "services", s.name, "package.json")))
  .map((s) => {
    const prefix = s.name.toUpperCase().replace("-", "_");
    return {
      ...s,
      grpcPort: portFromEnv(`${prefix}_GRPC_PORT`, s.grpcPort),
      connectPort: portFromEnv(`${prefix}_CONNECT_PORT`, s.connectPort),
    };
  });
const promptGrpcPort = portFromEnv("PROMPT_SERVICE_GRPC_PORT", 50051);

function run(command, args) {
  const result = spawnSync(command, args, { cwd: root, stdio: "inherit" });
  if (result.status !== 0) {
    console.error(`start: '${command} ${args.join(" ")}' failed`);
    process.exit(result.status ?? 1);
  }
}

function devSecret() {
  const file = join(dataDir, "dev-jwt-secret");
  if (!existsSync(file)) {
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(file, randomBytes(48).toString("base64url"), { mode: 0o600 });
  }
  return readFileSync(file, "utf8").trim();
}

async function waitForHealth(service, child, deadline) {
  const url = `http://${host}:${service.connectPort}/healthz`;
  while (Date.now() < deadline) {
    // exited (e.g. port in use): whatever answers on that port is not our service
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${service.name} exited`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${service.name} did not become healthy at ${url}`);
}

if (!existsSync(join(root, "node_modules", ".package-lock.json")))
  run("npm", ["ci", "--no-audit", "--no-fund"]);
if (process.env.START_SKIP_BUILD !== "1") run("npm", ["run", "--silent", "build"]);

const secret = process.env.AUTH_JWT_SECRET ?? devSecret();
const { createTokenSigner } = await import("@autoforge/server");
const signer = createTokenSigner(secret);
const ttl = "12h";
const tokens = {
  user: await signer.signToken({ sub: "dev-user", roles: ["user"], ttl }),
  publisher: await signer.signToken({ sub: "dev-user", roles: ["user", "publisher"], ttl }),
  admin: await signer.signToken({ sub: "dev-admin", roles: ["admin"], ttl }),
  service: await signer.signToken({ sub: "evaluation-service", roles: ["service"], ttl }),
};

/** Starts one service; `children` collects the running ones. */
const children = [];
function launch(service) {
  const env = {
    ...process.env,
    HOST: host,
    GRPC_PORT: String(service.grpcPort),
    CONNECT_PORT: String(service.connectPort),
    DATABASE_URL:
      process.env[`${service.name.toUpperCase().replace("-", "_")}_DATABASE_URL`] ??
      `file:${join(dataDir, `${service.name}.db`)}`,
    AUTH_JWT_SECRET: secret,
    SERVICE_TOKEN: tokens.service,
    PROMPT_SERVICE_URL: `http://${host}:${promptGrpcPort}`,
  };
  const child = spawn(process.execPath, ["dist/main.js"], {
    cwd: join(root, "services", service.name),
    env,
    stdio: ["ignore", "inherit", "inherit"],
    // Own process group: Ctrl-C in a terminal signals the whole foreground group, and a service that got the
    // terminal's SIGINT and then our SIGTERM would take the second signal as "force quit" (exit 1, no drain).
    // This script is the one that stops them.
    detached: true,
  });
  const exited = new Promise((resolve) => child.once("exit", (code) => resolve(code)));
  children.push({ service, child, exited });
  exited.then((code) => {
    if (!stopping) {
      console.error(`start: ${service.name} exited with code ${code}; stopping the others`);
      void stop("exit");
    }
  });
  return child;
}

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`\nstart: ${signal}: stopping ${children.map((c) => c.service.name).join(", ")}...`);
  for (const { child } of children) if (child.exitCode === null) child.kill("SIGTERM");
  const codes = await Promise.all(children.map((c) => c.exited));
  console.error(
    `start: stopped (${children.map((c, i) => `${c.service.name} exit code ${codes[i]}`).join(", ")})`,
  );
  process.exit(codes.every((code) => code === 0) ? 0 : 1);
}
// The services are in their own process groups: never leave them running if this script ends another way.
process.on("exit", () => {
  for (const { child } of children)
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
});
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
try {
  // In dependency order (prompt-service first), each once the one before is healthy: evaluation-service calls
  // prompt-service from its start, and failed calls to a not-yet-listening dependency would open its breaker.
  const deadline = Date.now() + 60_000;
  for (const service of known) {
    if (stopping) break;
    await waitForHealth(service, launch(service), deadline);
  }
} catch (err) {
  console.error(`start: ${err.message}`);
  await stop("failed start");
}

const prompt = known.find((s) => s.name === "prompt-service");
console.log(`
AutoForge is running (${known.map((s) => `${s.name}: gRPC ${host}:${s.grpcPort}, Connect http://${host}:${s.connectPort}`).join("; ")}).
Databases: ${dataDir}. Tokens (HS256, valid ${ttl}):

  export USER_TOKEN=${tokens.user}
  export PUBLISHER_TOKEN=${tokens.publisher}
  export ADMIN_TOKEN=${tokens.admin}
${
  prompt
    ? `
Try (Connect JSON over HTTP/1.1):
  curl -s -H "authorization: Bearer $USER_TOKEN" -H 'content-type: application/json' \\
    -d '{"title":"Greeting","content":"Say hello to {{name}}.","tags":["demo"]}' \\
    http://${host}:${prompt.connectPort}/autoforge.prompt.v1.PromptService/CreatePrompt
  curl -s -H "authorization: Bearer $USER_TOKEN" -H 'content-type: application/json' -d '{}' \\
    http://${host}:${prompt.connectPort}/autoforge.prompt.v1.PromptService/ListPrompts

gRPC (server reflection, no proto files needed):
  grpcurl -plaintext -H "authorization: Bearer $USER_TOKEN" -d '{"page_size":5}' \\
    ${host}:${prompt.grpcPort} autoforge.prompt.v1.PromptService/ListPrompts
  ghz --insecure --call autoforge.prompt.v1.PromptService.ListPrompts -m '{"authorization":"Bearer '$USER_TOKEN'"}' \\
    -d '{"page_size":20}' -c 10 -z 5s ${host}:${prompt.grpcPort}
`
    : ""
}
Ctrl-C stops everything.`);
