import { describe, expect, it } from "vitest";
import { createSyncAfterWrite } from "../src/replica-sync.js";

/** A sync whose runs are settled by hand, recording when each started. */
function manualSync() {
  const runs: { settle: (err?: Error) => void; startedAfter: number }[] = [];
  let calls = 0;
  return {
    runs,
    markCall: () => ++calls,
    sync: () =>
      new Promise<void>((resolve, reject) => {
        runs.push({ settle: (err) => (err ? reject(err) : resolve()), startedAfter: calls });
      }),
  };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("sync after a replica's write", () => {
  it("each caller waits for a sync that started after its call; concurrent callers share the next one", async () => {
    const m = manualSync();
    const syncAfterWrite = createSyncAfterWrite(m.sync, undefined);
    const done: string[] = [];
    m.markCall();
    const a = syncAfterWrite().then(() => done.push("a"));
    expect(m.runs).toHaveLength(1);
    m.markCall();
    const b = syncAfterWrite().then(() => done.push("b"));
    m.markCall();
    const c = syncAfterWrite().then(() => done.push("c"));
    expect(m.runs).toHaveLength(1); // b and c wait for the next one, not the running one

    m.runs[0]?.settle();
    await a;
    await tick();
    expect(done).toEqual(["a"]);
    expect(m.runs).toHaveLength(2);
    expect(m.runs[1]?.startedAfter).toBe(3); // after c's call
    m.runs[1]?.settle();
    await Promise.all([b, c]);
    expect(done).toEqual(["a", "b", "c"]);
    expect(m.runs).toHaveLength(2); // three commits, two syncs
  });

  it("a failed sync is logged, not thrown: the write it follows is committed", async () => {
    const m = manualSync();
    const warnings: unknown[] = [];
    const syncAfterWrite = createSyncAfterWrite(m.sync, { warn: (obj: unknown) => warnings.push(obj) });
    const a = syncAfterWrite();
    m.runs[0]?.settle(new Error("primary gone"));
    await expect(a).resolves.toBeUndefined();
    expect(warnings).toHaveLength(1);
    // and the next caller gets a fresh sync
    const b = syncAfterWrite();
    expect(m.runs).toHaveLength(2);
    m.runs[1]?.settle();
    await expect(b).resolves.toBeUndefined();
  });
});
