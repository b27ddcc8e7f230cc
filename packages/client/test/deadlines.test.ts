import { Code } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { createAutoforgeClient, defaultTimeoutMs } from "../src/index.js";
import { fakeTransport } from "./fake-transport.js";

describe("default deadlines", () => {
  it("a unary call without its own timeoutMs gets 10 s; its own timeoutMs wins; 0 means none", async () => {
    const transport = fakeTransport();
    const client = createAutoforgeClient({ transport, token: "t" });
    await client.promptService.getPrompt({ name: "a" });
    await client.promptService.createPrompt({ title: "t", content: "c" }, { timeoutMs: 1_500 });
    await client.adminService.getDatabaseStats({}, { timeoutMs: 0 });
    const [byDefault, own, none] = transport.attempts.map((a) => a.timeoutMs);
    expect(defaultTimeoutMs).toBe(10_000);
    expect(byDefault).toBeLessThanOrEqual(10_000);
    expect(byDefault).toBeGreaterThan(9_000);
    expect(own).toBeLessThanOrEqual(1_500);
    expect(own).toBeGreaterThan(1_000);
    expect(none).toBeUndefined();
  });

  it("the client's timeoutMs replaces the default; streams get no deadline unless the call sets one", async () => {
    const transport = fakeTransport((attempt) => (attempt.method.methodKind === "unary" ? {} : []));
    const client = createAutoforgeClient({ transport, token: "t", timeoutMs: 2_000 });
    await client.promptService.renderPrompt({ name: "a" });
    for await (const _ of client.promptService.watchPromptEvents({})) break;
    for await (const _ of client.promptService.watchPromptEvents({}, { timeoutMs: 700 })) break;
    const [unary, stream, timedStream] = transport.attempts.map((a) => a.timeoutMs);
    expect(unary).toBeLessThanOrEqual(2_000);
    expect(unary).toBeGreaterThan(1_000);
    expect(stream).toBeUndefined();
    expect(timedStream).toBe(700);
  });

  it("the deadline aborts a call whose attempt hangs: DEADLINE_EXCEEDED", async () => {
    const transport = fakeTransport(
      (attempt) =>
        new Promise((_, reject) =>
          attempt.signal?.addEventListener("abort", () => reject(attempt.signal?.reason)),
        ),
    );
    const client = createAutoforgeClient({ transport, token: "t" });
    await expect(client.promptService.getPrompt({ name: "a" }, { timeoutMs: 50 })).rejects.toMatchObject({
      code: Code.DeadlineExceeded,
    });
    expect(transport.count("GetPrompt")).toBe(1);
  });
});
