import { isDeepStrictEqual } from "node:util";
import { AdminService, MaintenanceTask } from "@autoforge/contracts/admin/v1";
import { PromptService, VariableType } from "@autoforge/contracts/prompt/v1";
import { createTokenSigner, type TokenClaims } from "@autoforge/server";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import {
  type CallOptions,
  ConnectError,
  createClient,
  type Interceptor,
  type Transport,
} from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  type AdminClient,
  Code,
  must,
  type PromptClient,
  type PromptServiceHarness,
  secret,
  startPromptService,
  tableCounts,
} from "./helpers.js";

/**
 * The project matrix: every RPC of PromptService and AdminService (as prompt-service serves them) called by
 * every kind of principal, over the gRPC port and the Connect port, against project `proj-a`. The expected
 * codes below are written out by hand from the tenancy rules (docs/projects.md), not computed from access.ts,
 * so a wrong access declaration shows up as a cell that differs.
 */

const projectA = "proj-a";
const projectB = "proj-b";

/** The columns. `anonymous` sends no token. */
const principals = {
  viewer: { sub: "a-viewer", roles: ["user"], projects: { [projectA]: "viewer" } },
  editor: { sub: "a-editor", roles: ["user"], projects: { [projectA]: "editor" } },
  publisher: { sub: "a-publisher", roles: ["user"], projects: { [projectA]: "publisher" } },
  admin: { sub: "a-admin", roles: ["user"], projects: { [projectA]: "admin" } },
  memberB: { sub: "b-admin", roles: ["user"], projects: { [projectB]: "admin" } },
  serviceA: { sub: "svc-a", roles: ["service"], project: projectA },
  serviceB: { sub: "svc-b", roles: ["service"], project: projectB },
  personal: { sub: "pat", roles: ["user"] },
  anonymous: undefined,
  // The operator of the database (AdminService); on PromptService it acts in its own personal project.
  operator: { sub: "root", roles: ["admin"] },
  // evaluation-service's all-projects feed principal.
  allProjects: { sub: "evaluation-service", roles: ["service"], projects: "*" },
} as const satisfies Record<string, TokenClaims | undefined>;

type PrincipalName = keyof typeof principals;
const principalNames = Object.keys(principals) as PrincipalName[];

/** Principals with no membership in proj-a: an OK from one of them on a project RPC is a cross-project leak. */
const nonMembers: readonly PrincipalName[] = ["memberB", "serviceB", "personal", "operator"];

/**
 * OK; NF = NOT_FOUND; PD = PERMISSION_DENIED; UA = UNAUTHENTICATED. Every PromptService request names
 * project proj-a. A row with a suffix in parentheses is a variant of the RPC (which label is moved): `gated` is
 * one of proj-a's gated labels, which only the promotion gate (evaluation-service's all-projects principal) moves
 * and nobody removes.
 */
