import { EvaluationStatus } from "@autoforge/contracts/evaluation/v1";
import { describe, expect, it } from "vitest";
import {
  Code,
  ConnectError,
  clients,
  must,
  pollUntil,
  startEvaluationService,
  startPromptService,
  tempDir,
} from "./harness.js";

type AdminClient = Awaited<ReturnType<ReturnType<typeof clients>["admin"]>>;

/** Every page of the owner's evaluations (ids). */
async function allEvaluationIds(
  list: (token: string) => Promise<{ evaluations: { id: string }[]; nextPageToken: string }>,
) {
  const ids: string[] = [];
  let token = "";
  do {
    const page = await list(token);
    ids.push(...page.evaluations.map((e) => e.id));
    token = page.nextPageToken;
  } while (token !== "");
  return ids;
}

/** Every audit event written by the event consumer (paged). */
async function consumerAuditEvents(admin: AdminClient) {
  const events: { action: string; resourceId: string }[] = [];
  let pageToken = "";
  do {
    const page = await admin.listAuditEvents({ actor: "consumer:prompt-events", pageSize: 100, pageToken });
    events.push(...page.events.map((e) => ({ action: e.action, resourceId: e.resourceId })));
    pageToken = page.nextPageToken;
  } while (pageToken !== "");
  return events;
}

async function consumerOffset(admin: AdminClient): Promise<bigint> {
  const stats = await admin.getDatabaseStats({});
  return stats.consumers.find((c) => c.name === "prompt-events")?.lastAppliedSequence ?? 0n;
}

