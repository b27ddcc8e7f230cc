import { EvaluationStatus } from "@autoforge/contracts/evaluation/v1";
import { describe, expect, it } from "vitest";
import {
  Code,
  createPrompt,
  type EvalClient,
  expectCode,
  must,
  result,
  startServices,
  tableCounts,
} from "./helpers.js";

/**
 * Another owner's evaluation answers NOT_FOUND on every RPC that names one (never PERMISSION_DENIED: existence
 * is not revealed), and changes nothing. Lists and comparisons simply do not contain it.
 */
const byId: [string, (c: EvalClient, id: string, promptId: string) => Promise<unknown>][] = [
  ["GetEvaluation", (c, id) => c.getEvaluation({ id })],
  ["StartEvaluation", (c, id) => c.startEvaluation({ id })],
  ["RecordTestResults", (c, id) => c.recordTestResults({ evaluationId: id, results: [result(1)] })],
  ["CompleteEvaluation", (c, id) => c.completeEvaluation({ id })],
  ["FailEvaluation", (c, id) => c.failEvaluation({ id, reason: "nope" })],
  ["ListTestResults", (c, id) => c.listTestResults({ evaluationId: id })],
  ["GetEvaluationSummary", (c, id) => c.getEvaluationSummary({ id })],
  // CreateEvaluation on another owner's prompt: prompt-service answers NOT_FOUND for the caller's token.
  ["CreateEvaluation", (c, _id, promptId) => c.createEvaluation({ promptId, provider: "p", model: "m" })],
];

describe("tenancy", () => {
  for (const status of [EvaluationStatus.PENDING, EvaluationStatus.RUNNING]) {
    for (const [rpc, call] of byId) {
      it(`${rpc} on another owner's ${EvaluationStatus[status]} evaluation answers NOT_FOUND and changes nothing`, async () => {
        const svc = await startServices();
        const prompt = await createPrompt(svc.alicePrompts);
        const e = must(
          (await svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" })).evaluation,
        );
        if (status === EvaluationStatus.RUNNING) {
          await svc.alice.startEvaluation({ id: e.id });
          await svc.alice.recordTestResults({ evaluationId: e.id, results: [result(2)] });
        }
        const before = await tableCounts(svc.db);
        const own = (await svc.alice.getEvaluation({ id: e.id })).evaluation;
        await expectCode(call(svc.bob, e.id, prompt.id), Code.NotFound);
        expect(await tableCounts(svc.db)).toEqual(before);
        expect((await svc.alice.getEvaluation({ id: e.id })).evaluation).toEqual(own);
      });
    }
  }

  it("lists and comparisons never show another owner's evaluations", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    await svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" });
    expect((await svc.bob.listEvaluations({})).evaluations).toEqual([]);
    expect((await svc.bob.listEvaluations({ promptId: prompt.id })).evaluations).toEqual([]);
    expect((await svc.bob.comparePromptVersions({ promptId: prompt.id })).versions).toEqual([]);
    expect((await svc.alice.listEvaluations({})).evaluations).toHaveLength(1);
  });

  it("calls without a valid token are UNAUTHENTICATED; AdminService needs the admin role", async () => {
    const svc = await startServices();
    await expectCode(svc.adminAsUser.getDatabaseStats({}), Code.PermissionDenied);
    const { createClient } = await import("@connectrpc/connect");
    const { createGrpcTransport } = await import("@connectrpc/connect-node");
    const { EvaluationService } = await import("@autoforge/contracts/evaluation/v1");
    const anonymous = createClient(
      EvaluationService,
      createGrpcTransport({ baseUrl: `http://127.0.0.1:${svc.grpcPort}` }),
    );
    await expectCode(anonymous.listEvaluations({}), Code.Unauthenticated);
  });
});
