import { Code, errorDetails } from "@autoforge/client";
import { describe, expect, it } from "vitest";
import { must, startEvaluationService, startPromptService, tempDir } from "../e2e/harness.js";
import { clientFor, transportKinds } from "./support.js";

/** Reads one call's rejection (the client's errors are ConnectErrors). */
async function failure(call: Promise<unknown>) {
  try {
    await call;
  } catch (e) {
    return { code: (e as { code: Code }).code, details: errorDetails(e) };
  }
  throw new Error("the call succeeded");
}

describe.each(transportKinds)("errorDetails over %s against the real services", (kind) => {
  it("reads ErrorInfo, BadRequest (every violation), PreconditionFailure, ResourceInfo and RetryInfo", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    const evaluations = await startEvaluationService(dir, prompts.url);
    // no retries: the UNAVAILABLE below is the first attempt's answer
    const client = clientFor(
      kind,
      { prompt: prompts, evaluation: evaluations },
      { sub: "ada", roles: ["user"] },
      {
        retry: false,
      },
    );

    const bad = await failure(
      client.evaluationService.recordTestResults({
        evaluationId: "nope",
        results: [
          { name: "a", score: 7 },
          { name: "", score: 0 },
        ],
      }),
    );
    expect(bad.code).toBe(Code.InvalidArgument);
    expect(bad.details).toMatchObject({ reason: "INVALID_ARGUMENT", domain: "autoforge.dev" });
    expect(bad.details.fieldViolations.map((v) => v.field)).toEqual([
      "evaluation_id",
      "results[0].score",
      "results[1].name",
    ]);

    const missingId = "01890000-0000-7000-8000-000000000001";
    const missing = await failure(client.promptService.getPrompt({ id: missingId }));
    expect(missing.details).toMatchObject({
      reason: "PROMPT_NOT_FOUND",
      metadata: { prompt: missingId },
      resource: { type: "autoforge.prompt.v1.Prompt", name: missingId },
    });

    const created = must((await client.promptService.createPrompt({ title: "t", content: "c" })).prompt);
    const stale = await failure(
      client.promptService.updatePrompt({
        id: created.id,
        etag: "old",
        updateMask: { paths: ["title"] },
        title: "u",
      }),
    );
    expect(stale.code).toBe(Code.Aborted);
    expect(stale.details.reason).toBe("STALE_ETAG");
    expect(stale.details.preconditionViolations).toEqual([
      { type: "ETAG", subject: created.id, description: expect.stringContaining("stale") },
    ]);

    await prompts.kill();
    const down = await failure(
      client.evaluationService.createEvaluation({ promptId: created.id, provider: "p", model: "m" }),
    );
    expect(down.code).toBe(Code.Unavailable);
    expect(down.details).toMatchObject({ reason: "DEPENDENCY_UNAVAILABLE", retryDelayMs: 1000 });
  }, 60_000);
});
