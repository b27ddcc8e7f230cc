#!/usr/bin/env node
// Mints an HS256 bearer token signed with AUTH_JWT_SECRET (and AUTH_ISSUER / AUTH_AUDIENCE when set), the way
// the services verify it. Needs the built @autoforge/server (`npm run build`, or run it inside a service image).
//   AUTH_JWT_SECRET=... node scripts/mint-token.mjs --sub evaluation-service --roles service --all-projects --ttl 90d
// Prints only the token, so `export SERVICE_TOKEN=$(node scripts/mint-token.mjs ...)` works. `--help` lists the
// options; docs/projects.md explains projects and roles.
import { parseArgs } from "node:util";
import {
  allProjects,
  createTokenSigner,
  defaultAllProjectsSubjects,
  roles as knownRoles,
  projectRoles,
  teamProjectPattern,
} from "@autoforge/server";

/** Who may hold an all-projects token: the services' AUTH_ALL_PROJECTS_SUBJECTS when set here too, else the default. */
const allProjectsSubjects = process.env.AUTH_ALL_PROJECTS_SUBJECTS
  ? process.env.AUTH_ALL_PROJECTS_SUBJECTS.split(",")
      .map((s) => s.trim())
      .filter((s) => s !== "")
  : defaultAllProjectsSubjects;

const help = `Usage: AUTH_JWT_SECRET=... node scripts/mint-token.mjs [options]

Prints an HS256 bearer token for the services (signed with AUTH_JWT_SECRET; AUTH_ISSUER and AUTH_AUDIENCE are
set as iss / aud when given). Projects and roles: docs/projects.md.

Options:
  --sub <subject>          the token's subject, recorded as owner / actor (default: dev-user)
  --roles <r>[,<r>...]     global roles: ${knownRoles.join(", ")} (default: user). In the personal project
                           user:<sub>: user = editor, publisher = publisher, admin = admin (admin is also the
                           operator role of AdminService); service = a service principal
  --projects <id>=<role>[,<id>=<role>...]
                           member of these team projects with these roles (${projectRoles.join(", ")}), e.g.
                           --projects acme=editor,billing=viewer
  --project <id>           a service principal of this one team project (reads its prompts and its event
                           feed); needs --roles service
  --all-projects           the service principal of every project (projects "*"), for evaluation-service's
                           event-feed consumer: needs --roles service and --sub ${allProjectsSubjects.join(" or ")}
                           (the services' AUTH_ALL_PROJECTS_SUBJECTS, default evaluation-service)
  --ttl <span>             lifetime: seconds, or a span such as 30m, 12h, 90d (default: 12h)
  -h, --help               this text

Team project ids match ${teamProjectPattern.source}. Examples:
  node scripts/mint-token.mjs --sub alice --projects acme=publisher
  node scripts/mint-token.mjs --sub checkout-app --roles service --project acme --ttl 30d
  node scripts/mint-token.mjs --sub evaluation-service --roles service --all-projects --ttl 90d`;

/** One line on stderr, no stack trace; exit 2: bad usage (an unknown option, a bad value, no secret), 1: signing failed. */
function fail(message, code = 2) {
  console.error(`mint-token: ${message}`);
  process.exit(code);
}

let values;
try {
  ({ values } = parseArgs({
    options: {
      sub: { type: "string", default: "dev-user" },
      roles: { type: "string", default: "user" },
      projects: { type: "string" },
      project: { type: "string" },
      "all-projects": { type: "boolean", default: false },
      ttl: { type: "string", default: "12h" },
      help: { type: "boolean", short: "h", default: false },
    },
  }));
} catch (e) {
  fail(`${e.message} (--help lists the options)`);
}
if (values.help) {
  console.log(help);
  process.exit(0);
}

const list = (raw) =>
  raw
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");

if (values.sub.trim() === "") fail("--sub must not be empty");
const roles = [...new Set(list(values.roles))];
for (const role of roles) {
  if (!knownRoles.includes(role)) {
    fail(`--roles: ${JSON.stringify(role)} is not a role (one of ${knownRoles.join(", ")})`);
  }
}
const service = roles.length === 1 && roles[0] === "service";

function projectId(option, id) {
  if (!teamProjectPattern.test(id)) {
    fail(
      `${option}: ${JSON.stringify(id)} is not a team project id (${teamProjectPattern.source}; ` +
        "the personal project user:<sub> needs no claim)",
    );
  }
  return id;
}

const modes = ["projects", "project", "all-projects"].filter(
  (m) => values[m] !== undefined && values[m] !== false,
);
if (modes.length > 1) fail(`--${modes[0]} and --${modes[1]} cannot be combined`);

/** The project claims of the token. */
const claims = {};
if (values.projects !== undefined) {
  if (roles.includes("service")) {
    fail("--projects is for members; a service principal names its one project with --project");
  }
  const projects = {};
  const pairs = list(values.projects);
  if (pairs.length === 0) fail("--projects needs <id>=<role>[,<id>=<role>...]");
  for (const pair of pairs) {
    const [id, role, ...rest] = pair.split("=").map((part) => part.trim());
    if (role === undefined || rest.length > 0) {
      fail(`--projects: ${JSON.stringify(pair)} is not <id>=<role> (e.g. acme=editor)`);
    }
    projectId("--projects", id);
    if (!projectRoles.includes(role)) {
      fail(`--projects: ${JSON.stringify(role)} is not a project role (one of ${projectRoles.join(", ")})`);
    }
    if (projects[id] !== undefined && projects[id] !== role) {
      fail(`--projects: project ${id} is given twice with different roles`);
    }
    projects[id] = role;
  }
  claims.projects = projects;
}
if (values.project !== undefined) {
  if (!service) {
    fail(
      `--project makes a service principal of one project: add --roles service (got --roles ${values.roles})`,
    );
  }
  claims.project = projectId("--project", values.project.trim());
}
if (values["all-projects"]) {
  if (!service || !allProjectsSubjects.includes(values.sub)) {
    fail(
      `--all-projects is for the service role and subject ${allProjectsSubjects.join(" or ")} only ` +
        `(evaluation-service's event-feed consumer): use --sub ${allProjectsSubjects[0]} --roles service; ` +
        "prompt-service refuses it for any other subject (AUTH_ALL_PROJECTS_SUBJECTS)",
    );
  }
  claims.projects = allProjects;
}
const ttlPattern =
  /^\d+( ?(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|weeks?|y|yrs?|years?))?$/i;
if (!ttlPattern.test(values.ttl.trim())) {
  fail(`--ttl must be seconds or a span such as 30m, 12h, 90d (got ${JSON.stringify(values.ttl)})`);
}
const ttl = /^\d+$/.test(values.ttl.trim()) ? Number(values.ttl.trim()) : values.ttl.trim();

const secret = process.env.AUTH_JWT_SECRET;
if (secret === undefined || Buffer.byteLength(secret, "utf8") < 32) {
  fail("set AUTH_JWT_SECRET (at least 32 bytes) to the secret the services use");
}
const signer = createTokenSigner(secret, {
  ...(process.env.AUTH_ISSUER ? { issuer: process.env.AUTH_ISSUER } : {}),
  ...(process.env.AUTH_AUDIENCE ? { audience: process.env.AUTH_AUDIENCE } : {}),
});
try {
  console.log(await signer.signToken({ sub: values.sub, roles, ...claims, ttl }));
} catch (e) {
  fail(e instanceof Error ? e.message : String(e), 1);
}
