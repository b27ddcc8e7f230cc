import { EvaluationStatus } from "@autoforge/contracts/evaluation/v1";
import { describe, expect, it } from "vitest";
import {
  Code,
  clients,
  expectCode,
  must,
  pollUntil,
  startEvaluationService,
  startPromptService,
  tempDir,
} from "./harness.js";

describe("prompt-service + evaluation-service as separate processes", () => {
  it("create prompt -> new version -> evaluations -> results -> complete -> summary -> compare -> purge -> all gone", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    const evaluations = await startEvaluationService(dir, prompts.url);
    const promptApi = clients(prompts.url);
    const evalApi = clients(evaluations.url);
    const alicePrompts = await promptApi.prompts("alice");
    const alice = await evalApi.evaluations("alice");
    const bob = await evalApi.evaluations("bob");
    const admin = await evalApi.admin();

    const v1 = must(
      (await alicePrompts.createPrompt({ title: "Summarise", content: "Summarise: {{text}}" })).prompt,
    );
    const v2 = must(
      (
        await alicePrompts.updatePrompt({
          id: v1.id,
          etag: v1.etag,
          updateMask: { paths: ["content"] },
          content: "Summarise briefly: {{text}}",
        })
      ).prompt,
    );
    expect(v2.currentVersion).toBe(2);
    const other = must((await alicePrompts.createPrompt({ title: "Other", content: "x" })).prompt);

    // Evaluate both versions: scores 0.4 (v1) and 0.9 (v2).
    const evaluationIds: string[] = [];
    for (const [version, score] of [
      [1, 0.4],
      [0, 0.9],
    ] as const) {
      const e = must(
        (
          await alice.createEvaluation({
            promptId: v1.id,
            promptVersion: version,
            provider: "openai",
            model: "gpt-4o",
          })
        ).evaluation,
      );
      expect(e.promptVersion).toBe(version === 0 ? 2 : 1);
      await alice.startEvaluation({ id: e.id });
      const recorded = await alice.recordTestResults({
        evaluationId: e.id,
        results: Array.from({ length: 10 }, (_, i) => ({
          name: `case ${i}`,
          input: `text ${i}`,
          expectedOutput: "ok",
          actualOutput: "ok",
          passed: i < 8,
          score,
          latencyMs: BigInt(100 + i * 10),
        })),
      });
      expect(recorded.evaluation?.testCount).toBe(10);
      const done = must((await alice.completeEvaluation({ id: e.id })).evaluation);
      expect(done.status).toBe(EvaluationStatus.COMPLETED);
      expect(done.overallScore).toBeCloseTo(score, 12);
      evaluationIds.push(e.id);
    }
    const kept = must(
      (await alice.createEvaluation({ promptId: other.id, provider: "p", model: "m" })).evaluation,
    );

    const { summary } = await alice.getEvaluationSummary({ id: must(evaluationIds[1]) });
    expect(summary).toMatchObject({
      testCount: 10,
      passedCount: 8,
      passRate: 0.8,
      latencyP50Ms: 140n,
      latencyP95Ms: 190n,
      latencyMaxMs: 190n,
    });
    expect(summary?.meanScore).toBeCloseTo(0.9, 12);

    const compared = await alice.comparePromptVersions({ promptId: v1.id });
    expect(
      compared.versions.map((v) => [v.promptVersion, v.evaluationCount, v.completedCount, v.passRate]),
    ).toEqual([
      [1, 1, 1, 0.8],
      [2, 1, 1, 0.8],
    ]);
    expect(compared.versions[0]?.meanOverallScore).toBeCloseTo(0.4, 12);
    expect(compared.versions[1]?.meanOverallScore).toBeCloseTo(0.9, 12);
    await expectCode(bob.getEvaluation({ id: must(evaluationIds[0]) }), Code.NotFound);

    // Purge in prompt-service; evaluation-service removes the evaluations through the event feed.
    await alicePrompts.purgePrompt({ id: v1.id });
    await pollUntil(
      async () => (await alice.listEvaluations({ promptId: v1.id })).evaluations.length === 0,
      20_000,
      "evaluations of the purged prompt gone",
    );
    for (const id of evaluationIds) {
      await expectCode(alice.getEvaluation({ id }), Code.NotFound);
      await expectCode(alice.listTestResults({ evaluationId: id }), Code.NotFound);
    }
    expect((await alice.getEvaluation({ id: kept.id })).evaluation?.status).toBe(EvaluationStatus.PENDING);
    expect((await alice.comparePromptVersions({ promptId: v1.id })).versions).toEqual([]);
    await expectCode(alice.createEvaluation({ promptId: v1.id, provider: "p", model: "m" }), Code.NotFound);

    const feed = await (await promptApi.feed()).listPromptEvents({
      pageSize: 1000,
    });
    await pollUntil(async () => {
      const stats = await admin.getDatabaseStats({});
      return stats.consumers[0]?.lastAppliedSequence === feed.lastSequence;
    });
    const stats = await admin.getDatabaseStats({});
    expect(stats.consumers[0]).toMatchObject({ name: "prompt-events", lag: 0n });
    expect(stats.objects.find((o) => o.name === "test_results")?.rowCount).toBe(0n);
    expect(stats.objects.find((o) => o.name === "evaluations")?.rowCount).toBe(1n);
    const purgeAudit = await admin.listAuditEvents({ resourceType: "prompt", resourceId: v1.id });
    expect(purgeAudit.events.map((e) => e.action)).toEqual(["evaluation.purge_cascade"]);
    expect((await admin.verifyAuditChain({})).ok).toBe(true);
  }, 90_000);
});
