/**
 * Two prompt-service processes on one sqld primary, as a scaled-out deployment runs them: writes through both at
 * once all land, a same-etag race across the two processes has exactly one winner, the change feed is gapless
 * (and a watch on one process sees the other's changes), and the audit chain verifies from both.
 */
import { expect, it } from "vitest";
import { describeWithSqld, sqldForTest } from "../support/sqld.js";
import {
  Code,
  ConnectError,
  clients,
  must,
  pollUntil,
  type ServiceProcess,
  startService,
} from "./harness.js";

async function onPrimary(url: string, authToken: string): Promise<ServiceProcess> {
  return startService("prompt-service", { DATABASE_URL: url, DATABASE_AUTH_TOKEN: authToken });
}

describeWithSqld("two prompt-service processes on one sqld primary", () => {
  it("concurrent writes through both land, a same-etag race has one winner, the feed is gapless, the audit chain verifies from both", async () => {
    const sqld = await sqldForTest({ auth: true });
    const authToken = sqld.authToken ?? "";
    // the second starts on the migrated database (a rolling deploy); both then serve at once
    const a = await onPrimary(sqld.url, authToken);
    const b = await onPrimary(sqld.url, authToken);
    const [aliceA, aliceB] = await Promise.all([
      clients(a.url).prompts("alice"),
      clients(b.url).prompts("alice"),
    ]);
    const feedA = await clients(a.url).feed();
    const feedB = await clients(b.url).feed();

    // a watch on B from the start of the feed: it must see A's changes too, each once, in order
    const controller = new AbortController();
    const watched: bigint[] = [];
    const watching = (async () => {
      try {
        for await (const { event } of feedB.watchPromptEvents(
          { afterSequence: 0n },
          { signal: controller.signal },
        )) {
          watched.push(must(event).sequence);
        }
      } catch (e) {
        if (!controller.signal.aborted) throw e;
      }
    })();

    // 2 processes x 4 writers x 10 creates, all at once
    const perWriter = 10;
    const created = await Promise.all(
      [aliceA, aliceB].flatMap((client, p) =>
        Array.from({ length: 4 }, async (_, w) => {
          const ids: string[] = [];
          for (let i = 0; i < perWriter; i++) {
            const title = `p${p}-w${w}-${i}`;
            ids.push(must((await client.createPrompt({ title, content: title })).prompt).id);
          }
          return ids;
        }),
      ),
    );
    const ids = created.flat();
    expect(new Set(ids).size).toBe(80);
    for (const client of [aliceA, aliceB]) {
      const listed: string[] = [];
      let pageToken = "";
      do {
        const page = await client.listPrompts({ pageSize: 50, pageToken });
        listed.push(...page.prompts.map((p) => p.id));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      expect(listed.sort()).toEqual([...ids].sort());
    }

    // the same etag through both processes at once: exactly one update wins
    const target = must((await aliceA.getPrompt({ id: ids[0] ?? "" })).prompt);
    const outcomes = await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        (i % 2 === 0 ? aliceA : aliceB)
          .updatePrompt({
            id: target.id,
            etag: target.etag,
            updateMask: { paths: ["content"] },
            content: `racer ${i}`,
          })
          .then(
            () => "OK",
            (e: unknown) => Code[ConnectError.from(e).code],
          ),
      ),
    );
    expect(outcomes.filter((o) => o === "OK")).toHaveLength(1);
    expect(outcomes.filter((o) => o !== "OK")).toEqual(Array(9).fill("Aborted"));
    const versions = await aliceB.listPromptVersions({ promptId: target.id });
    expect(versions.versions.map((v) => v.version)).toEqual([2, 1]);

    // the feed, read from each process: 80 creates + 1 update, sequences 1..81 without a gap
    const total = 81;
    for (const feed of [feedA, feedB]) {
      const sequences: bigint[] = [];
      let after = 0n;
      for (;;) {
        const page = await feed.listPromptEvents({ afterSequence: after, pageSize: 50 });
        if (page.events.length === 0) break;
        sequences.push(...page.events.map((e) => e.sequence));
        after = page.events.at(-1)?.sequence ?? after;
      }
      expect(sequences).toEqual(Array.from({ length: total }, (_, i) => BigInt(i + 1)));
    }
    await pollUntil(() => watched.length >= total, 30_000, "the watch on B seeing every change");
    controller.abort();
    await watching;
    expect(watched).toEqual(Array.from({ length: total }, (_, i) => BigInt(i + 1)));

    // one audit chain, written by both processes, verified by each
    for (const service of [a, b]) {
      const result = await (await clients(service.url).admin()).verifyAuditChain({});
      expect(result).toMatchObject({ ok: true });
      expect(Number(result.checkedCount)).toBeGreaterThanOrEqual(total);
    }
  }, 180_000);
});
