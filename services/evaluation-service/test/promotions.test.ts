import { PromotionStatus } from "@autoforge/contracts/evaluation/v1/promotions";
import { ErrorInfoSchema, PreconditionFailureSchema } from "@autoforge/contracts/google/rpc/error_details";
import type { TokenClaims } from "@autoforge/server";
import { ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { describe, expect, it, onTestFinished } from "vitest";
import { createPromptClient, type PromptClient as PromptServiceClient } from "../src/prompt-client.js";
import { createEvaluationServer } from "../src/server.js";
import {
  Code,
  clientFactory,
  createPrompt,
  expectCode,
  feedToken,
  type Harness,
  must,
  openTestDatabase,
  result,
  secret,
  startServices,
} from "./helpers.js";
import { startPromptServiceFixture } from "./prompt-service-fixture.js";

/**
 * The promotion gate through the public APIs of both services: a real prompt-service where project `acme`
 * gates `production`, and evaluation-service moving it only when the label's policy holds.
 */

const project = "acme";
const adminClaims: TokenClaims = { sub: "ada", roles: ["user"], projects: { [project]: "admin" } };
const publisherClaims: TokenClaims = { sub: "pat", roles: ["user"], projects: { [project]: "publisher" } };
const editorClaims: TokenClaims = { sub: "eve", roles: ["user"], projects: { [project]: "editor" } };
const items = Array.from({ length: 30 }, (_, i) => `case-${String(i).padStart(2, "0")}`);

/** The `acme` world: a prompt with 3 versions, a dataset of 30 items, `production` gated, a policy on it. */
async function world(svc: Harness) {
  const adminPrompts = await svc.promptsAs(adminClaims);
  const prompt = await createPrompt(adminPrompts, 3, "support-answer", project);
  await adminPrompts.updateProjectSettings({
    project,
    updateMask: { paths: ["gated_labels"] },
    gatedLabels: ["production"],
  });
  const datasets = await svc.datasetsAs(adminClaims);
  const dataset = must((await datasets.createDataset({ project, name: "support" })).dataset);
  await datasets.createDatasetVersion({
    project,
    datasetId: dataset.id,
    items: items.map((itemId) => ({ itemId, input: { case: "textInput", value: `question ${itemId}` } })),
  });
  const admin = await svc.promotionsAs(adminClaims);
  await admin.setPromotionPolicy({
    project,
    policy: { label: "production", datasetId: dataset.id, minPassRate: 0.6, requireNotWorse: true },
  });
  const evaluations = await svc.evaluationsAs(adminClaims);
  /** A COMPLETED experiment of `version` over the dataset: item i passes when passes(i), scores score(i). */
  const experiment = async (
    version: number,
    score: (i: number) => number,
    passes = (i: number) => score(i) >= 0.5,
  ) => {
    const e = must(
      (
        await evaluations.createEvaluation({
          project,
          promptId: prompt.id,
          promptVersion: version,
          provider: "p",
          model: "m",
          datasetId: dataset.id,
          datasetVersion: 1,
        })
      ).evaluation,
    );
    await evaluations.startEvaluation({ project, id: e.id });
    await evaluations.recordTestResults({
      project,
      evaluationId: e.id,
      results: items.map((datasetItemId, i) => ({
        ...result(i, { passed: passes(i), score: score(i) }),
        datasetItemId,
        trial: 1,
      })),
    });
    await evaluations.completeEvaluation({ project, id: e.id });
    return e.id;
  };
  const production = async () =>
    must((await adminPrompts.getPrompt({ project, id: prompt.id })).prompt).labels.production;
  return {
    prompt,
    dataset,
    admin,
    publisher: await svc.promotionsAs(publisherClaims),
    adminPrompts,
    experiment,
    production,
  };
}

function violations(e: ConnectError) {
  return e
    .findDetails(PreconditionFailureSchema)
    .flatMap((d) => d.violations.map((v) => [v.subject, v.description]));
}
const reason = (e: ConnectError) => e.findDetails(ErrorInfoSchema)[0]?.reason;

/** One audit row per decision, none for anything else of the gate's. */
async function auditRowsPerDecision(svc: Harness): Promise<number[]> {
  const rs = await svc.db.client.execute(
    "SELECT count(*) AS n FROM audit_log WHERE resource_type = 'promotion' GROUP BY resource_id",
  );
  return rs.rows.map((r) => Number(r.n));
}

describe("the promotion gate", () => {
  it("promotes when the policy holds, refuses with the numbers when it does not, and records every decision", async () => {
    const svc = await startServices();
    const w = await world(svc);
    const v1 = await w.experiment(1, (i) => 0.6 + (i % 5) * 0.08); // pass rate 0.8..., mean 0.76
    // first promotion: the label is not set, nothing to compare with
    const first = must(
      (
        await w.publisher.promotePromptVersion({
          project,
          promptId: w.prompt.id,
          version: 1,
          label: "production",
          reason: "first release",
        })
      ).promotion,
    );
    expect(first).toMatchObject({
      status: PromotionStatus.PROMOTED,
      fromVersion: 0,
      toVersion: 1,
      candidateEvaluationId: v1,
      requestedBy: "pat",
    });
    expect(first.rules.map((r) => [r.rule, r.passed])).toEqual([
      ["candidate_experiment", true],
      ["min_pass_rate", true],
      ["baseline_experiment", true],
    ]);
    expect(await w.production()).toBe(1);

    // nobody moves the gated label by hand
    const publisherPrompts = await svc.promptsAs(publisherClaims);
    const direct = await expectCode(
      publisherPrompts.setPromptLabel({ project, id: w.prompt.id, label: "production", version: 2 }),
      Code.PermissionDenied,
      /PromotePromptVersion/,
    );
    expect(reason(direct)).toBe("LABEL_GATED");

    // a worse version 2: refused, each failed rule with its numbers; the label stays
    const worse = await w.experiment(
      2,
      (i) => 0.3 + (i % 5) * 0.08,
      (i) => i % 3 === 0,
    );
    const refused = await expectCode(
      w.publisher.promotePromptVersion({ project, promptId: w.prompt.id, version: 2, label: "production" }),
      Code.FailedPrecondition,
    );
    expect(reason(refused)).toBe("PROMOTION_REFUSED");
    const failed = violations(refused);
    expect(failed.map(([rule]) => rule)).toEqual(
      expect.arrayContaining(["min_pass_rate", "not_worse:score"]),
    );
    expect(failed.find(([rule]) => rule === "min_pass_rate")?.[1]).toMatch(
      /10 of 30 results passed; measured 0\.333\d*, threshold 0\.6/,
    );
    expect(await w.production()).toBe(1);

    // a better version 3 is promoted over version 1
    const better = await w.experiment(3, (i) => 0.75 + (i % 4) * 0.06);
    const promoted = must(
      (
        await w.publisher.promotePromptVersion({
          project,
          promptId: w.prompt.id,
          version: 3,
          label: "production",
        })
      ).promotion,
    );
    expect(promoted).toMatchObject({
      status: PromotionStatus.PROMOTED,
      fromVersion: 1,
      toVersion: 3,
      candidateEvaluationId: better,
      baselineEvaluationId: v1,
    });
    expect(promoted.rules.find((r) => r.rule === "not_worse:score")).toMatchObject({
      passed: true,
      threshold: 0.05,
    });
    expect(await w.production()).toBe(3);

    // every decision listed, newest first, with its evidence; one audit row each
    const listed = (await w.publisher.listPromotions({ project, promptId: w.prompt.id })).promotions;
    expect(listed.map((p) => [p.toVersion, p.status])).toEqual([
      [3, PromotionStatus.PROMOTED],
      [2, PromotionStatus.REFUSED],
      [1, PromotionStatus.PROMOTED],
    ]);
    expect(listed[1]).toMatchObject({ candidateEvaluationId: worse, baselineEvaluationId: v1 });
    expect(listed[1]?.policy).toMatchObject({
      label: "production",
      minPassRate: 0.6,
      requireNotWorse: true,
      alpha: 0.05,
    });
    expect(await auditRowsPerDecision(svc)).toEqual([1, 1, 1]);
  });

  it("refuses without a policy, without a candidate experiment, and for callers below publisher", async () => {
    const svc = await startServices();
    const w = await world(svc);
    const noPolicy = await expectCode(
      w.publisher.promotePromptVersion({ project, promptId: w.prompt.id, version: 1, label: "staging" }),
      Code.FailedPrecondition,
    );
    expect(reason(noPolicy)).toBe("POLICY_NOT_FOUND");
    const noCandidate = await expectCode(
      w.publisher.promotePromptVersion({ project, promptId: w.prompt.id, version: 2, label: "production" }),
      Code.FailedPrecondition,
    );
    expect(violations(noCandidate).map(([rule]) => rule)).toEqual(["candidate_experiment"]);
    const editor = await svc.promotionsAs(editorClaims);
    await expectCode(
      editor.promotePromptVersion({ project, promptId: w.prompt.id, version: 1, label: "production" }),
      Code.PermissionDenied,
    );
    await expectCode(
      w.publisher.setPromotionPolicy({ project, policy: { label: "production", datasetId: w.dataset.id } }),
      Code.PermissionDenied,
    );
    const bad = await expectCode(
      w.admin.setPromotionPolicy({
        project,
        policy: { label: "latest", datasetId: "nope", alpha: 0.7, minPassRate: 2 },
      }),
      Code.InvalidArgument,
    );
    expect(bad.rawMessage).toMatch(/policy\.label/);
    await expectCode(
      w.admin.setPromotionPolicy({
        project,
        policy: { label: "production", datasetId: "01910000-0000-7000-8000-000000000009" },
      }),
      Code.NotFound,
    );
    expect(await w.production()).toBeUndefined();
    expect(await auditRowsPerDecision(svc)).toEqual([1]);
  });

  it("a label moved between the rules and the swap is ABORTED; prompt-service failing is UNAVAILABLE; neither is PROMOTED", async () => {
    const promptService = await startPromptServiceFixture(secret);
    const real = createPromptClient({ baseUrl: promptService.url, logger: pino({ level: "silent" }) });
    onTestFinished(() => real.close());
    let mode: "race" | "down" = "race";
    // the real client, except that its label move first lets another move win (race) or fails (down)
    const racing: PromptServiceClient = {
      ...real,
      getPrompt: (r, c) => real.getPrompt(r, c),
      listPromptEvents: (r, c) => real.listPromptEvents(r, c),
      watchPromptEvents: (r, c) => real.watchPromptEvents(r, c),
      close: () => undefined,
      breakerState: "closed",
      async setPromptLabel(r, c) {
        if (mode === "down") throw new ConnectError("connect ECONNREFUSED", Code.Unavailable);
        await real.setPromptLabel({ ...r, version: 2, reason: "a concurrent move" }, c);
        return real.setPromptLabel(r, c);
      },
    };
    const { db } = await openTestDatabase();
    const app = createEvaluationServer({
      db,
      prompts: racing,
      auth: { secret },
      logger: pino({ level: "silent" }),
      gateToken: feedToken,
    });
    const { grpcPort } = await app.server.listen({ host: "127.0.0.1", grpcPort: 0, connectPort: 0 });
    onTestFinished(() => app.server.shutdown({ graceMs: 500 }));
    const evalClients = clientFactory(`http://127.0.0.1:${grpcPort}`);
    const svc = {
      db,
      promptsAs: clientFactory(promptService.url).promptsAs,
      datasetsAs: evalClients.datasetsAs,
      promotionsAs: evalClients.promotionsAs,
      evaluationsAs: evalClients.evaluationsAs,
    } as unknown as Harness;
    const w = await world(svc);
    await w.experiment(1, (i) => 0.8 + (i % 3) * 0.05);
    const aborted = await expectCode(
      w.publisher.promotePromptVersion({ project, promptId: w.prompt.id, version: 1, label: "production" }),
      Code.Aborted,
    );
    expect(reason(aborted)).toBe("LABEL_MOVED");
    expect(await w.production()).toBe(2); // the concurrent move, not ours
    // version 2 (where the label is now) gets an experiment like version 1's: the rules hold again
    await w.experiment(2, (i) => 0.8 + ((i + 1) % 3) * 0.05);
    mode = "down";
    const down = await expectCode(
      w.publisher.promotePromptVersion({ project, promptId: w.prompt.id, version: 1, label: "production" }),
      Code.Unavailable,
      /prompt-service/,
    );
    expect(reason(down)).toBe("DEPENDENCY_UNAVAILABLE");
    expect(await w.production()).toBe(2);
    const listed = (await w.publisher.listPromotions({ project })).promotions;
    expect(listed.map((p) => p.status)).toEqual([PromotionStatus.FAILED, PromotionStatus.ABORTED]);
    expect(listed[0]?.error).toMatch(/Unavailable/);
    expect(await auditRowsPerDecision(svc)).toEqual([1, 1]);
    // prompt-service itself down: nothing decided, nothing stored
    await promptService.stop();
    await expectCode(
      w.publisher.promotePromptVersion({ project, promptId: w.prompt.id, version: 1, label: "production" }),
      Code.Unavailable,
      /prompt-service/,
    );
    expect((await w.publisher.listPromotions({ project })).promotions).toHaveLength(2);
  });
});