const expectedTable = `
rpc                                          viewer editor publisher admin memberB serviceA serviceB personal anonymous operator allProjects
PromptService.CreatePrompt                   PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
PromptService.GetPrompt                      OK     OK     OK        OK    NF      OK       NF       NF       UA        NF       OK
PromptService.ListPrompts                    OK     OK     OK        OK    NF      OK       NF       NF       UA        NF       OK
PromptService.UpdatePrompt                   PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
PromptService.DeletePrompt                   PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
PromptService.RestorePrompt                  PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
PromptService.PurgePrompt                    PD     PD     PD        OK    NF      PD       NF       NF       UA        NF       PD
PromptService.ListPromptVersions             OK     OK     OK        OK    NF      OK       NF       NF       UA        NF       OK
PromptService.DiffPromptVersions             OK     OK     OK        OK    NF      OK       NF       NF       UA        NF       OK
PromptService.SetPromptLabel(staging)        PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
PromptService.SetPromptLabel(production)     PD     PD     OK        OK    NF      PD       NF       NF       UA        NF       PD
PromptService.SetPromptLabel(gated)          PD     PD     PD        PD    NF      PD       NF       NF       UA        NF       OK
PromptService.RemovePromptLabel(staging)     PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
PromptService.RemovePromptLabel(production)  PD     PD     OK        OK    NF      PD       NF       NF       UA        NF       PD
PromptService.RemovePromptLabel(gated)       PD     PD     PD        PD    NF      PD       NF       NF       UA        NF       PD
PromptService.ListPromptLabelHistory         OK     OK     OK        OK    NF      OK       NF       NF       UA        NF       OK
PromptService.RenderPrompt                   OK     OK     OK        OK    NF      OK       NF       NF       UA        NF       OK
PromptService.GetProjectSettings             OK     OK     OK        OK    NF      OK       NF       NF       UA        NF       OK
PromptService.UpdateProjectSettings          PD     PD     PD        OK    NF      PD       NF       NF       UA        NF       PD
PromptService.CreatePromptTemplate           PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
PromptService.GetPromptTemplate              OK     OK     OK        OK    NF      OK       NF       NF       UA        NF       OK
PromptService.ListPromptTemplates            OK     OK     OK        OK    NF      OK       NF       NF       UA        NF       OK
PromptService.RenderPromptTemplate           OK     OK     OK        OK    NF      OK       NF       NF       UA        NF       OK
PromptService.ListPromptEvents               PD     PD     PD        PD    NF      OK       NF       NF       UA        NF       OK
PromptService.WatchPromptEvents              PD     PD     PD        PD    NF      OK       NF       NF       UA        NF       OK
AdminService.ListAuditEvents                 PD     PD     PD        PD    PD      PD       PD       PD       UA        OK       PD
AdminService.VerifyAuditChain                PD     PD     PD        PD    PD      PD       PD       PD       UA        OK       PD
AdminService.RunMaintenance                  PD     PD     PD        PD    PD      PD       PD       PD       UA        OK       PD
AdminService.GetDatabaseStats                PD     PD     PD        PD    PD      PD       PD       PD       UA        OK       PD
`;

const outcomeTokens = ["OK", "NF", "PD", "UA"] as const;

function parseExpectedTable(table: string): Map<string, Record<PrincipalName, string>> {
  const [header, ...lines] = table
    .trim()
    .split("\n")
    .map((line) => line.trim().split(/\s+/));
  const columns = must(header, "table header").slice(1);
  if (!isDeepStrictEqual(columns, principalNames)) {
    throw new Error(`table columns ${columns.join(" ")} are not the principals ${principalNames.join(" ")}`);
  }
  const rows = new Map<string, Record<PrincipalName, string>>();
  for (const [key, ...cells] of lines) {
    const rowKey = must(key, "row key");
    if (cells.length !== columns.length) throw new Error(`table row ${rowKey}: ${cells.length} cells`);
    for (const cell of cells) {
      if (!(outcomeTokens as readonly string[]).includes(cell)) {
        throw new Error(`table row ${rowKey}: unknown outcome ${cell}`);
      }
    }
    if (rows.has(rowKey)) throw new Error(`table row ${rowKey} appears twice`);
    rows.set(
      rowKey,
      Object.fromEntries(principalNames.map((p, i) => [p, cells[i]])) as Record<PrincipalName, string>,
    );
  }
  return rows;
}

const expected = parseExpectedTable(expectedTable);

function outcomeOf(code: Code): string {
  switch (code) {
    case Code.NotFound:
      return "NF";
    case Code.PermissionDenied:
      return "PD";
    case Code.Unauthenticated:
      return "UA";
    default:
      return Code[code];
  }
}

/** What a cell's builder returns: the request, and the prompt it acts on (read back after a refusal). */
interface Built {
  readonly request: object;
  readonly target?: string;
}

/** The resources seeded once per run, and builders of fresh ones (as A's admin, over gRPC). */
interface Fixture {
  readonly promptId: string;
  readonly templateId: string;
  /** A new prompt of proj-a with versions 1 and 2, these labels, soft-deleted when asked: its id and etag. */
  freshPrompt(options?: {
    labels?: Record<string, number>;
    deleted?: boolean;
  }): Promise<{ id: string; etag: string }>;
  /** A new name each call (template names are unique in a project). */
  uniqueName(prefix: string): string;
}

interface Row {
  readonly key: string;
  readonly service: DescService;
  readonly method: DescMethod;
  build(f: Fixture): Promise<Built>;
}

type PromptRequest<K extends keyof PromptClient> = Parameters<PromptClient[K]>[0];
type AdminRequest<K extends keyof AdminClient> = Parameters<AdminClient[K]>[0];

