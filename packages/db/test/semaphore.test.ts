import { describe, expect, it } from "vitest";
import { createSemaphore } from "../src/index.js";

describe("createSemaphore", () => {
  it("grants permits in FIFO order and counts the waiting callers", async () => {
    const mutex = createSemaphore(1);
    const order: number[] = [];
    const first = await mutex.acquire();
    const waiters = [1, 2, 3].map((n) =>
      mutex.acquire().then((release) => {
        order.push(n);
        release();
      }),
    );
    expect({ waiting: mutex.waiting, active: mutex.active }).toEqual({ waiting: 3, active: 1 });
    first();
    first(); // a second release of the same permit is ignored
    await Promise.all(waiters);
    expect(order).toEqual([1, 2, 3]);
    expect({ waiting: mutex.waiting, active: mutex.active }).toEqual({ waiting: 0, active: 0 });
  });

  it("removes an aborted waiter from the queue", async () => {
    const mutex = createSemaphore(1);
    const held = await mutex.acquire();
    const controller = new AbortController();
    const waiting = mutex.acquire(controller.signal);
    controller.abort(new Error("gone"));
    await expect(waiting).rejects.toThrow("gone");
    expect(mutex.waiting).toBe(0);
    held();
    expect(mutex.active).toBe(0);
    await expect(mutex.acquire(controller.signal)).rejects.toThrow("gone");
  });
});
