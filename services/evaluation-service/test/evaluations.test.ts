import { EvaluationStatus } from "@autoforge/contracts/evaluation/v1";
import { uuidv7 } from "uuidv7";
import { describe, expect, it } from "vitest";
import { Code, createPrompt, expectCode, must, result, startServices, tableCounts } from "./helpers.js";

describe("CreateEvaluation", () => {
  it("creates a PENDING evaluation of the prompt's current version (0) or of a given version", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts, 3);
    const current = must(
      (
        await svc.alice.createEvaluation({
          promptId: prompt.id,
          provider: "openai",
          model: "gpt-4o",
          metadata: { run: 1 },
        })
      ).evaluation,
    );
    expect(current).toMatchObject({
      // a token without project claims acts in its personal project
      project: "user:alice",
      ownerId: "alice",
      promptId: prompt.id,
      promptVersion: 3,
      provider: "openai",
      model: "gpt-4o",
      status: EvaluationStatus.PENDING,
      error: "",
      testCount: 0,
      passedCount: 0,
      metadata: { run: 1 },
    });
    expect(current.overallScore).toBeUndefined();
    expect(current.startTime).toBeUndefined();
    expect(current.createTime).toBeDefined();
    const v1 = must(
      (
        await svc.alice.createEvaluation({
          promptId: prompt.id,
          promptVersion: 1,
          provider: "anthropic",
          model: "claude",
        })
      ).evaluation,
    );
    expect(v1.promptVersion).toBe(1);
    expect((await svc.alice.getEvaluation({ id: v1.id })).evaluation).toEqual(v1);
  });

  it("answers NOT_FOUND for an unknown prompt, an unknown version and another owner's prompt, writing nothing", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts, 2);
    const before = await tableCounts(svc.db);
    await expectCode(
      svc.alice.createEvaluation({ promptId: uuidv7(), provider: "p", model: "m" }),
      Code.NotFound,
      /prompt .* not found/,
    );
    await expectCode(
      svc.alice.createEvaluation({ promptId: prompt.id, promptVersion: 3, provider: "p", model: "m" }),
      Code.NotFound,
      /version 3 of prompt/,
    );
    await expectCode(
      svc.bob.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" }),
      Code.NotFound,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
  });

  it("answers FAILED_PRECONDITION for a soft-deleted prompt (GetPrompt shows delete_time), and works again once restored", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    await svc.alicePrompts.deletePrompt({ id: prompt.id });
    await expectCode(
      svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" }),
      Code.FailedPrecondition,
      /is deleted/,
    );
    await svc.alicePrompts.restorePrompt({ id: prompt.id });
    expect(
      (await svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" })).evaluation
        ?.status,
    ).toBe(EvaluationStatus.PENDING);
  });

  it("refuses prompts the event feed marked deleted or purged (the local tombstones), inside the write", async () => {
    const svc = await startServices();
    const a = await createPrompt(svc.alicePrompts, 1, "a");
    const b = await createPrompt(svc.alicePrompts, 1, "b");
    await svc.db.client.execute({
      sql: "INSERT INTO prompt_tombstones (prompt_id, owner_id, state, sequence, occurred_at) VALUES (?, 'alice', 'deleted', 1, 1), (?, 'alice', 'purged', 2, 2)",
      args: [a.id, b.id],
    });
    await expectCode(
      svc.alice.createEvaluation({ promptId: a.id, provider: "p", model: "m" }),
      Code.FailedPrecondition,
      /is deleted/,
    );
    await expectCode(
      svc.alice.createEvaluation({ promptId: b.id, provider: "p", model: "m" }),
      Code.NotFound,
    );
    expect((await tableCounts(svc.db)).evaluations).toBe(0);
  });

  it("request_id: a retry returns the first evaluation; the same key with another payload is ALREADY_EXISTS", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    const req = { promptId: prompt.id, provider: "p", model: "m", requestId: "run-1" };
    const first = must((await svc.alice.createEvaluation(req)).evaluation);
    const again = must((await svc.alice.createEvaluation(req)).evaluation);
    expect(again).toEqual(first);
    await expectCode(
      svc.alice.createEvaluation({ ...req, model: "other" }),
      Code.AlreadyExists,
      /request_id run-1/,
    );
    // Keys are per caller and project: bob's identical key is his own (and bob cannot see alice's prompt).
    await expectCode(svc.bob.createEvaluation(req), Code.NotFound);
    // A replay does not even need prompt-service (the prompt may be gone since).
    await svc.alicePrompts.deletePrompt({ id: prompt.id });
    expect((await svc.alice.createEvaluation(req)).evaluation).toEqual(first);
    const counts = await tableCounts(svc.db);
    expect(counts.evaluations).toBe(1);
    expect(counts.idempotency_keys).toBe(1);
  });

  it("validates input before anything else, naming the field", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    const ok = { promptId: prompt.id, provider: "p", model: "m" };
    await expectCode(
      svc.alice.createEvaluation({ ...ok, promptId: "nope" }),
      Code.InvalidArgument,
      /^prompt_id/,
    );
    await expectCode(svc.alice.createEvaluation({ ...ok, provider: "" }), Code.InvalidArgument, /^provider/);
    await expectCode(
      svc.alice.createEvaluation({ ...ok, model: "x".repeat(201) }),
      Code.InvalidArgument,
      /^model/,
    );
    await expectCode(
      svc.alice.createEvaluation({ ...ok, promptVersion: -1 }),
      Code.InvalidArgument,
      /^prompt_version/,
    );
    await expectCode(
      svc.alice.createEvaluation({ ...ok, requestId: "r".repeat(65) }),
      Code.InvalidArgument,
      /^request_id/,
    );
    expect((await tableCounts(svc.db)).evaluations).toBe(0);
  });
});

