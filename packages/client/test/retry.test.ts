import { AdminService } from "@autoforge/contracts/admin/v1";
import { EvaluationService } from "@autoforge/contracts/evaluation/v1";
import { DatasetService } from "@autoforge/contracts/evaluation/v1/datasets";
import { PromotionService } from "@autoforge/contracts/evaluation/v1/promotions";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { DurationSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createContextValues } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import {
  createAutoforgeClient,
  generatedRequestIdKey,
  type RetryEvent,
  type RetryOptions,
  retryClass,
  withoutRequestId,
} from "../src/index.js";
import { type Attempt, fakeTransport, type Respond } from "./fake-transport.js";

const fast: RetryOptions = { initialDelayMs: 1, maxDelayMs: 2 };
const uuidV7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

function setup(respond: Respond, retry: RetryOptions | false = fast, timeoutMs?: number) {
  const transport = fakeTransport(respond);
  const client = createAutoforgeClient({
    transport,
    token: "t0ken",
    retry,
    ...(timeoutMs === undefined ? {} : { timeoutMs }),
  });
  return { transport, client };
}

/** Fails the first `n` attempts of every method with `code`, then answers {}. */
function failFirst(n: number, code: Code): Respond {
  return (_attempt: Attempt, i: number) => {
    if (i <= n) throw new ConnectError(`attempt ${i} failed`, code);
    return {};
  };
}

async function failure(call: Promise<unknown>): Promise<ConnectError> {
  try {
    await call;
  } catch (e) {
    expect(e).toBeInstanceOf(ConnectError);
    return e as ConnectError;
  }
  throw new Error("expected the call to fail");
}

describe("which methods are retried (from the descriptors)", () => {
  it("classifies every method of the five services", () => {
    const table: Record<string, string> = {};
    for (const service of [
      PromptService,
      EvaluationService,
      DatasetService,
      PromotionService,
      AdminService,
    ]) {
      for (const m of service.methods) table[`${service.name}.${m.name}`] = retryClass(m);
    }
    const byClass = (c: string) =>
      Object.entries(table)
        .filter(([, v]) => v === c)
        .map(([k]) => k)
        .sort();
    expect(byClass("keyed-create")).toEqual([
      "DatasetService.CreateDataset",
      "DatasetService.CreateDatasetVersion",
      "EvaluationService.CreateEvaluation",
      "EvaluationService.RecordTestResults",
      "PromptService.CreatePrompt",
      "PromptService.CreatePromptTemplate",
    ]);
    expect(byClass("never")).toEqual([
      "DatasetService.UploadDatasetItems",
      "EvaluationService.CompleteEvaluation",
      "EvaluationService.ExportTestResults",
      "EvaluationService.FailEvaluation",
      "EvaluationService.StartEvaluation",
      "EvaluationService.StreamTestResults",
      "PromotionService.PromotePromptVersion",
      "PromptService.PurgePrompt",
      "PromptService.UpdatePrompt",
      "PromptService.WatchPromptEvents",
    ]);
    expect(byClass("idempotent")).toEqual([
      "AdminService.RunMaintenance",
      "PromotionService.SetPromotionPolicy",
      "PromptService.DeletePrompt",
      "PromptService.RemovePromptLabel",
      "PromptService.RestorePrompt",
      "PromptService.SetPromptLabel",
      "PromptService.UpdateProjectSettings",
    ]);
    expect(byClass("read")).toContain("PromptService.GetPrompt");
    expect(byClass("read")).toContain("AdminService.ListAuditEvents");
    expect(byClass("read")).toHaveLength(Object.keys(table).length - 23);
  });
});