function rowOf(
  service: DescService,
  localName: string,
  variant: string | undefined,
  build: Row["build"],
): Row {
  const method = service.methods.find((m) => m.localName === localName);
  if (method === undefined) throw new Error(`${service.typeName} has no method ${localName}`);
  const key = `${service.name}.${method.name}${variant === undefined ? "" : `(${variant})`}`;
  return { key, service, method, build };
}

function promptRow<K extends keyof PromptClient>(
  localName: K,
  build: (f: Fixture) => Promise<{ request: PromptRequest<K>; target?: string }>,
  variant?: string,
): Row {
  return rowOf(PromptService, localName, variant, build);
}

function adminRow<K extends keyof AdminClient>(localName: K, request: AdminRequest<K>): Row {
  return rowOf(AdminService, localName, undefined, async () => ({ request }));
}

const project = projectA;

/** The request builders: every RPC needs at least one (see "every RPC has a row"). */
const rows: readonly Row[] = [
  promptRow("createPrompt", async () => ({ request: { project, title: "cell", content: "made by a cell" } })),
  promptRow("getPrompt", async (f) => ({ request: { project, id: f.promptId, label: "staging" } })),
  promptRow("listPrompts", async () => ({ request: { project, includeDeleted: true } })),
  promptRow("updatePrompt", async (f) => {
    const { id, etag } = await f.freshPrompt();
    return {
      request: { project, id, etag, updateMask: { paths: ["title"] }, title: "renamed by a cell" },
      target: id,
    };
  }),
  promptRow("deletePrompt", async (f) => {
    const { id } = await f.freshPrompt();
    return { request: { project, id }, target: id };
  }),
  promptRow("restorePrompt", async (f) => {
    const { id } = await f.freshPrompt({ deleted: true });
    return { request: { project, id }, target: id };
  }),
  promptRow("purgePrompt", async (f) => {
    const { id } = await f.freshPrompt();
    return { request: { project, id }, target: id };
  }),
  promptRow("listPromptVersions", async (f) => ({ request: { project, promptId: f.promptId } })),
  promptRow("diffPromptVersions", async (f) => ({
    request: { project, id: f.promptId, fromVersion: 1, toVersion: 2 },
  })),
  ...["staging", "production", "gated"].map((label) =>
    promptRow(
      "setPromptLabel",
      async (f) => {
        const { id } = await f.freshPrompt({ labels: { [label]: 1 } });
        return { request: { project, id, label, version: 2, reason: "matrix" }, target: id };
      },
      label,
    ),
  ),
  ...["staging", "production", "gated"].map((label) =>
    promptRow(
      "removePromptLabel",
      async (f) => {
        const { id } = await f.freshPrompt({ labels: { [label]: 1 } });
        return { request: { project, id, label, reason: "matrix" }, target: id };
      },
      label,
    ),
  ),
  promptRow("listPromptLabelHistory", async (f) => ({ request: { project, promptId: f.promptId } })),
  promptRow("renderPrompt", async (f) => ({
    request: { project, id: f.promptId, version: 2, variables: { who: stringValue("cell") } },
  })),
  promptRow("getProjectSettings", async () => ({ request: { project } })),
  promptRow("updateProjectSettings", async () => ({
    // The default list, written out: a success changes the row (and update_time), not the rules.
    request: { project, updateMask: { paths: ["protected_labels"] }, protectedLabels: ["production"] },
  })),
  promptRow("createPromptTemplate", async (f) => ({
    request: { project, name: f.uniqueName("cell-template"), body: "made by a cell" },
  })),
  promptRow("getPromptTemplate", async (f) => ({ request: { project, id: f.templateId } })),
  promptRow("listPromptTemplates", async () => ({ request: { project } })),
  promptRow("renderPromptTemplate", async (f) => ({
    request: { project, id: f.templateId, variables: { who: stringValue("cell") } },
  })),
  promptRow("listPromptEvents", async () => ({ request: { project } })),
  promptRow("watchPromptEvents", async () => ({ request: { project } })),
  adminRow("listAuditEvents", {}),
  adminRow("verifyAuditChain", {}),
  adminRow("runMaintenance", { tasks: [MaintenanceTask.INTEGRITY_CHECK] }),
  adminRow("getDatabaseStats", {}),
];