describe("state machine", () => {
  async function evaluationIn(
    svc: Awaited<ReturnType<typeof startServices>>,
    promptId: string,
    status: EvaluationStatus,
  ) {
    const e = must((await svc.alice.createEvaluation({ promptId, provider: "p", model: "m" })).evaluation);
    if (status === EvaluationStatus.PENDING) return e.id;
    if (status === EvaluationStatus.FAILED) {
      await svc.alice.failEvaluation({ id: e.id, reason: "setup" });
      return e.id;
    }
    await svc.alice.startEvaluation({ id: e.id });
    if (status === EvaluationStatus.RUNNING) return e.id;
    await svc.alice.recordTestResults({ evaluationId: e.id, results: [result(2)] });
    await svc.alice.completeEvaluation({ id: e.id });
    return e.id;
  }

  it("PENDING -> RUNNING -> COMPLETED with overall_score = AVG of the scores, timestamps and audit rows", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    const e = must(
      (await svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" })).evaluation,
    );
    const started = must((await svc.alice.startEvaluation({ id: e.id })).evaluation);
    expect(started.status).toBe(EvaluationStatus.RUNNING);
    expect(started.startTime).toBeDefined();
    await svc.alice.recordTestResults({
      evaluationId: e.id,
      results: [result(0, { score: 0.25 }), result(1, { score: 0.5 }), result(2, { score: 1 })],
    });
    const done = must((await svc.alice.completeEvaluation({ id: e.id })).evaluation);
    expect(done.status).toBe(EvaluationStatus.COMPLETED);
    expect(done.overallScore).toBeCloseTo((0.25 + 0.5 + 1) / 3, 12);
    expect(done.completeTime).toBeDefined();
    expect(done).toMatchObject({ testCount: 3, passedCount: 2 });
    const audit = await svc.db.client.execute("SELECT action FROM audit_log ORDER BY seq");
    expect(audit.rows.map((r) => r.action)).toEqual([
      "evaluation.create",
      "evaluation.start",
      "evaluation.record_results",
      "evaluation.complete",
    ]);
  });

  it("PENDING -> FAILED and RUNNING -> FAILED keep the reason", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    const pending = await evaluationIn(svc, prompt.id, EvaluationStatus.PENDING);
    const running = await evaluationIn(svc, prompt.id, EvaluationStatus.RUNNING);
    for (const id of [pending, running]) {
      const failed = must((await svc.alice.failEvaluation({ id, reason: "provider timeout" })).evaluation);
      expect(failed).toMatchObject({ status: EvaluationStatus.FAILED, error: "provider timeout" });
      expect(failed.completeTime).toBeDefined();
      expect(failed.overallScore).toBeUndefined();
    }
    await expectCode(svc.alice.failEvaluation({ id: pending, reason: "" }), Code.InvalidArgument, /^reason/);
  });

  it("every illegal transition answers FAILED_PRECONDITION and changes nothing", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    const cases: [EvaluationStatus, "start" | "complete" | "fail" | "record"][] = [
      [EvaluationStatus.PENDING, "complete"],
      [EvaluationStatus.PENDING, "record"],
      [EvaluationStatus.RUNNING, "start"],
      [EvaluationStatus.COMPLETED, "start"],
      [EvaluationStatus.COMPLETED, "complete"],
      [EvaluationStatus.COMPLETED, "fail"],
      [EvaluationStatus.COMPLETED, "record"],
      [EvaluationStatus.FAILED, "start"],
      [EvaluationStatus.FAILED, "complete"],
      [EvaluationStatus.FAILED, "fail"],
      [EvaluationStatus.FAILED, "record"],
    ];
    for (const [status, action] of cases) {
      const id = await evaluationIn(svc, prompt.id, status);
      const before = await tableCounts(svc.db);
      const beforeRow = (await svc.alice.getEvaluation({ id })).evaluation;
      const call =
        action === "start"
          ? svc.alice.startEvaluation({ id })
          : action === "complete"
            ? svc.alice.completeEvaluation({ id })
            : action === "fail"
              ? svc.alice.failEvaluation({ id, reason: "r" })
              : svc.alice.recordTestResults({ evaluationId: id, results: [result(1)] });
      await expectCode(call, Code.FailedPrecondition, new RegExp(EvaluationStatus[status]));
      expect(await tableCounts(svc.db), `${EvaluationStatus[status]} ${action}`).toEqual(before);
      expect((await svc.alice.getEvaluation({ id })).evaluation).toEqual(beforeRow);
    }
  });

  it("completing a RUNNING evaluation without results is FAILED_PRECONDITION (no mean of nothing)", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    const id = await evaluationIn(svc, prompt.id, EvaluationStatus.RUNNING);
    await expectCode(svc.alice.completeEvaluation({ id }), Code.FailedPrecondition, /no test results/);
  });

  it("concurrent transitions: of 10 simultaneous StartEvaluation calls exactly one wins", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    const id = await evaluationIn(svc, prompt.id, EvaluationStatus.PENDING);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, () => svc.alice.startEvaluation({ id })),
    );
    expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
    const audit = await svc.db.client.execute(
      "SELECT count(*) AS n FROM audit_log WHERE action = 'evaluation.start'",
    );
    expect(Number(audit.rows[0]?.n)).toBe(1);
  });

  it("the database refuses illegal transitions too (trigger), whatever the code does", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    const id = await evaluationIn(svc, prompt.id, EvaluationStatus.COMPLETED);
    await expect(
      svc.db.write((tx) => tx.run(`UPDATE evaluations SET status = 'running' WHERE id = '${id}'`)),
    ).rejects.toMatchObject({
      name: "ConstraintViolationError",
      kind: "trigger",
    });
  });
});

