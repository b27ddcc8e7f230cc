import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { DatasetService } from "@autoforge/contracts/evaluation/v1/datasets";
import { describeAccess } from "@autoforge/server";
import { uuidv7 } from "uuidv7";
import { describe, expect, it } from "vitest";
import { documentedAccess } from "../../../test/support/documented-access.js";
import { evaluationAccess } from "../src/access.js";
import { datasetAccess } from "../src/dataset-access.js";
import {
  Code,
  type EvalClient,
  expectCode,
  must,
  openTestDatabase,
  result,
  startEvaluationService,
  stubPromptClient,
  tableCounts,
} from "./helpers.js";

const writes = [
  "createEvaluation",
  "startEvaluation",
  "recordTestResults",
  "completeEvaluation",
  "failEvaluation",
] as const;
const reads = [
  "getEvaluation",
  "listEvaluations",
  "listTestResults",
  "getEvaluationSummary",
  "comparePromptVersions",
] as const;

describe("the access table (src/access.ts)", () => {
  it("docs/projects.md lists the same role for every EvaluationService method", () => {
    const documented = documentedAccess();
    for (const method of EvaluationService.methods) {
      const needs = evaluationAccess.methods[method.localName as keyof typeof evaluationAccess.methods];
      expect(
        documented.get(`EvaluationService.${method.name}`),
        `docs/projects.md: EvaluationService.${method.name}`,
      ).toBe(describeAccess(needs));
    }
    expect([...documented.keys()].filter((k) => k.startsWith("EvaluationService.")).length).toBe(
      EvaluationService.methods.length,
    );
  });

  it("declares every EvaluationService method, and nothing else", () => {
    expect(Object.keys(evaluationAccess.methods).sort()).toEqual(
      EvaluationService.methods.map((m) => m.localName).sort(),
    );
    expect("default" in evaluationAccess).toBe(false);
  });

  it("writes need editor, reads viewer; no method admits service principals", () => {
    for (const name of writes) {
      expect(evaluationAccess.methods[name], name).toEqual({
        kind: "project",
        role: "editor",
        service: false,
        personal: undefined,
      });
    }
    for (const name of reads) {
      expect(evaluationAccess.methods[name], name).toEqual({
        kind: "project",
        role: "viewer",
        service: false,
        personal: undefined,
      });
    }
  });
});

/**
 * The chain applies the table before any handler (so before any prompt-service call): these run against a stub
 * PromptService client. test/projects.test.ts covers the same rules end to end with the real prompt-service.
 */
describe("access in the chain", () => {
  const promptId = uuidv7();
  /** Every method, called in `project` on evaluation `id`. */
  const calls = (c: EvalClient, project: string, id: string) => ({
    createEvaluation: () => c.createEvaluation({ promptId, provider: "p", model: "m", project }),
    startEvaluation: () => c.startEvaluation({ id, project }),
    recordTestResults: () => c.recordTestResults({ evaluationId: id, results: [result(1)], project }),
    completeEvaluation: () => c.completeEvaluation({ id, project }),
    failEvaluation: () => c.failEvaluation({ id, reason: "r", project }),
    getEvaluation: () => c.getEvaluation({ id, project }),
    listEvaluations: () => c.listEvaluations({ project }),
    listTestResults: () => c.listTestResults({ evaluationId: id, project }),
    getEvaluationSummary: () => c.getEvaluationSummary({ id, project }),
    comparePromptVersions: () => c.comparePromptVersions({ promptId, project }),
  });

  async function setup() {
    const { db } = await openTestDatabase();
    const svc = await startEvaluationService(
      db,
      stubPromptClient(new Map([[promptId, { project: "acme" }]])),
    );
    const editor = await svc.clients.evaluationsAs({ sub: "carol", projects: { acme: "editor" } });
    const e = must(
      (await editor.createEvaluation({ promptId, provider: "p", model: "m", project: "acme" })).evaluation,
    );
    await editor.startEvaluation({ id: e.id, project: "acme" });
    await editor.recordTestResults({ evaluationId: e.id, results: [result(2)], project: "acme" });
    return { db, svc, editor, id: e.id };
  }

  it("a viewer of the project reads, and every write is PERMISSION_DENIED, changing nothing", async () => {
    const { db, svc, id } = await setup();
    const viewer = await svc.clients.evaluationsAs({ sub: "vic", projects: { acme: "viewer" } });
    const before = await tableCounts(db);
    const call = calls(viewer, "acme", id);
    for (const name of writes) {
      await expectCode(call[name](), Code.PermissionDenied, /requires the editor role in project acme/);
    }
    for (const name of reads) await call[name]();
    expect(await tableCounts(db)).toEqual(before);
  });

  it("service principals are refused every method (PERMISSION_DENIED), in their project and a personal one", async () => {
    const { db, svc, id } = await setup();
    const bots = [
      await svc.clients.evaluationsAs({ sub: "ci-bot", roles: ["service"], project: "acme" }),
      // a token of before projects with the `service` role acts in its personal project, as a service principal
      await svc.clients.evaluationsAs({ sub: "legacy-bot", roles: ["service"] }),
    ];
    const before = await tableCounts(db);
    for (const [i, bot] of bots.entries()) {
      const call = calls(bot, i === 0 ? "acme" : "", id);
      for (const name of [...writes, ...reads]) {
        await expectCode(call[name](), Code.PermissionDenied, /not open to service principals/);
      }
    }
    expect(await tableCounts(db)).toEqual(before);
  });

  it("a project the caller is no member of is NOT_FOUND on every method, whatever its role elsewhere", async () => {
    const { db, svc, id } = await setup();
    const outsider = await svc.clients.evaluationsAs({ sub: "erin", projects: { globex: "admin" } });
    const before = await tableCounts(db);
    for (const project of ["acme", "user:carol"]) {
      const call = calls(outsider, project, id);
      for (const name of [...writes, ...reads]) {
        await expectCode(call[name](), Code.NotFound, new RegExp(`^project ${project} not found`));
      }
    }
    // in a project of its own, the evaluation simply does not exist
    const own = calls(outsider, "globex", id);
    for (const name of [
      "startEvaluation",
      "recordTestResults",
      "completeEvaluation",
      "failEvaluation",
      "getEvaluation",
      "listTestResults",
      "getEvaluationSummary",
    ] as const) {
      await expectCode(own[name](), Code.NotFound, /^evaluation .* not found/);
    }
    await expectCode(own.createEvaluation(), Code.NotFound, /^prompt .* not found/);
    expect((await own.listEvaluations()).evaluations).toEqual([]);
    expect((await own.comparePromptVersions()).versions).toEqual([]);
    expect(await tableCounts(db)).toEqual(before);
  });
});

describe("the DatasetService access table (src/dataset-access.ts)", () => {
  it("docs/projects.md lists the same role for every DatasetService method, and every method is declared", () => {
    const documented = documentedAccess();
    for (const method of DatasetService.methods) {
      const needs = datasetAccess.methods[method.localName as keyof typeof datasetAccess.methods];
      expect(documented.get(`DatasetService.${method.name}`), `DatasetService.${method.name}`).toBe(
        describeAccess(needs),
      );
    }
    expect(Object.keys(datasetAccess.methods).sort()).toEqual(
      DatasetService.methods.map((m) => m.localName).sort(),
    );
    expect("default" in datasetAccess).toBe(false);
  });
});