function stringValue(value: string) {
  return { kind: { case: "stringValue" as const, value } };
}

function rowsFor(service: DescService, method: DescMethod): Row[] {
  const found = rows.filter((r) => r.service === service && r.method === method);
  if (found.length === 0) throw new Error(`no request builder for ${service.typeName}.${method.name}`);
  return found;
}

type Protocol = "grpc" | "connect";

interface Clients {
  readonly prompt: PromptClient;
  readonly admin: AdminClient;
}

const signer = createTokenSigner(secret);

async function clientsFor(
  svc: PromptServiceHarness,
  protocol: Protocol,
  sessionManager: Http2SessionManager,
  claims: TokenClaims | undefined,
): Promise<Clients> {
  const interceptors: Interceptor[] = [];
  if (claims !== undefined) {
    const token = await signer.signToken(claims);
    interceptors.push((next) => (req) => {
      req.header.set("authorization", `Bearer ${token}`);
      return next(req);
    });
  }
  const transport: Transport =
    protocol === "grpc"
      ? createGrpcTransport({ baseUrl: `http://127.0.0.1:${svc.grpcPort}`, sessionManager, interceptors })
      : createConnectTransport({
          baseUrl: `http://127.0.0.1:${svc.connectPort}`,
          httpVersion: "1.1",
          interceptors,
        });
  return { prompt: createClient(PromptService, transport), admin: createClient(AdminService, transport) };
}

interface Outcome {
  readonly outcome: string;
  readonly detail?: string;
}

/** Every `project` field anywhere in a response: an OK must only ever show proj-a. */
function projectsIn(value: unknown, out: Set<string> = new Set()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) projectsIn(v, out);
  } else if (typeof value === "object" && value !== null && !(value instanceof Uint8Array)) {
    for (const [k, v] of Object.entries(value)) {
      if (k === "project" && typeof v === "string") out.add(v);
      else projectsIn(v, out);
    }
  }
  return out;
}

type AnyMethod = (request: object, options: CallOptions) => unknown;

/** One call; unary calls time out after 10 s, a stream is read up to its first message then cancelled. */
async function invoke(client: object, method: DescMethod, request: object): Promise<Outcome> {
  const fn = (client as Record<string, AnyMethod>)[method.localName];
  if (fn === undefined) throw new Error(`the client has no method ${method.localName}`);
  let response: unknown;
  try {
    if (method.methodKind === "server_streaming") {
      const abort = new AbortController();
      const timer = setTimeout(() => abort.abort(), 10_000);
      try {
        for await (const message of fn(request, { signal: abort.signal }) as AsyncIterable<unknown>) {
          response = message;
          break;
        }
      } finally {
        clearTimeout(timer);
        abort.abort();
      }
      if (response === undefined)
        return { outcome: "NO_MESSAGE", detail: "the stream ended without an event" };
    } else {
      response = await fn(request, { timeoutMs: 10_000 });
    }
  } catch (e) {
    const err = ConnectError.from(e);
    return { outcome: outcomeOf(err.code), detail: err.rawMessage };
  }
  const foreign = [...projectsIn(response)].filter((p) => p !== projectA);
  if (foreign.length > 0)
    return { outcome: "LEAK", detail: `the response shows projects ${foreign.join(", ")}` };
  return { outcome: "OK" };
}