describe("ListEvaluations", () => {
  it("lists the caller's evaluations newest first, keyset-paginated, filtered by prompt and status", async () => {
    const svc = await startServices();
    const p1 = await createPrompt(svc.alicePrompts, 1, "one");
    const p2 = await createPrompt(svc.alicePrompts, 1, "two");
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) {
      const e = must(
        (
          await svc.alice.createEvaluation({
            promptId: i % 2 === 0 ? p1.id : p2.id,
            provider: "p",
            model: `m${i}`,
          })
        ).evaluation,
      );
      ids.push(e.id);
      if (i % 3 === 0) await svc.alice.startEvaluation({ id: e.id });
    }
    const all: string[] = [];
    let token = "";
    do {
      const page = await svc.alice.listEvaluations({ pageSize: 3, pageToken: token });
      expect(page.evaluations.length).toBeLessThanOrEqual(3);
      all.push(...page.evaluations.map((e) => e.id));
      token = page.nextPageToken;
    } while (token !== "");
    expect(all).toEqual([...ids].reverse());

    const ofP1 = await svc.alice.listEvaluations({ promptId: p1.id });
    expect(ofP1.evaluations.map((e) => e.id)).toEqual([ids[6], ids[4], ids[2], ids[0]]);
    const running = await svc.alice.listEvaluations({ status: EvaluationStatus.RUNNING });
    expect(running.evaluations.map((e) => e.id)).toEqual([ids[6], ids[3], ids[0]]);
    const runningOfP1 = await svc.alice.listEvaluations({
      promptId: p1.id,
      status: EvaluationStatus.RUNNING,
    });
    expect(runningOfP1.evaluations.map((e) => e.id)).toEqual([ids[6], ids[0]]);
    expect((await svc.bob.listEvaluations({})).evaluations).toEqual([]);

    const first = await svc.alice.listEvaluations({ pageSize: 2 });
    await expectCode(
      svc.alice.listEvaluations({
        pageSize: 2,
        pageToken: first.nextPageToken,
        status: EvaluationStatus.RUNNING,
      }),
      Code.InvalidArgument,
      /^page_token/,
    );
    await expectCode(
      svc.alice.listEvaluations({ pageToken: "must(garbage)" }),
      Code.InvalidArgument,
      /^page_token/,
    );
    await expectCode(svc.alice.listEvaluations({ pageSize: 101 }), Code.InvalidArgument, /^page_size/);
    await expectCode(
      svc.alice.listEvaluations({ status: 9 as EvaluationStatus }),
      Code.InvalidArgument,
      /^status/,
    );
  });
});
