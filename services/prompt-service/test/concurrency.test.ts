import { ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Code, must, startPromptService, tableCounts } from "./helpers.js";

async function settle<T>(calls: Promise<T>[]) {
  const results = await Promise.allSettled(calls);
  const ok = results
    .filter((r) => r.status === "fulfilled")
    .map((r) => (r as PromiseFulfilledResult<T>).value);
  const codes = results
    .filter((r) => r.status === "rejected")
    .map((r) => Code[ConnectError.from((r as PromiseRejectedResult).reason).code]);
  return { ok, codes };
}

describe("concurrency", () => {
  it("20 concurrent UpdatePrompt with the same etag: exactly 1 OK, 19 ABORTED, versions contiguous", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "t", content: "v1" })).prompt);
    const { ok, codes } = await settle(
      Array.from({ length: 20 }, (_, i) =>
        svc.alice.updatePrompt({
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["content"] },
          content: `writer ${i}`,
        }),
      ),
    );
    expect(ok).toHaveLength(1);
    expect(codes).toEqual(Array(19).fill("Aborted"));
    const versions = (await svc.alice.listPromptVersions({ promptId: p.id })).versions.map((v) => v.version);
    expect(versions).toEqual([2, 1]);

    // and writers that re-read and retry on ABORTED all land, one version each, with no gap
    await Promise.all(
      Array.from({ length: 10 }, async (_, i) => {
        for (;;) {
          const cur = must((await svc.alice.getPrompt({ id: p.id })).prompt);
          try {
            await svc.alice.updatePrompt({
              id: p.id,
              etag: cur.etag,
              updateMask: { paths: ["content"] },
              content: `retry ${i}`,
            });
            return;
          } catch (e) {
            if (ConnectError.from(e).code !== Code.Aborted) throw e;
          }
        }
      }),
    );
    const all = (await svc.alice.listPromptVersions({ promptId: p.id, pageSize: 100 })).versions.map(
      (v) => v.version,
    );
    expect(all).toEqual(Array.from({ length: 12 }, (_, i) => 12 - i));
  });

  it("50 concurrent creates with distinct request_ids make 50 prompts", async () => {
    const svc = await startPromptService();
    const { ok, codes } = await settle(
      Array.from({ length: 50 }, (_, i) =>
        svc.alice.createPrompt({ title: `p${i}`, content: "c", requestId: `req-${i}` }),
      ),
    );
    expect(codes).toEqual([]);
    expect(new Set(ok.map((r) => r.prompt?.id)).size).toBe(50);
    expect((await tableCounts(svc.db)).prompts).toBe(50);
  });

  it("10 concurrent creates with one request_id make 1 prompt, and all 10 get it", async () => {
    const svc = await startPromptService();
    const { ok, codes } = await settle(
      Array.from({ length: 10 }, () =>
        svc.alice.createPrompt({ title: "same", content: "c", requestId: "one-key" }),
      ),
    );
    expect(codes).toEqual([]);
    expect(new Set(ok.map((r) => r.prompt?.id)).size).toBe(1);
    for (const r of ok) expect(r.prompt).toEqual(ok[0]?.prompt);
    const counts = await tableCounts(svc.db);
    expect([counts.prompts, counts.prompt_events, counts.audit_log, counts.idempotency_keys]).toEqual([
      1, 1, 1, 1,
    ]);
  });
});