function shown(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

describe("project matrix", () => {
  it("every PromptService and AdminService RPC has a request builder and a row in the table", () => {
    const keys = new Set<string>();
    for (const service of [PromptService, AdminService]) {
      for (const method of service.methods) for (const row of rowsFor(service, method)) keys.add(row.key);
    }
    expect(rows.map((r) => r.key).sort()).toEqual([...keys].sort());
    expect([...expected.keys()].sort()).toEqual([...keys].sort());
  });

  it.each(["grpc", "connect"] as const)(
    "over %s: each cell answers the code of the table, and a refusal changes nothing",
    async (protocol) => {
      const svc = await startPromptService();
      const sessionManager = new Http2SessionManager(`http://127.0.0.1:${svc.grpcPort}`);
      onTestFinished(() => sessionManager.abort());

      // Seeding and read-back: A's admin (and B's, for a prompt in another project) over gRPC.
      const root = await svc.client("a-admin", ["user"], { projects: { [projectA]: "admin" } });
      const rootB = await svc.client("b-admin", ["user"], { projects: { [projectB]: "admin" } });
      // the promotion gate: it alone sets proj-a's gated label `gated` on the fresh prompts
      const gate = await svc.client("evaluation-service", ["service"], { projects: "*" });
      await root.updateProjectSettings({
        project,
        updateMask: { paths: ["gated_labels"] },
        gatedLabels: ["gated"],
      });
      await rootB.createPrompt({ project: projectB, title: "B's", content: "in B" });
      await rootB.createPromptTemplate({ project: projectB, name: "b-template", body: "in B" });

      let counter = 0;
      const freshPrompt: Fixture["freshPrompt"] = async (options = {}) => {
        counter += 1;
        let p = must(
          (await root.createPrompt({ project, title: `fresh ${counter}`, content: "one {{who}}" })).prompt,
        );
        p = must(
          (
            await root.updatePrompt({
              project,
              id: p.id,
              etag: p.etag,
              updateMask: { paths: ["content"] },
              content: "two {{who}}",
            })
          ).prompt,
        );
        for (const [label, version] of Object.entries(options.labels ?? {})) {
          await (label === "gated" ? gate : root).setPromptLabel({ project, id: p.id, label, version });
        }
        if (options.deleted === true) await root.deletePrompt({ project, id: p.id });
        return { id: p.id, etag: must((await root.getPrompt({ project, id: p.id })).prompt).etag };
      };
      const { id: promptId } = await freshPrompt({ labels: { staging: 1 } });
      const template = must(
        (
          await root.createPromptTemplate({
            project,
            name: "matrix-template",
            body: "Hello {{who}}",
            variables: [{ name: "who", type: VariableType.STRING, required: true }],
          })
        ).template,
      );
      const fixture: Fixture = {
        promptId,
        templateId: template.id,
        freshPrompt,
        uniqueName: (prefix) => {
          counter += 1;
          return `${prefix}-${counter}`;
        },
      };

      const clients = new Map<PrincipalName, Clients>();
      for (const name of principalNames) {
        clients.set(name, await clientsFor(svc, protocol, sessionManager, principals[name]));
      }

      /** What a refusal must leave as it was: every table's row count, the target prompt, the settings. */
      const snapshot = async (target: string | undefined) => ({
        counts: await tableCounts(svc.db),
        settings: (await root.getProjectSettings({ project })).settings,
        prompt:
          target === undefined
            ? undefined
            : await root.getPrompt({ project, id: target }).then(
                (r) => r.prompt,
                (e: unknown) => `error ${Code[ConnectError.from(e).code]}`,
              ),
      });

      const mismatches: string[] = [];
      const changed: string[] = [];
      let crossProjectSuccesses = 0;
      for (const service of [PromptService, AdminService]) {
        for (const method of service.methods) {
          for (const row of rowsFor(service, method)) {
            const want = must(expected.get(row.key), `expected row for ${row.key}`);
            for (const principal of principalNames) {
              const cell = `${row.key} as ${principal} over ${protocol}`;
              const { request, target } = await row.build(fixture);
              const refusal = want[principal] !== "OK";
              const before = refusal ? await snapshot(target) : undefined;
              const client = must(clients.get(principal));
              const got = await invoke(
                service === AdminService ? client.admin : client.prompt,
                method,
                request,
              );
              if (got.outcome !== want[principal]) {
                mismatches.push(
                  `${cell}: expected ${want[principal]}, got ${got.outcome} (${got.detail ?? ""})`,
                );
              }
              if (service === PromptService && nonMembers.includes(principal) && got.outcome === "OK") {
                crossProjectSuccesses += 1;
              }
              if (before !== undefined && got.outcome !== "OK") {
                const after = await snapshot(target);
                if (!isDeepStrictEqual(after, before)) {
                  changed.push(`${cell} (${got.outcome}) changed state: ${shown(before)} -> ${shown(after)}`);
                }
              }
            }
          }
        }
      }
      expect(mismatches, "cells whose code differs from the table").toEqual([]);
      expect(changed, "refused cells that changed something").toEqual([]);
      expect(crossProjectSuccesses, "successes of principals that are no member of proj-a").toBe(0);
    },
    60_000,
  );
});