describe("faults", () => {
  it("prompt-service SIGKILLed while evaluations are created: UNAVAILABLE within the deadline, nothing half-written; works again after its restart", async () => {
    const dir = tempDir();
    let prompts = await startPromptService(dir);
    const promptPort = prompts.grpcPort;
    const evaluations = await startEvaluationService(dir, prompts.url);
    const alicePrompts = await clients(prompts.url).prompts("alice");
    const alice = await clients(evaluations.url).evaluations("alice");
    const admin = await clients(evaluations.url).admin();
    const prompt = must((await alicePrompts.createPrompt({ title: "t", content: "c" })).prompt);

    const created = new Set<string>();
    const failures: ConnectError[] = [];
    let stop = false;
    // Four concurrent creators, each call with a 3 s deadline.
    const creators = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        try {
          const e = must(
            (
              await alice.createEvaluation(
                { promptId: prompt.id, provider: "p", model: "m", requestId: `w${w}-${i}` },
                { timeoutMs: 3_000 },
              )
            ).evaluation,
          );
          created.add(e.id);
        } catch (e) {
          failures.push(e instanceof ConnectError ? e : ConnectError.from(e));
        }
      }
    });
    await pollUntil(() => created.size >= 20, 20_000, "some evaluations created");
    await prompts.kill("SIGKILL");
    await pollUntil(() => failures.length >= 12, 30_000, "creations failing");
    stop = true;
    await Promise.all(creators);

    // Every failure is UNAVAILABLE naming the dependency: the deadline was never reached.
    expect(failures.length).toBeGreaterThanOrEqual(12);
    for (const f of failures) {
      expect(Code[f.code], f.rawMessage).toBe("Unavailable");
      expect(f.rawMessage).toMatch(/^prompt-service unavailable: /);
    }
    // Nothing half-written: the stored evaluations are exactly the successful answers, one audit row each.
    const stored = await allEvaluationIds((pageToken) => alice.listEvaluations({ pageSize: 100, pageToken }));
    expect(new Set(stored)).toEqual(created);
    const stats = await admin.getDatabaseStats({});
    expect(stats.objects.find((o) => o.name === "evaluations")?.rowCount).toBe(BigInt(created.size));
    expect(stats.objects.find((o) => o.name === "audit_log")?.rowCount).toBe(BigInt(created.size));

    // prompt-service back on the same port and database: evaluation-service recovers without a restart.
    prompts = await startPromptService(dir, promptPort);
    let recovered: string | undefined;
    await pollUntil(
      async () => {
        try {
          recovered = (
            await alice.createEvaluation(
              { promptId: prompt.id, provider: "p", model: "m" },
              { timeoutMs: 3_000 },
            )
          ).evaluation?.id;
          return true;
        } catch (e) {
          expect(Code[ConnectError.from(e).code]).toBe("Unavailable");
          return false;
        }
      },
      20_000,
      "creation works again",
    );
    expect((await alice.getEvaluation({ id: must(recovered) })).evaluation?.status).toBe(
      EvaluationStatus.PENDING,
    );
    expect(evaluations.child.exitCode).toBeNull();
  }, 90_000);

  it("evaluation-service SIGKILLed while 200 prompts are purged, then restarted: each purge applied exactly once, no other evaluation touched", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    let evaluations = await startEvaluationService(dir, prompts.url);
    const promptApi = clients(prompts.url);
    const alicePrompts = await promptApi.prompts("alice");
    const feed = await promptApi.feed();
    let alice = await clients(evaluations.url).evaluations("alice");

    // 220 prompts with one evaluation each; every 10th evaluation also has 3 results. 200 get purged.
    const purged: string[] = [];
    const kept: string[] = [];
    const keptEvaluations = new Set<string>();
    const created = await Promise.all(
      Array.from({ length: 220 }, async (_, i) => {
        const p = must((await alicePrompts.createPrompt({ title: `p${i}`, content: "c" })).prompt);
        const e = must(
          (await alice.createEvaluation({ promptId: p.id, provider: "p", model: "m" })).evaluation,
        );
        if (i % 10 === 0) {
          await alice.startEvaluation({ id: e.id });
          await alice.recordTestResults({
            evaluationId: e.id,
            results: [0, 1, 2].map((r) => ({ name: `t${r}`, passed: true, score: 0.5, latencyMs: 5n })),
          });
        }
        return { i, prompt: p.id, evaluation: e.id };
      }),
    );
    for (const c of created) {
      if (c.i % 11 === 5) {
        kept.push(c.prompt);
        keptEvaluations.add(c.evaluation);
      } else if (purged.length < 200) {
        purged.push(c.prompt);
      } else {
        kept.push(c.prompt);
        keptEvaluations.add(c.evaluation);
      }
    }
    expect(purged).toHaveLength(200);
    const keptResults = created.filter((c) => keptEvaluations.has(c.evaluation) && c.i % 10 === 0).length * 3;

    let admin = await clients(evaluations.url).admin();
    const before = (await feed.listPromptEvents({ pageSize: 1 })).lastSequence;
    await pollUntil(async () => (await consumerOffset(admin)) === before, 20_000, "consumer caught up");

    // Purge 200 prompts (4 at a time); SIGKILL evaluation-service once it has applied ~40 of them.
    let next = 0;
    const purging = Promise.all(
      Array.from({ length: 4 }, async () => {
        while (next < purged.length) {
          const id = must(purged[next++]);
          await alicePrompts.purgePrompt({ id });
        }
      }),
    );
    let observed = 0n;
    await pollUntil(
      async () => {
        observed = await consumerOffset(admin);
        return observed >= before + 40n;
      },
      20_000,
      "some purges applied",
    );
    await evaluations.kill("SIGKILL");
    await purging;
    const last = (await feed.listPromptEvents({ pageSize: 1 })).lastSequence;
    expect(last).toBe(before + 200n);
    expect(observed, "killed while purges were still being applied").toBeLessThan(last);

    // Restart on the same database (any port): it resumes after its stored offset.
    evaluations = await startEvaluationService(dir, prompts.url);
    admin = await clients(evaluations.url).admin();
    alice = await clients(evaluations.url).evaluations("alice");
    await pollUntil(
      async () => (await consumerOffset(admin)) === last,
      30_000,
      "consumer caught up after restart",
    );

    const stats = await admin.getDatabaseStats({});
    expect(stats.consumers[0]).toMatchObject({ name: "prompt-events", lastAppliedSequence: last, lag: 0n });
    const remaining = await allEvaluationIds((pageToken) =>
      alice.listEvaluations({ pageSize: 100, pageToken }),
    );
    expect(new Set(remaining)).toEqual(keptEvaluations);
    expect(stats.objects.find((o) => o.name === "test_results")?.rowCount).toBe(BigInt(keptResults));

    // Exactly one purge audit row per purged prompt, none for the others.
    const audit = (await consumerAuditEvents(admin)).filter((e) => e.action === "evaluation.purge_cascade");
    expect(audit).toHaveLength(200);
    expect(new Set(audit.map((e) => e.resourceId))).toEqual(new Set(purged));
    expect((await admin.verifyAuditChain({})).ok).toBe(true);
    expect(kept.length).toBe(20);
  }, 120_000);
});
