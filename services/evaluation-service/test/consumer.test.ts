import { type PromptEvent, PromptEventSchema, PromptEventType } from "@autoforge/contracts/prompt/v1";
import type { Database } from "@autoforge/db";
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import { pino } from "pino";
import { uuidv7 } from "uuidv7";
import { describe, expect, it } from "vitest";
import { applyPromptEvent, createPromptEventConsumer, promptEventsConsumerName } from "../src/consumer.js";
import type { Schema } from "../src/db/schema.js";
import type { PromptClient } from "../src/prompt-client.js";
import {
  Code as C,
  createPrompt,
  expectCode,
  feedToken,
  must,
  openTestDatabase,
  pollUntil,
  result,
  startServices,
} from "./helpers.js";

/** An event of a prompt of `project` (default alice's personal project) created by `ownerId`. */
function event(
  sequence: number,
  type: PromptEventType,
  promptId: string,
  { project = "user:alice", ownerId = "alice" }: { project?: string; ownerId?: string } = {},
): PromptEvent {
  return create(PromptEventSchema, {
    sequence: BigInt(sequence),
    eventId: uuidv7(),
    type,
    promptId,
    project,
    ownerId,
    version: 1,
    occurTime: timestampFromMs(Date.now()),
  });
}

/** Evaluations (with results) of a prompt of `project` (default alice's personal one), straight into the tables. */
async function seedEvaluations(
  db: Database<Schema>,
  promptId: string,
  count: number,
  resultsEach: number,
  project = "user:alice",
) {
  await db.write(async (tx) => {
    for (let i = 0; i < count; i++) {
      const id = uuidv7();
      await tx.run(
        `INSERT INTO evaluations (id, project_id, owner_id, prompt_id, prompt_version, provider, model, status, created_at, updated_at, started_at)
         VALUES ('${id}', '${project}', 'alice', '${promptId}', 1, 'p', 'm', 'running', 1, 1, 1)`,
      );
      for (let r = 0; r < resultsEach; r++) {
        await tx.run(
          `INSERT INTO test_results (id, evaluation_id, name, passed, score, latency_ms, created_at) VALUES ('${uuidv7()}', '${id}', 't', 1, 0.5, 1, 1)`,
        );
      }
    }
  });
}

async function count(db: Database<Schema>, sql: string): Promise<number> {
  const rs = await db.client.execute(sql);
  return Number(rs.rows[0]?.n ?? 0);
}

describe("applyPromptEvent", () => {
  it("the same event delivered twice is applied once (offset check in the same transaction)", async () => {
    const { db } = await openTestDatabase();
    const purged = uuidv7();
    const kept = uuidv7();
    await seedEvaluations(db, purged, 3, 4);
    await seedEvaluations(db, kept, 2, 4);
    await applyPromptEvent(db, event(1, PromptEventType.CREATED, purged));
    const purge = event(2, PromptEventType.PURGED, purged);
    expect(await applyPromptEvent(db, purge)).toBe("applied");
    expect(await applyPromptEvent(db, purge)).toBe("skipped");
    // An older event redelivered after a newer one is skipped too.
    expect(await applyPromptEvent(db, event(1, PromptEventType.CREATED, purged))).toBe("skipped");

    expect(await count(db, `SELECT count(*) AS n FROM evaluations WHERE prompt_id = '${purged}'`)).toBe(0);
    expect(await count(db, "SELECT count(*) AS n FROM test_results")).toBe(8); // the kept prompt's, by cascade only those
    expect(await count(db, `SELECT count(*) AS n FROM evaluations WHERE prompt_id = '${kept}'`)).toBe(2);
    expect(
      await count(
        db,
        `SELECT count(*) AS n FROM audit_log WHERE action = 'evaluation.purge_cascade' AND resource_id = '${purged}'`,
      ),
    ).toBe(1);
    const offset = await db.client.execute("SELECT * FROM consumer_offsets");
    expect(offset.rows).toHaveLength(1);
    expect(offset.rows[0]).toMatchObject({
      name: promptEventsConsumerName,
      last_applied_sequence: 2,
      last_seen_sequence: 2,
    });
    expect(
      await count(
        db,
        `SELECT count(*) AS n FROM prompt_tombstones WHERE prompt_id = '${purged}' AND state = 'purged'`,
      ),
    ).toBe(1);
  });

  it("DELETED sets and RESTORED clears the soft-delete tombstone, one audit row each", async () => {
    const { db } = await openTestDatabase();
    const p = uuidv7();
    await applyPromptEvent(db, event(1, PromptEventType.DELETED, p));
    expect(
      await count(
        db,
        `SELECT count(*) AS n FROM prompt_tombstones WHERE prompt_id = '${p}' AND state = 'deleted'`,
      ),
    ).toBe(1);
    await applyPromptEvent(db, event(2, PromptEventType.RESTORED, p));
    expect(await count(db, "SELECT count(*) AS n FROM prompt_tombstones")).toBe(0);
    expect(await count(db, "SELECT count(*) AS n FROM audit_log")).toBe(2);
  });
});

