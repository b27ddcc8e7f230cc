import { Code, ConnectError, type Interceptor, type RetryEvent, withoutRequestId } from "@autoforge/client";
import { describe, expect, it } from "vitest";
import { expectCode, must, pollUntil, startPromptService, tempDir } from "../e2e/harness.js";
import { attemptCounter, clientFor, restartPromptService } from "./support.js";

const editor = { sub: "ada", projects: { demo: "editor" as const } };
const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

/**
 * Loses the response of the first CreatePrompt attempt: the server ran it (the prompt exists), the client sees
 * UNAVAILABLE, as when a connection drops after the server committed.
 */
function loseFirstCreateResponse(): Interceptor {
  let lost = false;
  return (next) => async (req) => {
    const res = await next(req);
    if (req.method.name === "CreatePrompt" && !lost) {
      lost = true;
      throw new ConnectError("connection lost after the server answered (test fault)", Code.Unavailable);
    }
    return res;
  };
}

async function promptsTitled(
  list: () => Promise<{ prompts: { title: string; id: string }[] }>,
  title: string,
) {
  return (await list()).prompts.filter((p) => p.title === title).map((p) => p.id);
}

describe.each(["connect", "grpc"] as const)("retries over %s against a real prompt-service", (kind) => {
  it("an idempotent read is retried on UNAVAILABLE while prompt-service is down, and answers once it is back", async () => {
    const dir = tempDir();
    let prompts = await startPromptService(dir);
    const counter = attemptCounter();
    const retries: RetryEvent[] = [];
    const client = clientFor(kind, { prompt: prompts }, editor, {
      interceptors: [counter.interceptor],
      retry: { maxAttempts: 1_000, initialDelayMs: 20, maxDelayMs: 200, onRetry: (e) => retries.push(e) },
    });
    const created = must(
      (await client.promptService.createPrompt({ project: "demo", name: "kept", title: "t", content: "c" }))
        .prompt,
    );

    await prompts.kill("SIGKILL");
    const read = client.promptService.getPrompt({ project: "demo", name: "kept" }, { timeoutMs: 60_000 });
    // Restart only once the client has been refused (and retried) a few times.
    await pollUntil(() => retries.length >= 3, 20_000, "retries while prompt-service is down");
    prompts = await restartPromptService(dir, prompts);
    expect(must((await read).prompt).id).toBe(created.id);

    expect(retries.every((e) => e.method.name === "GetPrompt" && e.error.code === Code.Unavailable)).toBe(
      true,
    );
    expect(counter.count("GetPrompt")).toBe(retries.length + 1);
  }, 90_000);

  it("a create with a generated request_id whose response was lost is retried with the same key: exactly one prompt", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    const counter = attemptCounter();
    const client = clientFor(kind, { prompt: prompts }, editor, {
      interceptors: [loseFirstCreateResponse(), counter.interceptor],
      retry: { initialDelayMs: 10, maxDelayMs: 50 },
    });
    const res = await client.promptService.createPrompt({ project: "demo", title: "once", content: "c" });

    const sent = counter.attempts.filter((a) => a.method === "CreatePrompt").map((a) => a.message.requestId);
    expect(sent).toHaveLength(2);
    expect(sent[0]).toMatch(uuidV7);
    expect(sent[1]).toBe(sent[0]);
    // The server answered the retry with the first result: one prompt, the one the caller got.
    const ids = await promptsTitled(() => client.promptService.listPrompts({ project: "demo" }), "once");
    expect(ids).toEqual([must(res.prompt).id]);
  }, 60_000);

  it("a create whose request_id the caller suppressed is never retried: one attempt, UNAVAILABLE surfaced", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    const counter = attemptCounter();
    const client = clientFor(kind, { prompt: prompts }, editor, {
      interceptors: [loseFirstCreateResponse(), counter.interceptor],
      retry: { initialDelayMs: 10, maxDelayMs: 50 },
    });
    await expectCode(
      client.promptService.createPrompt(
        { project: "demo", title: "blind", content: "c" },
        { contextValues: withoutRequestId() },
      ),
      Code.Unavailable,
      /connection lost/,
    );
    expect(counter.count("CreatePrompt")).toBe(1);
    expect(counter.attempts[0]?.message.requestId).toBe("");
    // The server did create it: a blind retry would have made a second one.
    expect(
      await promptsTitled(() => client.promptService.listPrompts({ project: "demo" }), "blind"),
    ).toHaveLength(1);

    // Against a service that is down: still one attempt.
    await prompts.kill("SIGKILL");
    await expectCode(
      client.promptService.createPrompt(
        { project: "demo", title: "blind-2", content: "c" },
        { contextValues: withoutRequestId() },
      ),
      Code.Unavailable,
    );
    expect(counter.count("CreatePrompt")).toBe(2);
    // ...while a keyed create against the same dead service is retried (until the budget ends).
    await expectCode(
      client.promptService.createPrompt(
        { project: "demo", title: "keyed", content: "c" },
        { timeoutMs: 2_000 },
      ),
      Code.Unavailable,
    );
    expect(counter.count("CreatePrompt")).toBeGreaterThan(3);
  }, 60_000);
});
