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

describe("projects across both services (separate processes)", () => {
  it("team project acme: a prompt by name, its evaluation in acme, invisible to project other; the purge cascades through the all-projects feed, a personal project's too", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    const evaluations = await startEvaluationService(dir, prompts.url);
    const promptApi = clients(prompts.url);
    const evalApi = clients(evaluations.url);
    const acmeEditor = await promptApi.as({ sub: "ada", projects: { acme: "editor" } });
    const acmeEditorEvals = (await evalApi.as({ sub: "ada", projects: { acme: "editor" } })).evaluations;
    const acmeViewerEvals = (await evalApi.as({ sub: "lin", projects: { acme: "viewer" } })).evaluations;
    const acmeAdmin = (await promptApi.as({ sub: "grace", projects: { acme: "admin" } })).prompts;
    const acmeApp = (await promptApi.as({ sub: "support-app", roles: ["service"], project: "acme" })).prompts;
    const acmeAppEvals = (await evalApi.as({ sub: "support-app", roles: ["service"], project: "acme" }))
      .evaluations;
    const otherEvals = (await evalApi.as({ sub: "mallory", projects: { other: "editor" } })).evaluations;
    const alicePrompts = await promptApi.prompts("alice");
    const alice = await evalApi.evaluations("alice");
    const admin = await evalApi.admin();

    // An editor of acme creates a prompt by name; the project's service principal reads it by name.
    const created = must(
      (
        await acmeEditor.prompts.createPrompt({
          project: "acme",
          name: "support-reply",
          title: "Support reply",
          content: "Answer the question about {{topic}} politely.",
        })
      ).prompt,
    );
    expect(created).toMatchObject({ project: "acme", name: "support-reply", ownerId: "ada", version: 1 });
    const byName = must((await acmeApp.getPrompt({ project: "acme", name: "support-reply" })).prompt);
    expect(byName.id).toBe(created.id);
    const keptPrompt = must(
      (await acmeEditor.prompts.createPrompt({ project: "acme", name: "kept", title: "Kept", content: "k" }))
        .prompt,
    );

    // Its evaluation lives in acme: created, run and completed by the editor, readable by another member.
    const evaluation = must(
      (
        await acmeEditorEvals.createEvaluation({
          project: "acme",
          promptId: created.id,
          provider: "openai",
          model: "gpt-4o",
        })
      ).evaluation,
    );
    expect(evaluation).toMatchObject({ project: "acme", promptId: created.id, promptVersion: 1 });
    await acmeEditorEvals.startEvaluation({ project: "acme", id: evaluation.id });
    await acmeEditorEvals.recordTestResults({
      project: "acme",
      evaluationId: evaluation.id,
      results: [0, 1, 2].map((i) => ({
        name: `case ${i}`,
        passed: i < 2,
        score: 0.5 + i / 10,
        latencyMs: 20n,
      })),
    });
    const done = must(
      (await acmeEditorEvals.completeEvaluation({ project: "acme", id: evaluation.id })).evaluation,
    );
    expect(done.status).toBe(EvaluationStatus.COMPLETED);
    expect(done.testCount).toBe(3);
    expect(
      (await acmeViewerEvals.getEvaluation({ project: "acme", id: evaluation.id })).evaluation?.status,
    ).toBe(EvaluationStatus.COMPLETED);
    const keptEvaluation = must(
      (
        await acmeEditorEvals.createEvaluation({
          project: "acme",
          promptId: keptPrompt.id,
          provider: "p",
          model: "m",
        })
      ).evaluation,
    );

    // A member of project other: the prompt is not in other, and acme is not its project (both NOT_FOUND);
    // acme's evaluation is invisible to it either way. The viewer may not create, the app not at all.
    await expectCode(
      otherEvals.createEvaluation({ project: "other", promptId: created.id, provider: "p", model: "m" }),
      Code.NotFound,
    );
    await expectCode(
      otherEvals.createEvaluation({ project: "acme", promptId: created.id, provider: "p", model: "m" }),
      Code.NotFound,
    );
    await expectCode(otherEvals.getEvaluation({ project: "acme", id: evaluation.id }), Code.NotFound);
    await expectCode(otherEvals.getEvaluation({ project: "other", id: evaluation.id }), Code.NotFound);
    expect((await otherEvals.listEvaluations({ project: "other" })).evaluations).toEqual([]);
    await expectCode(
      acmeViewerEvals.createEvaluation({ project: "acme", promptId: created.id, provider: "p", model: "m" }),
      Code.PermissionDenied,
    );
    await expectCode(
      acmeAppEvals.createEvaluation({ project: "acme", promptId: created.id, provider: "p", model: "m" }),
      Code.PermissionDenied,
    );

    // A personal project's prompt and evaluation, as before projects (no project field anywhere).
    const personal = must((await alicePrompts.createPrompt({ title: "Mine", content: "m" })).prompt);
    expect(personal.project).toBe("user:alice");
    const personalEvaluation = must(
      (await alice.createEvaluation({ promptId: personal.id, provider: "p", model: "m" })).evaluation,
    );
    expect(personalEvaluation.project).toBe("user:alice");

    // Purging in acme needs its admin role; evaluation-service removes the evaluations from the feed.
    await expectCode(
      acmeEditor.prompts.purgePrompt({ project: "acme", id: created.id }),
      Code.PermissionDenied,
    );
    await acmeAdmin.purgePrompt({ project: "acme", id: created.id });
    await pollUntil(
      async () =>
        (await acmeEditorEvals.listEvaluations({ project: "acme", promptId: created.id })).evaluations
          .length === 0,
      20_000,
      "acme's evaluations of the purged prompt gone",
    );
    await expectCode(acmeEditorEvals.getEvaluation({ project: "acme", id: evaluation.id }), Code.NotFound);
    await expectCode(
      acmeEditorEvals.listTestResults({ project: "acme", evaluationId: evaluation.id }),
      Code.NotFound,
    );
    expect(
      (await acmeEditorEvals.getEvaluation({ project: "acme", id: keptEvaluation.id })).evaluation?.id,
    ).toBe(keptEvaluation.id);

    // The personal project's purge (its owner may purge there) is applied too.
    await alicePrompts.purgePrompt({ id: personal.id });
    await pollUntil(
      async () => (await alice.listEvaluations({ promptId: personal.id })).evaluations.length === 0,
      20_000,
      "the personal project's evaluations of the purged prompt gone",
    );
    await expectCode(alice.getEvaluation({ id: personalEvaluation.id }), Code.NotFound);

    // One feed of every project: the consumer has applied all of it, one cascade per purged prompt.
    const feed = await (await promptApi.feed()).listPromptEvents({ pageSize: 1000 });
    expect(new Set(feed.events.map((e) => e.project))).toEqual(new Set(["acme", "user:alice"]));
    await pollUntil(async () => {
      const stats = await admin.getDatabaseStats({});
      return stats.consumers[0]?.lastAppliedSequence === feed.lastSequence;
    });
    for (const id of [created.id, personal.id]) {
      const audit = await admin.listAuditEvents({ resourceType: "prompt", resourceId: id });
      expect(audit.events.map((e) => e.action)).toEqual(["evaluation.purge_cascade"]);
    }
    const stats = await admin.getDatabaseStats({});
    expect(stats.objects.find((o) => o.name === "evaluations")?.rowCount).toBe(1n);
    expect((await admin.verifyAuditChain({})).ok).toBe(true);
  }, 90_000);
});