describe("applyPromptEvent across projects", () => {
  it("applies PURGED events of two team projects and a personal one, each only in its own project", async () => {
    const { db } = await openTestDatabase();
    const [a, g, personal, legacy] = [uuidv7(), uuidv7(), uuidv7(), uuidv7()];
    await seedEvaluations(db, a, 3, 2, "acme");
    await seedEvaluations(db, g, 2, 2, "globex");
    await seedEvaluations(db, personal, 1, 2, "user:alice");
    await seedEvaluations(db, legacy, 1, 1, "user:bob");
    // The same prompt id under another project (only ad-hoc SQL can do that): a purge in acme leaves it alone.
    await seedEvaluations(db, a, 1, 1, "globex");
    const left = (project: string, promptId: string) =>
      count(
        db,
        `SELECT count(*) AS n FROM evaluations WHERE project_id = '${project}' AND prompt_id = '${promptId}'`,
      );

    expect(
      await applyPromptEvent(db, event(1, PromptEventType.PURGED, a, { project: "acme", ownerId: "carol" })),
    ).toBe("applied");
    expect(await left("acme", a)).toBe(0);
    expect(await left("globex", a)).toBe(1);
    expect(await left("globex", g)).toBe(2);
    await applyPromptEvent(db, event(2, PromptEventType.PURGED, g, { project: "globex", ownerId: "dave" }));
    expect(await left("globex", g)).toBe(0);
    await applyPromptEvent(db, event(3, PromptEventType.PURGED, personal));
    expect(await left("user:alice", personal)).toBe(0);
    // An event from a producer without projects (no project): its owner's personal project.
    await applyPromptEvent(db, event(4, PromptEventType.PURGED, legacy, { project: "", ownerId: "bob" }));
    expect(await left("user:bob", legacy)).toBe(0);

    expect(await count(db, "SELECT count(*) AS n FROM evaluations")).toBe(1);
    expect(await count(db, "SELECT count(*) AS n FROM test_results")).toBe(1); // the cascade took the others
    const audit = await db.client.execute(
      "SELECT resource_id FROM audit_log WHERE action = 'evaluation.purge_cascade' ORDER BY seq",
    );
    expect(audit.rows.map((r) => r.resource_id)).toEqual([a, g, personal, legacy]);
    expect(await count(db, "SELECT count(*) AS n FROM prompt_tombstones WHERE state = 'purged'")).toBe(4);
  });
});

