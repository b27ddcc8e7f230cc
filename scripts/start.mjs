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

/** Services this repository contains, with their default ports (architecture §7a). */
const known = [
  { name: "prompt-service", grpcPort: 50051, connectPort: 8081 },
  { name: "evaluation-service", grpcPort: 50052, connectPort: 8082 },
].filter((s) => existsSync(join(root, "services", s.name, "package.json")));

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

async function waitForHealth(service, deadline) {
  const url = `http://${host}:${service.connectPort}/healthz`;
  while (Date.now() < deadline) {
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

const children = known.map((service) => {
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
    PROMPT_SERVICE_URL: `http://${host}:50051`,
  };
  const child = spawn(process.execPath, ["dist/main.js"], {
    cwd: join(root, "services", service.name),
    env,
    stdio: ["ignore", "inherit", "inherit"],
  });
  return { service, child, exited: new Promise((resolve) => child.once("exit", (code) => resolve(code))) };
});

let stopping = false;
async function stop(signal) {
  if (stopping) return;
  stopping = true;
  console.error(`\nstart: ${signal}: stopping ${known.map((s) => s.name).join(", ")}...`);
  for (const { child } of children) if (child.exitCode === null) child.kill("SIGTERM");
  const codes = await Promise.all(children.map((c) => c.exited));
  process.exit(codes.every((code) => code === 0) ? 0 : 1);
}
process.on("SIGINT", () => void stop("SIGINT"));
process.on("SIGTERM", () => void stop("SIGTERM"));
for (const { service, exited } of children) {
  exited.then((code) => {
    if (!stopping) {
      console.error(`start: ${service.name} exited with code ${code}; stopping the others`);
      void stop("exit");
    }
  });
}

try {
  const deadline = Date.now() + 60_000;
  await Promise.all(known.map((service) => waitForHealth(service, deadline)));
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
