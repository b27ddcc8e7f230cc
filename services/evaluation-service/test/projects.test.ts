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
 * Projects end to end, against the real prompt-service: an evaluation belongs to the evaluated prompt's project;
 * members of the project share it (viewers read, editors write), everybody else gets NOT_FOUND, and service
 * principals nothing at all (they read prompts and the feed only).
 */
async function acme() {
  const svc = await startServices();
  // carol administers acme's prompts; her evaluation-service token makes her an editor there
  const carolPrompts = await svc.promptsAs({ sub: "carol", projects: { acme: "admin" } });
  const carol = await svc.evaluationsAs({ sub: "carol", projects: { acme: "editor" } });
  const prompt = await createPrompt(carolPrompts, 2, "team-prompt", "acme");
  return { svc, carolPrompts, carol, prompt };
}

/** A RUNNING evaluation of `promptId` in acme with two results. */
async function runningIn(client: EvalClient, promptId: string) {
  const e = must(
    (await client.createEvaluation({ promptId, provider: "p", model: "m", project: "acme" })).evaluation,
  );
  await client.startEvaluation({ id: e.id, project: "acme" });
  await client.recordTestResults({ evaluationId: e.id, results: [result(1), result(2)], project: "acme" });
  return e.id;
}

describe("projects", () => {
  it("an evaluation is created in the prompt's team project, shared by its members", async () => {
    const { svc, carol, prompt } = await acme();
    expect(prompt.project).toBe("acme");
    const e = must(
      (await carol.createEvaluation({ promptId: prompt.id, provider: "p", model: "m", project: "acme" }))
        .evaluation,
    );
    expect(e).toMatchObject({
      project: "acme",
      ownerId: "carol",
      promptId: prompt.id,
      promptVersion: 2,
      status: EvaluationStatus.PENDING,
    });
    // another editor of acme runs it; a viewer reads it
    const dave = await svc.evaluationsAs({ sub: "dave", projects: { acme: "editor" } });
    const vic = await svc.evaluationsAs({ sub: "vic", projects: { acme: "viewer", globex: "admin" } });
    await dave.startEvaluation({ id: e.id, project: "acme" });
    await dave.recordTestResults({ evaluationId: e.id, results: [result(0), result(1)], project: "acme" });
    const done = must((await dave.completeEvaluation({ id: e.id, project: "acme" })).evaluation);
    expect(done).toMatchObject({ project: "acme", ownerId: "carol", status: EvaluationStatus.COMPLETED });
    expect((await vic.getEvaluation({ id: e.id, project: "acme" })).evaluation).toEqual(done);
    expect((await vic.listEvaluations({ project: "acme" })).evaluations.map((x) => x.id)).toEqual([e.id]);
    expect((await vic.listTestResults({ evaluationId: e.id, project: "acme" })).testResults).toHaveLength(2);
    expect((await vic.getEvaluationSummary({ id: e.id, project: "acme" })).summary?.testCount).toBe(2);
    expect(
      (await vic.comparePromptVersions({ promptId: prompt.id, project: "acme" })).versions.map((v) => [
        v.promptVersion,
        v.provider,
        v.model,
        v.evaluationCount,
      ]),
    ).toEqual([[2, "p", "m", 1]]);
    // it is acme's, not anybody's personal project's
    expect((await carol.listEvaluations({})).evaluations).toEqual([]);
    await expectCode(carol.getEvaluation({ id: e.id }), Code.NotFound);
    await expectCode(vic.getEvaluation({ id: e.id, project: "globex" }), Code.NotFound);
    // a personal prompt evaluated in acme, or acme's prompt in a personal project: the prompt is not found there
    const before = await tableCounts(svc.db);
    await expectCode(
      carol.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" }),
      Code.NotFound,
      /prompt .* not found/,
    );
    const own = await createPrompt(svc.alicePrompts);
    const aliceInAcme = await svc.evaluationsAs({
      sub: "alice",
      roles: ["user"],
      projects: { acme: "editor" },
    });
    await expectCode(
      aliceInAcme.createEvaluation({ promptId: own.id, provider: "p", model: "m", project: "acme" }),
      Code.NotFound,
      /prompt .* not found/,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
  });

  it("a member of another project gets NOT_FOUND: CreateEvaluation of the prompt, GetEvaluation and ListEvaluations of the evaluation", async () => {
    const { svc, carol, prompt } = await acme();
    const id = await runningIn(carol, prompt.id);
    const erin = await svc.evaluationsAs({ sub: "erin", projects: { globex: "admin" } });
    const before = await tableCounts(svc.db);
    const own = (await carol.getEvaluation({ id, project: "acme" })).evaluation;
    // naming acme: not a member, the project itself is not found
    await expectCode(
      erin.createEvaluation({ promptId: prompt.id, provider: "p", model: "m", project: "acme" }),
      Code.NotFound,
      /^project acme not found/,
    );
    await expectCode(erin.getEvaluation({ id, project: "acme" }), Code.NotFound, /^project acme not found/);
    await expectCode(erin.listEvaluations({ project: "acme" }), Code.NotFound, /^project acme not found/);
    // in its own project: neither the prompt nor the evaluation exists there
    await expectCode(
      erin.createEvaluation({ promptId: prompt.id, provider: "p", model: "m", project: "globex" }),
      Code.NotFound,
      /^prompt .* not found/,
    );
    await expectCode(
      erin.getEvaluation({ id, project: "globex" }),
      Code.NotFound,
      /^evaluation .* not found/,
    );
    expect((await erin.listEvaluations({ project: "globex" })).evaluations).toEqual([]);
    expect((await erin.listEvaluations({ project: "globex", promptId: prompt.id })).evaluations).toEqual([]);
    expect((await erin.comparePromptVersions({ promptId: prompt.id, project: "globex" })).versions).toEqual(
      [],
    );
    // and with a personal token (alice, no project claims): the same
    await expectCode(
      svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" }),
      Code.NotFound,
    );
    await expectCode(svc.alice.getEvaluation({ id }), Code.NotFound);
    await expectCode(
      svc.alice.getEvaluation({ id, project: "acme" }),
      Code.NotFound,
      /^project acme not found/,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
    expect((await carol.getEvaluation({ id, project: "acme" })).evaluation).toEqual(own);
  });

  it("a viewer of acme reads, and gets PERMISSION_DENIED on create / start / record / complete / fail; nothing changes", async () => {
    const { svc, carol, prompt } = await acme();
    const running = await runningIn(carol, prompt.id);
    const pending = must(
      (await carol.createEvaluation({ promptId: prompt.id, provider: "p", model: "m", project: "acme" }))
        .evaluation,
    ).id;
    const vic = await svc.evaluationsAs({ sub: "vic", projects: { acme: "viewer" } });
    const before = await tableCounts(svc.db);
    const rows = [
      (await vic.getEvaluation({ id: running, project: "acme" })).evaluation,
      (await vic.getEvaluation({ id: pending, project: "acme" })).evaluation,
    ];
    expect((await vic.listEvaluations({ project: "acme" })).evaluations).toHaveLength(2);
    expect((await vic.listTestResults({ evaluationId: running, project: "acme" })).testResults).toHaveLength(
      2,
    );
    expect((await vic.getEvaluationSummary({ id: running, project: "acme" })).summary?.testCount).toBe(2);
    expect((await vic.comparePromptVersions({ promptId: prompt.id, project: "acme" })).versions).toHaveLength(
      1,
    );
    const denied = /requires the editor role in project acme/;
    const project = "acme";
    await expectCode(
      vic.createEvaluation({ promptId: prompt.id, provider: "p", model: "m", project, requestId: "v-1" }),
      Code.PermissionDenied,
      denied,
    );
    await expectCode(vic.startEvaluation({ id: pending, project }), Code.PermissionDenied, denied);
    await expectCode(
      vic.recordTestResults({ evaluationId: running, results: [result(3)], project, requestId: "v-2" }),
      Code.PermissionDenied,
      denied,
    );
    await expectCode(vic.completeEvaluation({ id: running, project }), Code.PermissionDenied, denied);
    await expectCode(
      vic.failEvaluation({ id: running, reason: "no", project }),
      Code.PermissionDenied,
      denied,
    );
    await expectCode(
      vic.failEvaluation({ id: pending, reason: "no", project }),
      Code.PermissionDenied,
      denied,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
    expect((await carol.getEvaluation({ id: running, project })).evaluation).toEqual(rows[0]);
    expect((await carol.getEvaluation({ id: pending, project })).evaluation).toEqual(rows[1]);
  });

  it("a service principal of acme gets PERMISSION_DENIED on every method; nothing changes", async () => {
    const { svc, carol, prompt } = await acme();
    const id = await runningIn(carol, prompt.id);
    const bot = await svc.evaluationsAs({ sub: "ci-bot", roles: ["service"], project: "acme" });
    // it may read acme's prompts from prompt-service (that is what service principals are for) ...
    const botPrompts = await svc.promptsAs({ sub: "ci-bot", roles: ["service"], project: "acme" });
    expect((await botPrompts.getPrompt({ id: prompt.id, project: "acme" })).prompt?.id).toBe(prompt.id);
    // ... but nothing of evaluation-service, in its project or by default
    const before = await tableCounts(svc.db);
    for (const project of ["acme", ""]) {
      // one call at a time: calls started together reject while an earlier one is awaited (unhandled)
      for (const call of [
        () => bot.createEvaluation({ promptId: prompt.id, provider: "p", model: "m", project }),
        () => bot.startEvaluation({ id, project }),
        () => bot.recordTestResults({ evaluationId: id, results: [result(3)], project }),
        () => bot.completeEvaluation({ id, project }),
        () => bot.failEvaluation({ id, reason: "no", project }),
        () => bot.getEvaluation({ id, project }),
        () => bot.listEvaluations({ project }),
        () => bot.listTestResults({ evaluationId: id, project }),
        () => bot.getEvaluationSummary({ id, project }),
        () => bot.comparePromptVersions({ promptId: prompt.id, project }),
      ]) {
        await expectCode(call(), Code.PermissionDenied, /not open to service principals/);
      }
    }
    expect(await tableCounts(svc.db)).toEqual(before);
  });

  it("request_id is per caller and project: two members with the same key do not collide, and each retry replays", async () => {
    const { svc, carol, prompt } = await acme();
    const dave = await svc.evaluationsAs({ sub: "dave", projects: { acme: "editor" } });
    const req = { promptId: prompt.id, provider: "p", model: "m", project: "acme", requestId: "run-1" };
    const byCarol = must((await carol.createEvaluation(req)).evaluation);
    const byDave = must((await dave.createEvaluation(req)).evaluation);
    expect(byDave.id).not.toBe(byCarol.id);
    expect(byDave.ownerId).toBe("dave");
    expect((await carol.createEvaluation(req)).evaluation).toEqual(byCarol);
    expect((await dave.createEvaluation(req)).evaluation).toEqual(byDave);
    await expectCode(
      carol.createEvaluation({ ...req, model: "other" }),
      Code.AlreadyExists,
      /request_id run-1/,
    );
    // the same caller and key in its personal project is another request
    const own = await createPrompt(await svc.promptsAs({ sub: "carol" }), 1, "own");
    const personal = must(
      (await carol.createEvaluation({ ...req, promptId: own.id, project: "" })).evaluation,
    );
    expect(personal.project).toBe("user:carol");
    // RecordTestResults keys likewise
    await carol.startEvaluation({ id: byCarol.id, project: "acme" });
    const batch = { evaluationId: byCarol.id, results: [result(1)], project: "acme", requestId: "batch-1" };
    const first = await carol.recordTestResults(batch);
    expect(await dave.recordTestResults(batch)).not.toEqual(first); // dave's own key: recorded again
    expect(await carol.recordTestResults(batch)).toEqual(first);
    expect((await carol.getEvaluation({ id: byCarol.id, project: "acme" })).evaluation?.testCount).toBe(2);
    const counts = await tableCounts(svc.db);
    expect(counts.evaluations).toBe(3);
    expect(counts.idempotency_keys).toBe(5);
  });

  it("a page token is bound to its project", async () => {
    const { carol, prompt } = await acme();
    for (let i = 0; i < 3; i++) {
      await carol.createEvaluation({ promptId: prompt.id, provider: "p", model: `m${i}`, project: "acme" });
    }
    const page = await carol.listEvaluations({ project: "acme", pageSize: 2 });
    expect(page.nextPageToken).not.toBe("");
    await expectCode(
      carol.listEvaluations({ pageSize: 2, pageToken: page.nextPageToken }),
      Code.InvalidArgument,
      /^page_token/,
    );
    const rest = await carol.listEvaluations({ project: "acme", pageSize: 2, pageToken: page.nextPageToken });
    expect(rest.evaluations).toHaveLength(1);
  });

  it("a soft-deleted prompt of the team project answers FAILED_PRECONDITION, as in a personal one", async () => {
    const { svc, carolPrompts, carol, prompt } = await acme();
    await carolPrompts.deletePrompt({ id: prompt.id, project: "acme" });
    const before = await tableCounts(svc.db);
    await expectCode(
      carol.createEvaluation({ promptId: prompt.id, provider: "p", model: "m", project: "acme" }),
      Code.FailedPrecondition,
      /is deleted/,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
  });
});
