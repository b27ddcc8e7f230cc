import { PromptEventType, PromptStatus } from "@autoforge/contracts/prompt/v1";
import { createDatabase } from "@autoforge/db";
import { uuidv7 } from "uuidv7";
import { describe, expect, it } from "vitest";
import { peerOptions } from "../../../test/support/engine.js";
import { insertEvent } from "../src/db/repository.js";
import { schema } from "../src/db/schema.js";
import { Code, expectCode, must, pollUntil, startPromptService, tableCounts } from "./helpers.js";

describe("ListPromptEvents", () => {
  it("records one event per committed change, in order, with version and label", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "t", content: "v1" })).prompt);
    const u = must(
      (
        await svc.alice.updatePrompt({
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["content"] },
          content: "v2",
        })
      ).prompt,
    );
    await svc.alice.updatePrompt({
      id: p.id,
      etag: u.etag,
      updateMask: { paths: ["status"] },
      status: PromptStatus.ACTIVE,
    });
    await svc.alice.setPromptLabel({ id: p.id, label: "staging", version: 1 });
    await svc.alice.removePromptLabel({ id: p.id, label: "staging" });
    await svc.alice.deletePrompt({ id: p.id });
    await svc.alice.deletePrompt({ id: p.id }); // no change, no event
    await svc.alice.restorePrompt({ id: p.id });
    await svc.alice.purgePrompt({ id: p.id });
    await svc.alice.createPromptTemplate({ name: "t", body: "b" }); // templates are not in the prompt feed

    const { events, lastSequence } = await svc.service.listPromptEvents({});
    expect(events.map((e) => [Number(e.sequence), e.type, e.version, e.label])).toEqual([
      [1, PromptEventType.CREATED, 1, ""],
      [2, PromptEventType.UPDATED, 2, ""],
      [3, PromptEventType.UPDATED, 2, ""],
      [4, PromptEventType.LABEL_SET, 1, "staging"],
      [5, PromptEventType.LABEL_REMOVED, 1, "staging"],
      [6, PromptEventType.DELETED, 2, ""],
      [7, PromptEventType.RESTORED, 2, ""],
      [8, PromptEventType.PURGED, 2, ""],
    ]);
    expect(lastSequence).toBe(8n);
    expect(new Set(events.map((e) => e.eventId)).size).toBe(8);
    expect(
      events.every((e) => e.promptId === p.id && e.ownerId === "alice" && e.occurTime !== undefined),
    ).toBe(true);

    const after = await svc.service.listPromptEvents({ afterSequence: 5n, pageSize: 2 });
    expect(after.events.map((e) => Number(e.sequence))).toEqual([6, 7]);
    expect(after.lastSequence).toBe(8n);
    await expectCode(svc.service.listPromptEvents({ pageSize: 1001 }), Code.InvalidArgument, /^page_size/);
  });

  it("is for service principals only: user and admin tokens get PERMISSION_DENIED", async () => {
    const svc = await startPromptService();
    await expectCode(svc.alice.listPromptEvents({}), Code.PermissionDenied);
    await expectCode(svc.adminPrompts.listPromptEvents({}), Code.PermissionDenied);
    const stream = svc.alice.watchPromptEvents({});
    await expectCode(
      (async () => {
        for await (const _ of stream) break;
      })(),
      Code.PermissionDenied,
    );
  });

  it("a rolled-back change emits no event (and leaves no row at all)", async () => {
    const svc = await startPromptService();
    await svc.alice.createPrompt({ title: "ok", content: "c" });
    // Make the audit insert of one actor fail: the prompt and its event were already written in that
    // transaction, so the whole unit of work must roll back.
    await svc.db.client.execute(
      "CREATE TRIGGER fail_mallory BEFORE INSERT ON audit_log WHEN NEW.actor = 'mallory' BEGIN SELECT RAISE(ABORT, 'test'); END",
    );
    const before = await tableCounts(svc.db);
    const mallory = await svc.client("mallory", ["user"]);
    await expectCode(
      mallory.createPrompt({ title: "x", content: "y", requestId: "r" }),
      Code.InvalidArgument,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
    expect((await svc.service.listPromptEvents({})).events).toHaveLength(1);
  });
});

describe("WatchPromptEvents", () => {
  // 1,000 write units: on sqld and replicas each is HTTP round trips to a primary (20-30 s on this machine)
  it("replays then follows: every event of a 1,000-change run exactly once, in order", async () => {
    const svc = await startPromptService();
    const total = 1_000;
    // 100 prompts x (create + 9 updates), half before the watch starts (replay), half after (live)
    const makeChanges = async (from: number, to: number) => {
      const batch: Promise<void>[] = [];
      for (let i = from; i < to; i++) {
        batch.push(
          (async () => {
            let p = must((await svc.alice.createPrompt({ title: `p${i}`, content: "0" })).prompt);
            for (let v = 1; v <= 9; v++) {
              p = must(
                (
                  await svc.alice.updatePrompt({
                    id: p.id,
                    etag: p.etag,
                    updateMask: { paths: ["content"] },
                    content: `${v}`,
                  })
                ).prompt,
              );
            }
          })(),
        );
      }
      await Promise.all(batch);
    };
    await makeChanges(0, 50);

    const controller = new AbortController();
    const received: bigint[] = [];
    const ids = new Set<string>();
    const watching = (async () => {
      try {
        for await (const { event } of svc.service.watchPromptEvents(
          { afterSequence: 0n },
          { signal: controller.signal },
        )) {
          received.push(must(event).sequence);
          ids.add(must(event).eventId);
          if (received.length === total) controller.abort();
        }
      } catch (e) {
        if (!controller.signal.aborted) throw e;
      }
    })();
    await makeChanges(50, 100);
    await pollUntil(() => received.length >= total, 30_000);
    await watching;
    expect(received).toHaveLength(total);
    expect(received).toEqual(Array.from({ length: total }, (_, i) => BigInt(i + 1)));
    expect(ids.size).toBe(total);
  }, 120_000);

  it("sees events committed by another process (fallback poll), after after_sequence", async () => {
    const svc = await startPromptService({ watchPollIntervalMs: 50 });
    await svc.alice.createPrompt({ title: "a", content: "b" });
    const other = await createDatabase({ ...peerOptions(svc.location), schema });
    const controller = new AbortController();
    const seen: string[] = [];
    const watching = (async () => {
      try {
        for await (const { event } of svc.service.watchPromptEvents(
          { afterSequence: 1n },
          { signal: controller.signal },
        )) {
          seen.push(must(event).promptId);
        }
      } catch (e) {
        if (!controller.signal.aborted) throw e;
      }
    })();
    await other.write((tx) =>
      insertEvent(tx, {
        eventId: uuidv7(),
        type: "created",
        promptId: "from-elsewhere",
        projectId: "user:x",
        name: "from-elsewhere",
        ownerId: "x",
        version: 1,
        occurredAt: Date.now(),
      }),
    );
    await svc.db.sync(); // an embedded replica pulls the other process's write (a no-op elsewhere)
    await pollUntil(() => seen.length === 1);
    controller.abort();
    await watching;
    await other.close();
    expect(seen).toEqual(["from-elsewhere"]);
  });
});
