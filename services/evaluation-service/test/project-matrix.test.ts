import { isDeepStrictEqual } from "node:util";
import { AdminService, MaintenanceTask } from "@autoforge/contracts/admin/v1";
import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import type { TokenClaims } from "@autoforge/server";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { type CallOptions, ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  type AdminClient,
  Code,
  clientFactory,
  createPrompt,
  type EvalClient,
  must,
  result,
  startServicesOnBothPorts,
  tableCounts,
} from "./helpers.js";

/**
 * The project matrix: every RPC of EvaluationService and AdminService (as evaluation-service serves them) called
 * by every kind of principal, over the gRPC port and the Connect port, against project `proj-a`, with a real
 * prompt-service behind. The expected codes below are written out by hand from the tenancy rules
 * (docs/projects.md), not computed from access.ts, so a wrong access declaration shows up as a cell that differs.
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
  // The operator of the database (AdminService); on EvaluationService it acts in its own personal project.
  operator: { sub: "root", roles: ["admin"] },
  // evaluation-service's own all-projects feed principal (its SERVICE_TOKEN), calling evaluation-service.
  allProjects: { sub: "evaluation-service", roles: ["service"], projects: "*" },
} as const satisfies Record<string, TokenClaims | undefined>;

type PrincipalName = keyof typeof principals;
const principalNames = Object.keys(principals) as PrincipalName[];

/** Principals with no membership in proj-a: an OK from one of them on a project RPC is a cross-project leak. */
const nonMembers: readonly PrincipalName[] = ["memberB", "serviceB", "personal", "operator"];

/**
 * OK; NF = NOT_FOUND; PD = PERMISSION_DENIED; UA = UNAUTHENTICATED. Every EvaluationService request names
 * project proj-a and an evaluation or prompt of proj-a.
 *
 * evaluation-service admits no service principals: serviceA and allProjects are PD on every EvaluationService
 * RPC, although prompt-service would let both read proj-a's prompts.
 *
 * CreateEvaluation passes two gates. evaluation-service resolves the project first (editor needed in proj-a),
 * so viewer and the service principals are PD, non-members NF and anonymous UA without prompt-service ever
 * being asked. editor / publisher / admin then reach GetPrompt, which evaluation-service sends to
 * prompt-service with the caller's own token and `project: "proj-a"`: the same claims make them editor+ there,
 * and GetPrompt needs viewer, so the prompt is found and the evaluation is created: OK. (Had prompt-service
 * refused, its NOT_FOUND would come back as NOT_FOUND and its PERMISSION_DENIED / UNAUTHENTICATED as they
 * are: a non-member would be NF at both gates either way.)
 */