describe("retry rules (fake transport: attempts counted per method and code)", () => {
  it("a read is retried on UNAVAILABLE and RESOURCE_EXHAUSTED, and succeeds", async () => {
    for (const code of [Code.Unavailable, Code.ResourceExhausted]) {
      const { transport, client } = setup(failFirst(2, code));
      await client.promptService.getPrompt({ name: "checkout-greeting" });
      expect(transport.count("GetPrompt")).toBe(3);
    }
  });

  it("an idempotent write is retried on UNAVAILABLE", async () => {
    const { transport, client } = setup(failFirst(1, Code.Unavailable));
    await client.promptService.deletePrompt({ id: "p1" });
    await client.promptService.setPromptLabel({ id: "p1", label: "production", version: 2 });
    expect(transport.count("DeletePrompt")).toBe(2);
    expect(transport.count("SetPromptLabel")).toBe(2);
  });

  it("gives up after maxAttempts and rethrows the last error as it came (code, message, metadata, details)", async () => {
    const { transport, client } = setup((_a, i) => {
      const e = new ConnectError(`down ${i}`, Code.Unavailable, { "x-attempt": String(i) });
      e.details = [{ desc: DurationSchema, value: { seconds: BigInt(i) } }];
      throw e;
    });
    const err = await failure(client.promptService.getPrompt({ name: "x" }));
    expect(transport.count("GetPrompt")).toBe(4);
    expect(err.code).toBe(Code.Unavailable);
    expect(err.rawMessage).toBe("down 4");
    expect(err.metadata.get("x-attempt")).toBe("4");
    expect(err.findDetails(DurationSchema).map((d) => d.seconds)).toEqual([4n]);
  });

  it("never retries other codes", async () => {
    for (const code of [
      Code.Internal,
      Code.Unknown,
      Code.NotFound,
      Code.Aborted,
      Code.FailedPrecondition,
      Code.PermissionDenied,
      Code.Unauthenticated,
      Code.InvalidArgument,
    ]) {
      const { transport, client } = setup(failFirst(1, code));
      expect((await failure(client.promptService.getPrompt({ name: "x" }))).code).toBe(code);
      expect(transport.count("GetPrompt")).toBe(1);
    }
  });

  it("never retries a write that is neither idempotent nor keyed", async () => {
    const { transport, client } = setup(failFirst(1, Code.Unavailable));
    await failure(client.promptService.updatePrompt({ id: "p1", title: "t" }));
    await failure(client.promptService.purgePrompt({ id: "p1" }));
    await failure(client.evaluationService.startEvaluation({ id: "e1" }));
    await failure(client.evaluationService.completeEvaluation({ id: "e1" }));
    expect(transport.attempts.map((a) => a.method.name)).toEqual([
      "UpdatePrompt",
      "PurgePrompt",
      "StartEvaluation",
      "CompleteEvaluation",
    ]);
  });

  it("a create without request_id gets a generated UUIDv7 before the first attempt; every retry sends the same", async () => {
    const { transport, client } = setup(failFirst(2, Code.Unavailable));
    const request = { title: "t", content: "c" };
    const contextValues = createContextValues();
    await client.promptService.createPrompt(request, { contextValues });
    const keys = transport.attempts.map((a) => a.input.requestId);
    expect(keys).toHaveLength(3);
    expect(new Set(keys).size).toBe(1);
    expect(keys[0]).toMatch(uuidV7);
    expect(contextValues.get(generatedRequestIdKey)).toBe(keys[0]);
    expect(request).toEqual({ title: "t", content: "c" }); // the caller's object is not changed

    // A second logical call gets a new key.
    await client.promptService.createPrompt(request);
    expect(transport.attempts.at(-1)?.input.requestId).not.toBe(keys[0]);
  });

  it("a create keeps the caller's request_id and is retried with it", async () => {
    const { transport, client } = setup(failFirst(1, Code.Unavailable));
    await client.evaluationService.createEvaluation({
      promptId: "p",
      provider: "x",
      model: "m",
      requestId: "mine",
    });
    await client.evaluationService.recordTestResults({ evaluationId: "e", requestId: "batch-1" });
    expect(transport.attempts.map((a) => [a.method.name, a.input.requestId])).toEqual([
      ["CreateEvaluation", "mine"],
      ["CreateEvaluation", "mine"],
      ["RecordTestResults", "batch-1"],
      ["RecordTestResults", "batch-1"],
    ]);
  });

  it("a create whose request_id the caller suppressed is sent once, without a key, and never retried", async () => {
    const { transport, client } = setup(failFirst(5, Code.Unavailable));
    const err = await failure(
      client.promptService.createPrompt({ title: "t", content: "c" }, { contextValues: withoutRequestId() }),
    );
    expect(err.code).toBe(Code.Unavailable);
    expect(transport.count("CreatePrompt")).toBe(1);
    expect(transport.attempts[0]?.input.requestId).toBe("");
  });

  it("generateRequestIds: false: keyless creates are not retried, keyed ones still are", async () => {
    const { transport, client } = setup(failFirst(1, Code.Unavailable), {
      ...fast,
      generateRequestIds: false,
    });
    await failure(client.promptService.createPromptTemplate({ name: "t", body: "b" }));
    expect(transport.count("CreatePromptTemplate")).toBe(1);
    await client.promptService.createPromptTemplate({ name: "t", body: "b", requestId: "k" });
    expect(transport.count("CreatePromptTemplate")).toBe(2); // the keyed call: its attempt 1 passed (n = 2)
  });

  it("DEADLINE_EXCEEDED of an attempt is retried for reads only", async () => {
    const read = setup(failFirst(1, Code.DeadlineExceeded));
    await read.client.promptService.getPrompt({ name: "x" });
    expect(read.transport.count("GetPrompt")).toBe(2);

    const writes = setup(failFirst(1, Code.DeadlineExceeded));
    await failure(writes.client.promptService.deletePrompt({ id: "p" }));
    await failure(writes.client.promptService.createPrompt({ title: "t", content: "c" }));
    expect(writes.transport.count("DeletePrompt")).toBe(1);
    expect(writes.transport.count("CreatePrompt")).toBe(1);
  });

  it("server streams are not retried", async () => {
    const { transport, client } = setup(failFirst(1, Code.Unavailable));
    const err = await failure(
      (async () => {
        for await (const _ of client.promptService.watchPromptEvents({})) break;
      })(),
    );
    expect(err.code).toBe(Code.Unavailable);
    expect(transport.count("WatchPromptEvents")).toBe(1);
  });

  it("retry: false sends every call once", async () => {
    const { transport, client } = setup(failFirst(1, Code.Unavailable), false);
    await failure(client.promptService.getPrompt({ name: "x" }));
    expect(transport.count("GetPrompt")).toBe(1);
  });

  it("onRetry reports each retry with the attempt about to run", async () => {
    const events: RetryEvent[] = [];
    const { client } = setup(failFirst(2, Code.Unavailable), { ...fast, onRetry: (e) => events.push(e) });
    await client.adminService.getDatabaseStats({});
    expect(events.map((e) => [e.method.name, e.attempt, e.error.code])).toEqual([
      ["GetDatabaseStats", 2, Code.Unavailable],
      ["GetDatabaseStats", 3, Code.Unavailable],
    ]);
  });
});

