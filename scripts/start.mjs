#!/usr/bin/env node
// `npm start`: installs (when needed), builds, and runs every service on embedded libSQL files under
// ./data, with a local JWT secret generated once. Prints ready-to-use tokens and example calls.
// Ctrl-C (SIGINT) or SIGTERM drains and stops every service, then exits.
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
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
      variables: { grpcPort: `${prefix}_GRPC_PORT`, connectPort: `${prefix}_CONNECT_PORT` },
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

/** The error code of binding host:port (EADDRINUSE, EACCES, ...), or undefined when it can be bound. */
function bindError(port) {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", (e) => resolve(e.code ?? String(e)));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
}

// Before anything else: a port held by another process (often an `npm start` still running) would otherwise
// answer our health check and make this run look up, until its own service dies on EADDRINUSE.
const taken = [];
for (const s of known) {
  for (const which of ["grpcPort", "connectPort"]) {
    const code = await bindError(s[which]);
    if (code !== undefined)
      taken.push({ service: s.name, port: s[which], variable: s.variables[which], code });
  }
}
if (taken.length > 0) {
  for (const t of taken) {
    const why = t.code === "EADDRINUSE" ? "is in use" : `cannot be bound (${t.code})`;
    console.error(`start: ${host}:${t.port} (${t.service}, ${t.variable}) ${why}`);
  }
  console.error(
    "start: stop whatever holds it (another `npm start`?) or choose other ports, e.g. " +
      `${taken[0].variable}=${taken[0].port + 100} npm start`,
  );
  process.exit(1);
}

if (!existsSync(join(root, "node_modules", ".package-lock.json")))
  run("npm", ["ci", "--no-audit", "--no-fund"]);
if (process.env.START_SKIP_BUILD !== "1") run("npm", ["run", "--silent", "build"]);

const secret = process.env.AUTH_JWT_SECRET ?? devSecret();
const { createTokenSigner } = await import("@autoforge/server");
const signer = createTokenSigner(secret);
const ttl = "12h";
/** The team project `npm start` prints tokens and examples for (team projects exist as soon as a token names one). */
const demo = "demo";
const tokens = {
  // personal projects (user:{sub}), as before projects existed: the `roles` claim is the role there
  user: await signer.signToken({ sub: "dev-user", roles: ["user"], ttl }),
  publisher: await signer.signToken({ sub: "dev-user", roles: ["user", "publisher"], ttl }),
  admin: await signer.signToken({ sub: "dev-admin", roles: ["admin"], ttl }),
  // members of the team project `demo` (and each of its own personal project), and an app reading its prompts
  viewer: await signer.signToken({ sub: "demo-viewer", projects: { [demo]: "viewer" }, ttl }),
  editor: await signer.signToken({ sub: "demo-editor", projects: { [demo]: "editor" }, ttl }),
  demoPublisher: await signer.signToken({ sub: "demo-publisher", projects: { [demo]: "publisher" }, ttl }),
  demoService: await signer.signToken({ sub: "checkout-app", roles: ["service"], project: demo, ttl }),
  // evaluation-service's own token: the all-projects service principal, so its consumer reads every
  // project's event feed (a plain service token would see only its own project's events)
  service: await signer.signToken({ sub: "evaluation-service", roles: ["service"], projects: "*", ttl }),
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
const connect = prompt && `http://${host}:${prompt.connectPort}/autoforge.prompt.v1.PromptService`;
const grpc = prompt && `${host}:${prompt.grpcPort}`;
const evaluation = known.find((s) => s.name === "evaluation-service");
const evaluationGrpc = evaluation && `${host}:${evaluation.grpcPort}`;
/** One example curl call of PromptService over Connect (JSON over HTTP/1.1). */
const curl = (token, body, method) =>
  `  curl -s -H "authorization: Bearer $${token}" -H 'content-type: application/json' \\\n` +
  `    -d '${JSON.stringify(body)}' \\\n    ${connect}/${method}`;
const greeting = { project: demo, name: "checkout-greeting" };
console.log(`
AutoForge is running (${known.map((s) => `${s.name}: gRPC ${host}:${s.grpcPort}, Connect http://${host}:${s.connectPort}`).join("; ")}).
Databases: ${dataDir}. Tokens (HS256, valid ${ttl}; projects and roles: docs/projects.md):

  # personal projects: dev-user acts in user:dev-user (editor; publisher with PUBLISHER_TOKEN), dev-admin in
  # user:dev-admin (admin, and AdminService's operator); a call without "project" acts there
  export USER_TOKEN=${tokens.user}
  export PUBLISHER_TOKEN=${tokens.publisher}
  export ADMIN_TOKEN=${tokens.admin}
  # the team project "${demo}": a viewer, an editor and a publisher (who may move the production label),
  # and the service token of an app (checkout-app) that reads the project's prompts; calls name "project":"${demo}"
  export VIEWER_TOKEN=${tokens.viewer}
  export EDITOR_TOKEN=${tokens.editor}
  export DEMO_PUBLISHER_TOKEN=${tokens.demoPublisher}
  export DEMO_SERVICE_TOKEN=${tokens.demoService}
${
  prompt
    ? `
Try (Connect JSON over HTTP/1.1; prompts are found by name in their project):
  # the editor creates a prompt in ${demo} ({{customer}} becomes a required variable)
${curl("EDITOR_TOKEN", { ...greeting, title: "Checkout greeting", content: "Hello {{customer}}, thanks for your order!" }, "CreatePrompt")}
  # the app reads it and renders it (by name: the production label's version once set, else the newest)
${curl("DEMO_SERVICE_TOKEN", greeting, "GetPrompt")}
${curl("DEMO_SERVICE_TOKEN", { ...greeting, variables: { customer: "Ada" } }, "RenderPrompt")}
  # the viewer lists the project; dev-user's personal project does not have it
${curl("VIEWER_TOKEN", { project: demo }, "ListPrompts")}
${curl("USER_TOKEN", {}, "ListPrompts")}

gRPC (server reflection, no proto files needed):
  grpcurl -plaintext ${grpc} list
  grpcurl -plaintext -H "authorization: Bearer $DEMO_SERVICE_TOKEN" \\
    -d '${JSON.stringify({ ...greeting, variables: { customer: "Ada" } })}' \\
    ${grpc} autoforge.prompt.v1.PromptService/RenderPrompt
  grpcurl -plaintext -H "authorization: Bearer $VIEWER_TOKEN" -d '${JSON.stringify({ project: demo, pageSize: 5 })}' \\
    ${grpc} autoforge.prompt.v1.PromptService/ListPrompts
  ghz --insecure --call autoforge.prompt.v1.PromptService.GetPrompt -m '{"authorization":"Bearer '$DEMO_SERVICE_TOKEN'"}' \\
    -d '${JSON.stringify(greeting)}' -c 10 -z 5s --duration-stop=wait ${grpc}${
      evaluationGrpc
        ? `
  # evaluation-service: the project's evaluations (CreateEvaluation takes a prompt id and version from GetPrompt)
  grpcurl -plaintext -H "authorization: Bearer $VIEWER_TOKEN" -d '${JSON.stringify({ project: demo, pageSize: 5 })}' \\
    ${evaluationGrpc} autoforge.evaluation.v1.EvaluationService/ListEvaluations`
        : ""
    }
`
    : ""
}
Ctrl-C stops everything.`);