const expectedTable = `
rpc                                      viewer editor publisher admin memberB serviceA serviceB personal anonymous operator allProjects
EvaluationService.CreateEvaluation       PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.GetEvaluation          OK     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.ListEvaluations        OK     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.StartEvaluation        PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.RecordTestResults      PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.StreamTestResults      PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.CompleteEvaluation     PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.FailEvaluation         PD     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.ListTestResults        OK     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.ExportTestResults      OK     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.GetEvaluationSummary   OK     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.ListItemStats          OK     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.ComparePromptVersions  OK     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
EvaluationService.CompareEvaluations     OK     OK     OK        OK    NF      PD       NF       NF       UA        NF       PD
AdminService.ListAuditEvents             PD     PD     PD        PD    PD      PD       PD       PD       UA        OK       PD
AdminService.VerifyAuditChain            PD     PD     PD        PD    PD      PD       PD       PD       UA        OK       PD
AdminService.RunMaintenance              PD     PD     PD        PD    PD      PD       PD       PD       UA        OK       PD
AdminService.GetDatabaseStats            PD     PD     PD        PD    PD      PD       PD       PD       UA        OK       PD
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

/** What a cell's builder returns: the request, and the evaluation it acts on (read back after a refusal). */
interface Built {
  readonly request: object;
  readonly target?: string;
}

/** The resources seeded once per run (as A's admin), and a builder of fresh evaluations for the writes. */
interface Fixture {
  readonly promptId: string;
  /** COMPLETED, with two test results: the reads' target. */
  readonly completedId: string;
  /** Two COMPLETED experiments over the same dataset version: CompareEvaluations' baseline and candidate. */
  readonly experimentIds: readonly [string, string];
  /** A new evaluation of the prompt in proj-a: PENDING, or RUNNING with `results` test results. */
  freshEvaluation(state: "pending" | "running", results?: number): Promise<string>;
}

interface Row {
  readonly key: string;
  readonly service: DescService;
  readonly method: DescMethod;
  build(f: Fixture): Promise<Built>;
}

/** A client stream's request is given as its one message (invoke sends it as the stream). */
type EvalRequest<K extends keyof EvalClient> =
  Parameters<EvalClient[K]>[0] extends AsyncIterable<infer M extends object>
    ? M
    : Parameters<EvalClient[K]>[0];
type AdminRequest<K extends keyof AdminClient> = Parameters<AdminClient[K]>[0];

function rowOf(service: DescService, localName: string, build: Row["build"]): Row {
  const method = service.methods.find((m) => m.localName === localName);
  if (method === undefined) throw new Error(`${service.typeName} has no method ${localName}`);
  return { key: `${service.name}.${method.name}`, service, method, build };
}

function evalRow<K extends keyof EvalClient>(
  localName: K,
  build: (f: Fixture) => Promise<{ request: EvalRequest<K>; target?: string }>,
): Row {
  return rowOf(EvaluationService, localName, build);
}

function adminRow<K extends keyof AdminClient>(localName: K, request: AdminRequest<K>): Row {
  return rowOf(AdminService, localName, async () => ({ request }));
}

const project = projectA;

/** The request builders: every RPC needs one (see "every RPC has a row"). Writes get a fresh evaluation each. */
const rows: readonly Row[] = [
  evalRow("createEvaluation", async (f) => ({
    request: { project, promptId: f.promptId, provider: "p", model: "cell" },
  })),
  evalRow("getEvaluation", async (f) => ({ request: { project, id: f.completedId } })),
  evalRow("listEvaluations", async () => ({ request: { project } })),
  evalRow("startEvaluation", async (f) => {
    const id = await f.freshEvaluation("pending");
    return { request: { project, id }, target: id };
  }),
  evalRow("recordTestResults", async (f) => {
    const id = await f.freshEvaluation("running");
    return { request: { project, evaluationId: id, results: [result(1), result(2)] }, target: id };
  }),
  evalRow("completeEvaluation", async (f) => {
    const id = await f.freshEvaluation("running", 1);
    return { request: { project, id }, target: id };
  }),
  evalRow("failEvaluation", async (f) => {
    const id = await f.freshEvaluation("running");
    return { request: { project, id, reason: "failed by a cell" }, target: id };
  }),
  evalRow("streamTestResults", async (f) => {
    const id = await f.freshEvaluation("running");
    return {
      request: { project, evaluationId: id, requestId: `cell-${id}`, chunkIndex: 0, results: [result(1)] },
      target: id,
    };
  }),
  evalRow("listTestResults", async (f) => ({ request: { project, evaluationId: f.completedId } })),
  evalRow("exportTestResults", async (f) => ({ request: { project, evaluationId: f.completedId } })),
  evalRow("listItemStats", async (f) => ({ request: { project, evaluationId: f.completedId } })),
  evalRow("getEvaluationSummary", async (f) => ({ request: { project, id: f.completedId } })),
  evalRow("comparePromptVersions", async (f) => ({ request: { project, promptId: f.promptId } })),
  evalRow("compareEvaluations", async (f) => ({
    request: { project, baselineId: f.experimentIds[0], candidateId: f.experimentIds[1] },
  })),
  adminRow("listAuditEvents", {}),
  adminRow("verifyAuditChain", {}),
  adminRow("runMaintenance", { tasks: [MaintenanceTask.INTEGRITY_CHECK] }),
  adminRow("getDatabaseStats", {}),
];

function rowsFor(service: DescService, method: DescMethod): Row[] {
  const found = rows.filter((r) => r.service === service && r.method === method);
  if (found.length === 0) throw new Error(`no request builder for ${service.typeName}.${method.name}`);
  return found;
}

interface Outcome {
  readonly outcome: string;
  readonly detail?: string;
  /** For an OK: whether the response shows proj-a anywhere (so the scan below has something to look at). */
  readonly showsProjectA?: boolean;
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

type AnyMethod = (request: object, options: CallOptions) => Promise<unknown>;

/**
 * One call, timing out after 10 s: unary as is, a client stream of the one request message, a server stream read
 * to its end (its messages are the response scanned for projects).
 */
async function invoke(client: object, method: DescMethod, request: object): Promise<Outcome> {
  if (method.methodKind === "bidi_streaming") throw new Error(`${method.name} is bidi: add stream support`);
  const fn = (client as Record<string, AnyMethod>)[method.localName];
  if (fn === undefined) throw new Error(`the client has no method ${method.localName}`);
  let response: unknown;
  try {
    if (method.methodKind === "server_streaming") {
      const messages: unknown[] = [];
      const stream = fn(request, { timeoutMs: 10_000 }) as unknown as AsyncIterable<unknown>;
      for await (const m of stream) messages.push(m);
      response = messages;
    } else if (method.methodKind === "client_streaming") {
      response = await fn(
        (async function* () {
          yield request;
        })(),
        { timeoutMs: 10_000 },
      );
    } else {
      response = await fn(request, { timeoutMs: 10_000 });
    }
  } catch (e) {
    const err = ConnectError.from(e);
    return { outcome: outcomeOf(err.code), detail: err.rawMessage };
  }
  const shownProjects = projectsIn(response);
  const foreign = [...shownProjects].filter((p) => p !== projectA);
  if (foreign.length > 0)
    return { outcome: "LEAK", detail: `the response shows projects ${foreign.join(", ")}` };
  return { outcome: "OK", showsProjectA: shownProjects.has(projectA) };
}

function shown(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
}

describe("project matrix", () => {
  it("every EvaluationService and AdminService RPC has a request builder and a row in the table", () => {
    const keys = new Set<string>();
    for (const service of [EvaluationService, AdminService]) {
      for (const method of service.methods) for (const row of rowsFor(service, method)) keys.add(row.key);
    }
    expect(rows.map((r) => r.key).sort()).toEqual([...keys].sort());
    expect([...expected.keys()].sort()).toEqual([...keys].sort());
  });

  it.each(["grpc", "connect"] as const)(
    "over %s: each cell answers the code of the table, and a refusal changes nothing",
    async (protocol) => {
      const svc = await startServicesOnBothPorts();

      // Seeding and read-back: A's admin over gRPC, in prompt-service and in evaluation-service.
      const rootPrompts = await svc.promptsAs(principals.admin);
      const root = (await svc.clientsFor("grpc", principals.admin)).evaluations;
      const prompt = await createPrompt(rootPrompts, 2, "matrix-prompt", projectA);

      // B has a prompt and an evaluation too, so that a leak into proj-a's answers would be visible.
      const rootBPrompts = await svc.promptsAs(principals.memberB);
      const rootB = (await svc.clientsFor("grpc", principals.memberB)).evaluations;
      const promptB = await createPrompt(rootBPrompts, 1, "b-prompt", projectB);
      await rootB.createEvaluation({ project: projectB, promptId: promptB.id, provider: "p", model: "b" });

      let counter = 0;
      const freshEvaluation: Fixture["freshEvaluation"] = async (state, results = 0) => {
        counter += 1;
        const e = must(
          (
            await root.createEvaluation({
              project,
              promptId: prompt.id,
              promptVersion: 1 + (counter % 2),
              provider: "p",
              model: `fresh ${counter}`,
            })
          ).evaluation,
        );
        if (state === "running") {
          await root.startEvaluation({ project, id: e.id });
          if (results > 0) {
            await root.recordTestResults({
              project,
              evaluationId: e.id,
              results: Array.from({ length: results }, (_, i) => result(i)),
            });
          }
        }
        return e.id;
      };
      const completedId = await freshEvaluation("running", 2);
      await root.completeEvaluation({ project, id: completedId });
      // Two experiments of proj-a over one dataset version (CompareEvaluations pairs their items).
      const rootDatasets = await clientFactory(`http://127.0.0.1:${svc.grpcPort}`).datasetsAs(
        principals.admin,
      );
      const dataset = must((await rootDatasets.createDataset({ project, name: "matrix-dataset" })).dataset);
      const itemIds = ["item-1", "item-2", "item-3"];
      await rootDatasets.createDatasetVersion({
        project,
        datasetId: dataset.id,
        items: itemIds.map((itemId) => ({ itemId, input: { case: "textInput", value: itemId } })),
      });
      const experiment = async (model: string) => {
        const e = must(
          (
            await root.createEvaluation({
              project,
              promptId: prompt.id,
              provider: "p",
              model,
              datasetId: dataset.id,
              datasetVersion: 1,
            })
          ).evaluation,
        );
        await root.startEvaluation({ project, id: e.id });
        await root.recordTestResults({
          project,
          evaluationId: e.id,
          results: itemIds.map((datasetItemId, i) => result(i, { datasetItemId, trial: 1 })),
        });
        await root.completeEvaluation({ project, id: e.id });
        return e.id;
      };
      const experimentIds = [await experiment("baseline"), await experiment("candidate")] as const;
      const fixture: Fixture = { promptId: prompt.id, completedId, experimentIds, freshEvaluation };

      const clients = new Map<PrincipalName, { evaluations: EvalClient; admin: AdminClient }>();
      for (const name of principalNames) clients.set(name, await svc.clientsFor(protocol, principals[name]));

      /** What a refusal must leave as it was: every table's row count, and the target evaluation (as A's admin). */
      const snapshot = async (target: string | undefined) => ({
        counts: await tableCounts(svc.db),
        evaluation:
          target === undefined
            ? undefined
            : await root.getEvaluation({ project, id: target }).then(
                (r) => r.evaluation,
                (e: unknown) => `error ${Code[ConnectError.from(e).code]}`,
              ),
      });

      const mismatches: string[] = [];
      const changed: string[] = [];
      let crossProjectSuccesses = 0;
      let responsesShowingProjectA = 0;
      for (const service of [EvaluationService, AdminService]) {
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
                service === AdminService ? client.admin : client.evaluations,
                method,
                request,
              );
              if (got.outcome !== want[principal]) {
                mismatches.push(
                  `${cell}: expected ${want[principal]}, got ${got.outcome} (${got.detail ?? ""})`,
                );
              }
              if (got.showsProjectA === true) responsesShowingProjectA += 1;
              if (service === EvaluationService && nonMembers.includes(principal) && got.outcome === "OK") {
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
      // The leak scan saw the project field: every OK that returns an evaluation shows it. Get and List for
      // the 4 members, Create, Start, Record, Stream, Complete and Fail for the 3 editors+: 2 x 4 + 6 x 3.
      expect(responsesShowingProjectA, "OK responses showing proj-a").toBe(26);
    },
    30_000,
  );
});
