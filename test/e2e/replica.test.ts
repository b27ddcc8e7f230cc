/**
 * prompt-service as a process on an embedded replica of a real sqld primary (#12, findings 1 and 2): the primary
 * killed and restarted during writes leaves the local copy intact and every acknowledged write readable through
 * the replica; with the primary stopped (SIGSTOP: it keeps its sockets and answers nothing) reads are answered
 * from the local file and the process stays responsive (/healthz), while a write waits.
 */
import { join } from "node:path";
import Database from "libsql";
import { expect, it } from "vitest";
import { restartablePrimary } from "../../packages/db/test/replica-primary.js";
import { describeWithSqld } from "../support/sqld.js";
import { clients, must, pollUntil, startService, tempDir } from "./harness.js";

/** `PRAGMA integrity_check` of a file no process has open any more ("ok", or what is wrong). */
function integrityOf(path: string): string {
  const file = new Database(path);
  try {
    const rows = file.prepare("PRAGMA integrity_check").raw(true).all() as unknown[][];
    return rows.map((row) => String(row[0])).join("; ");
  } catch (err) {
    return String(err);
  } finally {
    file.close();
  }
}

async function status(url: string): Promise<number> {
  const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
  await response.arrayBuffer();
  return response.status;
}

describeWithSqld("prompt-service on an embedded replica", () => {
  it("replica: primary restarted during writes x 5, then every acknowledged write readable through the replica and the file intact", async () => {
    const primary = await restartablePrimary();
    const path = join(tempDir(), "replica.db");
    const service = await startService("prompt-service", {
      DATABASE_URL: `file:${path}`,
      DATABASE_SYNC_URL: primary.url,
      // the periodic sync runs through every outage and restart
      DATABASE_SYNC_INTERVAL_MS: "200",
    });
    const prompts = await clients(service.url).prompts("alice");

    const acknowledged: string[] = [];
    let running = true;
    let n = 0;
    const writer = (async () => {
      while (running) {
        n++;
        try {
          const created = await prompts.createPrompt(
            { title: `prompt ${n}`, content: `Summarise {{text}} (${n})`, name: `prompt-${n}` },
            { timeoutMs: 5_000 },
          );
          acknowledged.push(must(created.prompt).id);
        } catch {
          // the primary is down: not acknowledged, so nothing is owed (the codes of such failures are the
          // primary-outage test's subject)
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    })();

    for (let restart = 0; restart < 5; restart++) {
      const before = acknowledged.length;
      await pollUntil(
        () => acknowledged.length >= before + 5,
        30_000,
        `writes before restart ${restart + 1}`,
      );
      await primary.kill("SIGKILL");
      await new Promise((resolve) => setTimeout(resolve, 300));
      await primary.restart();
    }
    const afterLast = acknowledged.length;
    await pollUntil(() => acknowledged.length >= afterLast + 10, 30_000, "writes after the last restart");
    running = false;
    await writer;

    const missing: string[] = [];
    for (const id of acknowledged) {
      try {
        await prompts.getPrompt({ id }, { timeoutMs: 5_000 });
      } catch {
        missing.push(id);
      }
    }
    expect(missing).toEqual([]);
    expect(service.logs.filter((line) => /malformed|SQLITE_CORRUPT/.test(line))).toEqual([]);
    await service.kill("SIGTERM");
    expect(integrityOf(path)).toBe("ok");
  }, 180_000);

  it("replica: reads answered from the local file with the primary SIGSTOPped (no DEADLINE_EXCEEDED), /healthz answers while a write waits", async () => {
    const primary = await restartablePrimary();
    const service = await startService("prompt-service", {
      DATABASE_URL: `file:${join(tempDir(), "replica.db")}`,
      DATABASE_SYNC_URL: primary.url,
    });
    const prompts = await clients(service.url).prompts("alice");
    const prompt = must((await prompts.createPrompt({ title: "t", content: "Hello {{name}}" })).prompt);

    primary.pause();
    try {
      // a write now waits for the primary (its call stays open until the deadline)
      const stuck = prompts.createPrompt({ title: "during", content: "x" }, { timeoutMs: 4_000 });
      stuck.catch(() => undefined);
      for (let i = 0; i < 20; i++) {
        const got = await prompts.getPrompt({ id: prompt.id }, { timeoutMs: 1_000 });
        expect(must(got.prompt).id).toBe(prompt.id);
        expect(await status(`http://127.0.0.1:${service.connectPort}/healthz`)).toBe(200);
      }
      const listed = await prompts.listPrompts({}, { timeoutMs: 1_000 });
      expect(listed.prompts.map((p) => p.id)).toContain(prompt.id);
    } finally {
      primary.resume();
    }
    // and writes go through again once the primary answers
    await pollUntil(
      async () => {
        try {
          await prompts.createPrompt({ title: "after", content: "y" }, { timeoutMs: 2_000 });
          return true;
        } catch {
          return false;
        }
      },
      20_000,
      "a write after SIGCONT",
    );
  }, 90_000);
});
