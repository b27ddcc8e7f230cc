import { mkdtempSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { describe, expect, it, onTestFinished } from "vitest";
import { isRetrySafe } from "../src/prompt-client.js";
import { Code, createPrompt, expectCode, pollUntil, secret, startServices, tableCounts } from "./helpers.js";
import { startPromptServiceFixture } from "./prompt-service-fixture.js";

/** A TCP server that accepts connections and never answers (a hung dependency). */
async function blackHole(): Promise<{ url: string }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return { url: `http://127.0.0.1:${address.port}` };
}

describe("PromptService client", () => {
  it("retries only methods the descriptor marks NO_SIDE_EFFECTS or IDEMPOTENT", () => {
    expect(isRetrySafe(PromptService.method.getPrompt)).toBe(true);
    expect(isRetrySafe(PromptService.method.listPromptEvents)).toBe(true);
    expect(isRetrySafe(PromptService.method.restorePrompt)).toBe(true);
    expect(isRetrySafe(PromptService.method.createPrompt)).toBe(false);
    expect(isRetrySafe(PromptService.method.purgePrompt)).toBe(false);
  });

  it("prompt-service down: CreateEvaluation answers UNAVAILABLE naming it (not DEADLINE_EXCEEDED) and writes nothing", async () => {
    const svc = await startServices();
    const prompt = await createPrompt(svc.alicePrompts);
    await svc.promptService.stop();
    const before = await tableCounts(svc.db);
    for (const timeoutMs of [800, 3_000, undefined]) {
      await expectCode(
        svc.alice.createEvaluation(
          { promptId: prompt.id, provider: "p", model: "m" },
          timeoutMs === undefined ? {} : { timeoutMs },
        ),
        Code.Unavailable,
        /^prompt-service unavailable: /,
      );
    }
    expect(await tableCounts(svc.db)).toEqual(before);
  });

  it("prompt-service hung: the budget ends before the caller's deadline, so the answer is UNAVAILABLE", async () => {
    const hole = await blackHole();
    const svc = await startServices({
      promptService: { ...(await startPromptServiceFixture(secret)), url: hole.url },
    });
    const before = await tableCounts(svc.db);
    await expectCode(
      svc.alice.createEvaluation(
        { promptId: "01900000-0000-7000-8000-000000000001", provider: "p", model: "m" },
        { timeoutMs: 1_000 },
      ),
      Code.Unavailable,
      /^prompt-service unavailable: /,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
  });

  it("the circuit breaker opens after consecutive failures and closes again once prompt-service is back (same port)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "eval-test-prompt-restart-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const first = await startPromptServiceFixture(secret, { dir });
    const svc = await startServices({
      promptService: first,
      promptClient: { breakerThreshold: 3, halfOpenAfterMs: 200, maxAttempts: 2 },
    });
    const prompt = await createPrompt(svc.alicePrompts);
    await first.stop();
    await pollUntil(async () => {
      await expectCode(
        svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" }),
        Code.Unavailable,
      );
      return svc.promptClient.breakerState === "open";
    });
    await expectCode(
      svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" }),
      Code.Unavailable,
      /circuit breaker open/,
    );
    await startPromptServiceFixture(secret, { dir, port: first.grpcPort });
    await pollUntil(async () => {
      try {
        await svc.alice.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" });
        return true;
      } catch {
        return false;
      }
    });
    expect(svc.promptClient.breakerState).toBe("closed");
    expect((await tableCounts(svc.db)).evaluations).toBe(1);
  });
});
