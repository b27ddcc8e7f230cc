import { PromotionStatus } from "@autoforge/contracts/evaluation/v1/promotions";
import { describe, expect, it } from "vitest";
import {
  Code,
  clients,
  expectCode,
  must,
  startEvaluationService,
  startPromptService,
  tempDir,
} from "./harness.js";

/**
 * The promotion gate as deployed: both services as processes, evaluation-service moving prompt-service's gated
 * label with its own SERVICE_TOKEN (the all-projects service principal, PROMOTION_GATE_SUBJECTS' default).
 */
describe("the promotion gate across the two processes", () => {
  it("a publisher promotes through the gate; moving the gated label directly is refused", async () => {
    const dir = tempDir();
    const prompt = await startPromptService(dir);
    const evaluation = await startEvaluationService(dir, prompt.url);
    const admin = await clients(evaluation.url).as({
      sub: "ada",
      roles: ["user"],
      projects: { acme: "admin" },
    });
    const adminPrompts = (
      await clients(prompt.url).as({ sub: "ada", roles: ["user"], projects: { acme: "admin" } })
    ).prompts;
    const publisher = await clients(evaluation.url).as({
      sub: "pat",
      roles: ["user"],
      projects: { acme: "publisher" },
    });
    const publisherPrompts = (
      await clients(prompt.url).as({ sub: "pat", roles: ["user"], projects: { acme: "publisher" } })
    ).prompts;
    const project = "acme";

    const created = must(
      (await adminPrompts.createPrompt({ project, title: "greeting", content: "hello" })).prompt,
    );
    await adminPrompts.updateProjectSettings({
      project,
      updateMask: { paths: ["gated_labels"] },
      gatedLabels: ["production"],
    });
    const dataset = must((await admin.datasets.createDataset({ project, name: "qa" })).dataset);
    await admin.datasets.createDatasetVersion({
      project,
      datasetId: dataset.id,
      items: ["a", "b", "c"].map((itemId) => ({ itemId, input: { case: "textInput", value: itemId } })),
    });
    await admin.promotions.setPromotionPolicy({
      project,
      policy: { label: "production", datasetId: dataset.id, minPassRate: 0.5 },
    });
    const e = must(
      (
        await admin.evaluations.createEvaluation({
          project,
          promptId: created.id,
          provider: "p",
          model: "m",
          datasetId: dataset.id,
          datasetVersion: 1,
        })
      ).evaluation,
    );
    await admin.evaluations.startEvaluation({ project, id: e.id });
    await admin.evaluations.recordTestResults({
      project,
      evaluationId: e.id,
      results: ["a", "b", "c"].map((datasetItemId, i) => ({
        name: `case ${datasetItemId}`,
        passed: i < 2,
        score: 0.8,
        latencyMs: 10n,
        datasetItemId,
        trial: 1,
      })),
    });
    await admin.evaluations.completeEvaluation({ project, id: e.id });

    await expectCode(
      publisherPrompts.setPromptLabel({ project, id: created.id, label: "production", version: 1 }),
      Code.PermissionDenied,
      /PromotePromptVersion/,
    );
    const promoted = must(
      (
        await publisher.promotions.promotePromptVersion({
          project,
          promptId: created.id,
          version: 1,
          label: "production",
        })
      ).promotion,
    );
    expect(promoted).toMatchObject({
      status: PromotionStatus.PROMOTED,
      candidateEvaluationId: e.id,
      requestedBy: "pat",
    });
    const after = must((await adminPrompts.getPrompt({ project, id: created.id })).prompt);
    expect(after.labels.production).toBe(1);
    // prompt-service's history shows the gate as the actor, with the decision in the reason
    const history = (
      await adminPrompts.listPromptLabelHistory({ project, promptId: created.id, label: "production" })
    ).moves;
    expect(history[0]).toMatchObject({ actor: "evaluation-service", toVersion: 1 });
    expect(history[0]?.reason).toContain(promoted.id);
  });
});