describe("the retry budget ends before the call's deadline", () => {
  it("a retry whose backoff would overrun the deadline is not taken: the answer is the last UNAVAILABLE", async () => {
    // Backoffs of up to 150 ms against a 200 ms deadline: the retries stop when one would end < 50 ms before it.
    const { transport, client } = setup(failFirst(100, Code.Unavailable), {
      maxAttempts: 100,
      initialDelayMs: 150,
      maxDelayMs: 150,
    });
    const err = await failure(client.promptService.getPrompt({ name: "x" }, { timeoutMs: 200 }));
    expect(err.code).toBe(Code.Unavailable);
    expect(transport.count("GetPrompt")).toBeLessThan(100);
    // Each attempt is sent with what is left of the deadline, never more.
    const timeouts = transport.attempts.map((a) => a.timeoutMs ?? Number.POSITIVE_INFINITY);
    expect(timeouts[0]).toBeLessThanOrEqual(200);
    for (let i = 1; i < timeouts.length; i++) expect(timeouts[i]).toBeLessThanOrEqual(timeouts[i - 1] ?? 0);
  });

  it("attemptTimeoutMs bounds each attempt; a timed-out read attempt is retried while the deadline has room", async () => {
    const { transport, client } = setup(
      (attempt, i) =>
        i === 1
          ? new Promise((_, reject) =>
              setTimeout(
                () => reject(new ConnectError("attempt timed out", Code.DeadlineExceeded)),
                attempt.timeoutMs,
              ),
            )
          : {},
      { ...fast, attemptTimeoutMs: 50 },
    );
    await client.promptService.getPrompt({ name: "x" }, { timeoutMs: 5_000 });
    expect(transport.attempts.map((a) => a.timeoutMs)).toEqual([50, 50]);
  });

  it("a caller's abort stops the retries", async () => {
    const abort = new AbortController();
    const { transport, client } = setup((_a, i) => {
      if (i === 2) abort.abort();
      throw new ConnectError("down", Code.Unavailable);
    });
    const err = await failure(client.promptService.getPrompt({ name: "x" }, { signal: abort.signal }));
    expect(err.code).toBe(Code.Canceled);
    expect(transport.count("GetPrompt")).toBe(2);
  });
});