describe("the consumer against a real prompt-service", () => {
  it("follows WatchPromptEvents: a PURGE removes that prompt's evaluations and results, no others; lag is visible", async () => {
    const svc = await startServices({ consumer: true });
    const doomed = await createPrompt(svc.alicePrompts, 1, "doomed");
    const kept = await createPrompt(svc.alicePrompts, 1, "kept");
    const ids: Record<string, string> = {};
    for (const p of [doomed, kept]) {
      const e = must(
        (await svc.alice.createEvaluation({ promptId: p.id, provider: "p", model: "m" })).evaluation,
      );
      await svc.alice.startEvaluation({ id: e.id });
      await svc.alice.recordTestResults({ evaluationId: e.id, results: [result(1), result(2)] });
      ids[p.id] = e.id;
    }
    await svc.alicePrompts.purgePrompt({ id: doomed.id });
    await pollUntil(async () => (await count(svc.db, "SELECT count(*) AS n FROM evaluations")) === 1);
    await expectCode(svc.alice.getEvaluation({ id: must(ids[doomed.id]) }), C.NotFound);
    expect((await svc.alice.getEvaluation({ id: must(ids[kept.id]) })).evaluation?.testCount).toBe(2);
    expect(await count(svc.db, "SELECT count(*) AS n FROM test_results")).toBe(2);
    // A new evaluation of the purged prompt is refused (prompt-service: NOT_FOUND; tombstone too).
    await expectCode(
      svc.alice.createEvaluation({ promptId: doomed.id, provider: "p", model: "m" }),
      C.NotFound,
    );

    const service = await feedToken();
    const feed = await svc.promptClient.listPromptEvents(
      { afterSequence: 0n, pageSize: 1000, project: "" },
      { token: service, deadline: Date.now() + 5_000 },
    );
    await pollUntil(async () => {
      const stats = await svc.admin.getDatabaseStats({});
      const c = stats.consumers.find((x) => x.name === promptEventsConsumerName);
      return c?.lastAppliedSequence === feed.lastSequence && c.lag === 0n;
    });
    expect(svc.consumer?.status).toMatchObject({ mode: "watching", lag: 0 });
  });

  it("reads every project's feed (all-projects token): purges in a team project and a personal one both cascade", async () => {
    const svc = await startServices({ consumer: true });
    const carolPrompts = await svc.promptsAs({ sub: "carol", projects: { acme: "admin" } });
    const carol = await svc.evaluationsAs({ sub: "carol", projects: { acme: "admin" } });
    const doomedTeam = await createPrompt(carolPrompts, 1, "team-doomed", "acme");
    const keptTeam = await createPrompt(carolPrompts, 1, "team-kept", "acme");
    const doomedOwn = await createPrompt(svc.alicePrompts, 1, "own-doomed");
    const ids: Record<string, string> = {};
    for (const [client, prompt, project] of [
      [carol, doomedTeam, "acme"],
      [carol, keptTeam, "acme"],
      [svc.alice, doomedOwn, ""],
    ] as const) {
      const e = must(
        (await client.createEvaluation({ promptId: prompt.id, provider: "p", model: "m", project }))
          .evaluation,
      );
      await client.startEvaluation({ id: e.id, project });
      await client.recordTestResults({ evaluationId: e.id, results: [result(1), result(2)], project });
      ids[prompt.id] = e.id;
    }
    await carolPrompts.purgePrompt({ id: doomedTeam.id, project: "acme" });
    await svc.alicePrompts.purgePrompt({ id: doomedOwn.id });
    await pollUntil(async () => (await count(svc.db, "SELECT count(*) AS n FROM evaluations")) === 1);
    await expectCode(carol.getEvaluation({ id: must(ids[doomedTeam.id]), project: "acme" }), C.NotFound);
    await expectCode(svc.alice.getEvaluation({ id: must(ids[doomedOwn.id]) }), C.NotFound);
    expect(
      (await carol.getEvaluation({ id: must(ids[keptTeam.id]), project: "acme" })).evaluation?.testCount,
    ).toBe(2);
    expect(await count(svc.db, "SELECT count(*) AS n FROM test_results")).toBe(2);
  });

  it("resumes after its stored offset when started again, applying what it missed exactly once", async () => {
    const svc = await startServices({ consumer: true });
    const a = await createPrompt(svc.alicePrompts, 1, "a");
    await pollUntil(() => (svc.consumer?.status.lastAppliedSequence ?? 0) >= 1);
    await svc.consumer?.stop();
    expect(svc.consumer?.status.mode).toBe("stopped");
    await seedEvaluations(svc.db, a.id, 2, 3);
    await svc.alicePrompts.purgePrompt({ id: a.id });
    expect(await count(svc.db, "SELECT count(*) AS n FROM evaluations")).toBe(2); // nobody listening
    svc.consumer?.start();
    await pollUntil(async () => (await count(svc.db, "SELECT count(*) AS n FROM evaluations")) === 0);
    expect(
      await count(svc.db, "SELECT count(*) AS n FROM audit_log WHERE action = 'evaluation.purge_cascade'"),
    ).toBe(1);
  });

  it("saves the offset of events without an effect lazily: few writes, and the offset still reaches the feed's end", async () => {
    const svc = await startServices();
    const { db } = svc;
    const writes = { count: 0 };
    const counted: Database<Schema> = Object.create(db, {
      write: {
        value: (...args: Parameters<Database<Schema>["write"]>) => {
          writes.count++;
          return db.write(...args);
        },
      },
    });
    const token = await feedToken();
    const consumer = createPromptEventConsumer({
      db: counted,
      prompts: svc.promptClient,
      token: async () => token,
      logger: pino({ level: "silent" }),
      offsetFlushEvery: 50,
      offsetFlushAfterMs: 20,
    });
    for (let i = 0; i < 120; i++) await createPrompt(svc.alicePrompts, 1, `p${i}`); // 120 CREATED events
    const offset = async () =>
      Number(
        (await db.client.execute(`SELECT last_applied_sequence AS n FROM consumer_offsets`)).rows[0]?.n ?? 0,
      );
    consumer.start();
    try {
      await pollUntil(async () => (await offset()) === 120);
      // 120 events, but only a handful of offset writes (every 50, then once idle) instead of 120
      expect(writes.count).toBeLessThanOrEqual(5);
      const purged = await createPrompt(svc.alicePrompts, 1, "gone"); // 121
      await seedEvaluations(db, purged.id, 1, 1);
      await svc.alicePrompts.purgePrompt({ id: purged.id }); // 122, with an effect: saved with it
      await pollUntil(async () => (await offset()) === 122);
      expect(await count(db, "SELECT count(*) AS n FROM evaluations")).toBe(0);
    } finally {
      await consumer.stop();
    }
  });

  it("falls back to polling ListPromptEvents when WatchPromptEvents is unavailable (UNIMPLEMENTED)", async () => {
    const svc = await startServices();
    const { db } = svc;
    const noWatch: PromptClient = {
      getPrompt: (r, c) => svc.promptClient.getPrompt(r, c),
      listPromptEvents: (r, c) => svc.promptClient.listPromptEvents(r, c),
      setPromptLabel: (r, c) => svc.promptClient.setPromptLabel(r, c),
      watchPromptEvents: () => {
        throw new ConnectError("no streaming here", Code.Unimplemented);
      },
      get breakerState() {
        return svc.promptClient.breakerState;
      },
      close() {},
    };
    const token = await feedToken();
    const consumer = createPromptEventConsumer({
      db,
      prompts: noWatch,
      token: async () => token,
      logger: pino({ level: "silent" }),
      initialDelayMs: 10,
      maxDelayMs: 20,
      pollIntervalMs: 20,
    });
    consumer.start();
    try {
      const p = await createPrompt(svc.alicePrompts);
      await seedEvaluations(db, p.id, 1, 1);
      await svc.alicePrompts.purgePrompt({ id: p.id });
      await pollUntil(async () => (await count(db, "SELECT count(*) AS n FROM evaluations")) === 0);
      await pollUntil(() => consumer.status.mode === "polling");
    } finally {
      await consumer.stop();
    }
  });
});
