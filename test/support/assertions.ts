/**
 * Assertions shared by the services' tests and the end-to-end tests (imported through each suite's helpers).
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { expect } from "vitest";

/** Awaits a call that must fail with `code`; the message must match `message` when given. */
export async function expectCode(
  call: Promise<unknown>,
  code: Code,
  message?: RegExp | string,
): Promise<ConnectError> {
  let error: unknown;
  try {
    await call;
  } catch (e) {
    error = e;
  }
  expect(error, `expected ${Code[code]}`).toBeInstanceOf(ConnectError);
  const ce = error as ConnectError;
  expect(Code[ce.code], ce.rawMessage).toBe(Code[code]);
  if (message !== undefined) expect(ce.rawMessage).toMatch(message);
  return ce;
}

/** The value, or a test failure saying it was missing (instead of a non-null assertion). */
export function must<T>(value: T | undefined | null, what = "value"): T {
  if (value === undefined || value === null) throw new Error(`expected a ${what}`);
  return value;
}

/** Polls until `condition` holds or the deadline passes (never a fixed sleep). */
export async function pollUntil(
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`${what} not met before the deadline`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
