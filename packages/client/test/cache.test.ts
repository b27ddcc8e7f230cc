import { PromptEventType, PromptKind, VariableType } from "@autoforge/contracts/prompt/v1";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { expectCode, must, pollUntil } from "../../../test/support/assertions.js";
import { createPromptCache, type PromptCache, type PromptCacheOptions } from "../src/cache/index.js";
import { FakePromptService, memoryStore } from "./cache-fake.js";

const open: PromptCache[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

/** A cache over the fake, with counters for every hook and a clock the test moves. */
function setup(options: Partial<PromptCacheOptions> = {}, service = new FakePromptService()) {
  const clock = { now: 1_000_000 };
  service.now = () => clock.now;
  const counts = { hit: 0, miss: 0, stale: [] as string[], lags: [] as number[], states: [] as string[] };
  const cache = createPromptCache({
    client: service.client,
    now: () => clock.now,
    reconnect: { initialDelayMs: 1, maxDelayMs: 5 },
    saveDelayMs: 1,
    ...options,
    hooks: {
      hit: () => counts.hit++,
      miss: () => counts.miss++,
      staleServe: (_name, _project, reason) => counts.stale.push(reason),
      invalidated: (lagMs) => counts.lags.push(lagMs),
      streamState: (state, _project, error) =>
        counts.states.push(error ? `${state}:${Code[error.code]}` : state),
      ...options.hooks,
    },
  });
  open.push(cache);
  return { service, cache, clock, counts };
}

describe("PromptCache: reads", () => {
  it("fetches a key once, then serves it from memory (the same object, no new call)", async () => {
    const { service, cache, counts } = setup();
    service.createPrompt("greeting", { content: "Hello" });
    await cache.fresh();
    const first = await cache.get("greeting");
    expect(first).toMatchObject({ stale: false, source: "network" });
    expect(first.prompt.content).toBe("Hello");
    const second = await cache.get("greeting");
    const third = await cache.get("greeting");
    expect(second).toMatchObject({ stale: false, source: "cache" });
    expect(third).toBe(second);
    expect(service.count("getPrompt")).toBe(1);
    expect(counts).toMatchObject({ hit: 2, miss: 1 });
  });

  it("keys by selector: default, label, version and latest are separate entries, each fetched once", async () => {
    const { service, cache } = setup();
    const id = service.createPrompt("p");
    service.update(id, { content: "v2" });
    service.update(id, { content: "v3" });
    service.setLabel(id, "production", 2);
    await cache.fresh();
    for (let i = 0; i < 3; i++) {
      expect((await cache.get("p")).prompt.version).toBe(2);
      expect((await cache.get("p", { label: "production" })).prompt.version).toBe(2);
      expect((await cache.get("p", { label: "latest" })).prompt.version).toBe(3);
      expect((await cache.get("p", { version: 1 })).prompt.version).toBe(1);
      expect((await cache.get("p", { version: 0, label: "" })).prompt.version).toBe(2);
    }
    expect(service.calls.filter((c) => c.startsWith("getPrompt"))).toEqual([
      "getPrompt p  0",
      "getPrompt p production 0",
      "getPrompt p latest 0",
      "getPrompt p  1",
    ]);
  });

  it("concurrent first reads share one GetPrompt", async () => {
    const { service, cache } = setup();
    service.createPrompt("p");
    await cache.fresh();
    const reads = await Promise.all(Array.from({ length: 10 }, () => cache.get("p")));
    expect(new Set(reads.map((r) => r.prompt.version))).toEqual(new Set([1]));
    expect(service.count("getPrompt")).toBe(1);
  });

  it("refuses version and label together, as the server does", async () => {
    const { service, cache } = setup();
    service.createPrompt("p");
    await expectCode(
      cache.get("p", { version: 1, label: "production" }),
      Code.InvalidArgument,
      /^label: set version or label, not both$/,
    );
    expect(service.count("getPrompt")).toBe(0);
  });

  it("reads of another project use that project (and its own feed)", async () => {
    const { service, cache } = setup();
    service.createPrompt("p", { content: "in acme" });
    service.createPrompt("p", { content: "in beta" }, "beta");
    expect((await cache.get("p")).prompt.content).toBe("in acme");
    expect((await cache.get("p", { project: "beta" })).prompt.content).toBe("in beta");
    await cache.fresh("beta");
    expect(service.calls).toContain("watch 2");
  });
});

describe("PromptCache: the change feed", () => {
  it("starts from the feed's head: no history replay", async () => {
    const service = new FakePromptService();
    const id = service.createPrompt("p");
    service.setLabel(id, "production", 1);
    const { cache, counts } = setup({}, service);
    await cache.fresh();
    expect(service.calls[0]).toBe(`list ${BigInt(Number.MAX_SAFE_INTEGER)}`);
    expect(service.calls).toContain("watch 2");
    expect(counts.lags).toEqual([]);
  });

  it("a label move invalidates the entries of that prompt only; the next get returns the new version", async () => {
    const service = new FakePromptService();
    const a = service.createPrompt("a");
    service.update(a, { content: "a2" });
    service.setLabel(a, "production", 1);
    service.createPrompt("b");
    const { cache, counts } = setup({}, service);
    await cache.fresh();
    expect((await cache.get("a", { label: "production" })).prompt.version).toBe(1);
    expect((await cache.get("a")).prompt.version).toBe(1);
    expect((await cache.get("b")).prompt.version).toBe(1);
    const fetched = service.count("getPrompt");

    service.setLabel(a, "production", 2);
    await cache.fresh();
    expect(counts.lags).toHaveLength(1);
    expect((await cache.get("b")).source).toBe("cache");
    expect(service.count("getPrompt")).toBe(fetched);
    const moved = await cache.get("a", { label: "production" });
    expect(moved).toMatchObject({ source: "network", stale: false });
    expect(moved.prompt.version).toBe(2);
    expect((await cache.get("a")).prompt.version).toBe(2);
    expect(service.count("getPrompt")).toBe(fetched + 2);
  });

  it("a new version, a removed label, a delete and restore, each seen by the next get", async () => {
    const { service, cache } = setup();
    const id = service.createPrompt("p");
    service.setLabel(id, "staging", 1);
    await cache.fresh();
    expect((await cache.get("p", { label: "latest" })).prompt.version).toBe(1);
    expect((await cache.get("p", { label: "staging" })).prompt.version).toBe(1);

    service.update(id, { content: "v2" });
    await cache.fresh();
    expect((await cache.get("p", { label: "latest" })).prompt.content).toBe("v2");

    service.removeLabel(id, "staging");
    await cache.fresh();
    await expectCode(cache.get("p", { label: "staging" }), Code.NotFound);

    service.remove(id);
    await cache.fresh();
    expect((await cache.get("p")).prompt.deleteTime).toBeDefined();
    await expectCode(
      cache.render("p", {}),
      Code.FailedPrecondition,
      `prompt ${id} is deleted: restore it before rendering`,
    );
    service.restore(id);
    await cache.fresh();
    expect((await cache.get("p")).prompt.deleteTime).toBeUndefined();
  });

  it("a rename: the old name stops resolving, the new one resolves", async () => {
    const { service, cache } = setup();
    const id = service.createPrompt("old-name");
    await cache.fresh();
    expect((await cache.get("old-name")).prompt.id).toBe(id);
    service.rename(id, "new-name");
    await cache.fresh();
    await expectCode(cache.get("old-name"), Code.NotFound);
    expect((await cache.get("new-name")).prompt.id).toBe(id);
    // the NOT_FOUND dropped the old entry: nothing to serve for it during an outage
    service.down = true;
    await expectCode(cache.get("old-name"), Code.Unavailable);
  });

  it("a rename onto a cached name invalidates that name's entry too", async () => {
    const { service, cache } = setup();
    const first = service.createPrompt("shared");
    await cache.fresh();
    expect((await cache.get("shared")).prompt.id).toBe(first);
    // the fake lets two prompts swap names without the intermediate event reaching this cache's entry
    must(service.prompts.get(first)).name = "elsewhere";
    const second = service.createPrompt("tmp");
    service.rename(second, "shared");
    await cache.fresh();
    expect((await cache.get("shared")).prompt.id).toBe(second);
  });

  it("a purge drops the prompt's entries: no last-known-good for a purged prompt", async () => {
    const { service, cache } = setup({ fallbacks: {} });
    const id = service.createPrompt("p");
    await cache.fresh();
    await cache.get("p");
    await cache.get("p", { version: 1 });
    service.purge(id);
    await cache.fresh();
    service.down = true;
    await expectCode(
      cache.get("p"),
      Code.Unavailable,
      /^prompt p is not cached and prompt-service is unreachable/,
    );
    await expectCode(cache.get("p", { version: 1 }), Code.Unavailable);
  });

  it("resumes from its last sequence after a drop: events committed meanwhile are applied, none twice", async () => {
    const service = new FakePromptService();
    const id = service.createPrompt("p");
    const { cache, counts } = setup({}, service);
    await cache.fresh();
    expect((await cache.get("p", { label: "latest" })).prompt.version).toBe(1);
    const position = service.sequence;

    service.down = true;
    service.dropStreams();
    await pollUntil(() => counts.states.includes("down:Unavailable"), 5_000, "feed down");
    service.update(id, { content: "v2" });
    service.update(id, { content: "v3" });
    service.down = false;
    await cache.fresh();

    expect(service.calls).toContain(`list ${position}`);
    expect(service.calls).toContain(`watch ${service.sequence}`);
    expect(counts.lags).toHaveLength(2);
    expect((await cache.get("p", { label: "latest" })).prompt.version).toBe(3);
  });

  it("fresh() waits for events up to the head at call time", async () => {
    const service = new FakePromptService();
    const id = service.createPrompt("p");
    const { cache, counts } = setup({}, service);
    await cache.fresh();
    for (let v = 2; v <= 50; v++) service.update(id, { content: `v${v}` });
    await cache.fresh();
    expect(counts.lags).toHaveLength(49);
  });

  it("reports the invalidation lag (now - occur_time) and the stream state", async () => {
    const service = new FakePromptService();
    const id = service.createPrompt("p");
    const { cache, counts, clock } = setup({}, service);
    await cache.fresh();
    expect(counts.states).toEqual(["up"]);
    await cache.get("p");
    service.setLabel(id, "production", 1);
    clock.now += 7;
    await cache.fresh();
    expect(counts.lags).toEqual([7]);
  });
});

describe("PromptCache: the race guard", () => {
  it("an answer that started before an event about its prompt is returned, but not stored as fresh", async () => {
    const { service, cache } = setup();
    const id = service.createPrompt("p");
    await cache.fresh();
    const held = service.hold();
    const reading = cache.get("p", { label: "latest" });
    await pollUntil(() => held.waiting() === 1, 5_000, "GetPrompt in flight");
    // the answer (version 1) is on its way while version 2 commits and its event is applied
    service.update(id, { content: "v2" });
    await cache.fresh();
    held.releaseAll();
    expect((await reading).prompt.version).toBe(1);

    const next = await cache.get("p", { label: "latest" });
    expect(next.source).toBe("network");
    expect(next.prompt.version).toBe(2);
  });

  it("also for a first read whose entry did not exist when the event came (by name)", async () => {
    const { service, cache } = setup();
    const id = service.createPrompt("p");
    await cache.fresh();
    const held = service.hold();
    const reading = cache.get("p");
    await pollUntil(() => held.waiting() === 1, 5_000, "GetPrompt in flight");
    service.setLabel(id, "production", 1);
    await cache.fresh();
    held.releaseAll();
    await reading;
    expect((await cache.get("p")).source).toBe("network");
    expect((await cache.get("p")).source).toBe("cache");
  });
});

describe("PromptCache: feed down or refused (TTL, stale-while-revalidate)", () => {
  it("a refused feed (PERMISSION_DENIED) leaves TTL only; fresh() says so", async () => {
    const service = new FakePromptService();
    service.feedError = new ConnectError("the change feed needs a service principal", Code.PermissionDenied);
    const { cache, counts, clock } = setup({ ttlMs: 1_000 }, service);
    service.createPrompt("p");
    await expectCode(cache.fresh(), Code.PermissionDenied, /service principal/);
    expect(counts.states).toEqual(["down:PermissionDenied"]);
    await cache.get("p");
    clock.now += 999;
    expect((await cache.get("p")).source).toBe("cache");
    expect(service.count("getPrompt")).toBe(1);
    clock.now += 1;
    // past the TTL: served stale, one background refresh for any number of reads
    const reads = await Promise.all([cache.get("p"), cache.get("p"), cache.get("p")]);
    expect(reads.map((r) => r.stale)).toEqual([true, true, true]);
    expect(counts.stale).toEqual(["ttl", "ttl", "ttl"]);
    await pollUntil(async () => !(await cache.get("p")).stale, 5_000, "refreshed");
    expect(service.count("getPrompt")).toBe(2);
    expect(service.count("watch")).toBe(0);
  });

  it("watch: false runs on TTL only, without feed calls", async () => {
    const { service, cache, clock } = setup({ watch: false, ttlMs: 10 });
    service.createPrompt("p");
    await cache.get("p");
    clock.now += 10;
    expect((await cache.get("p")).stale).toBe(true);
    await expectCode(cache.fresh(), Code.FailedPrecondition);
    expect(service.calls.filter((c) => !c.startsWith("getPrompt"))).toEqual([]);
  });

  it("while the feed is down, covered entries stay fresh for the TTL from the drop", async () => {
    const { service, cache, counts, clock } = setup({ ttlMs: 100 });
    service.createPrompt("p");
    await cache.fresh();
    await cache.get("p");
    clock.now += 10_000; // fetched long ago; the feed kept it fresh
    expect((await cache.get("p")).stale).toBe(false);
    service.feedError = new ConnectError("overloaded", Code.ResourceExhausted);
    service.dropStreams();
    await pollUntil(() => counts.states.includes("down:Unavailable"), 5_000, "feed down");
    clock.now += 99;
    expect((await cache.get("p")).stale).toBe(false);
    clock.now += 1;
    expect((await cache.get("p")).stale).toBe(true);
    await pollUntil(async () => !(await cache.get("p")).stale, 5_000, "revalidated in the background");
  });

  it("entries fetched before the feed's first position are revalidated once it is up", async () => {
    const service = new FakePromptService();
    const held = service.hold();
    service.createPrompt("p");
    const { cache } = setup({}, service);
    const reading = cache.get("p");
    await pollUntil(() => held.waiting() === 1, 5_000, "GetPrompt in flight");
    held.releaseAll();
    await reading;
    await cache.fresh();
    await pollUntil(() => service.count("getPrompt") === 2, 5_000, "revalidated");
  });
});

describe("PromptCache: outages (last-known-good, fallbacks, errors not hidden)", () => {
  it("serves a cached entry marked stale when prompt-service is unreachable (UNAVAILABLE, DEADLINE_EXCEEDED)", async () => {
    const { service, cache, counts } = setup();
    const id = service.createPrompt("p");
    await cache.fresh();
    await cache.get("p");
    service.setLabel(id, "production", 1);
    await cache.fresh();
    service.down = true;
    const read = await cache.get("p");
    expect(read).toMatchObject({ stale: true, source: "cache" });
    expect(read.prompt.version).toBe(1);
    service.down = false;
    service.getError = new ConnectError("deadline exceeded", Code.DeadlineExceeded);
    expect((await cache.get("p")).stale).toBe(true);
    expect(counts.stale).toEqual(["unavailable", "unavailable"]);
    service.getError = undefined;
    expect((await cache.get("p")).stale).toBe(false);
  });

  it("uses the caller's fallback for a name never cached, else a clear UNAVAILABLE", async () => {
    const { service, cache, counts } = setup({
      fallbacks: { greeting: { content: "Hello {{name}} (offline)" } },
    });
    service.down = true;
    const read = await cache.get("greeting");
    expect(read).toMatchObject({ stale: true, source: "fallback" });
    expect(read.prompt).toMatchObject({ name: "greeting", kind: PromptKind.TEXT });
    expect(counts.stale).toEqual(["fallback"]);
    const rendered = await cache.render("greeting", { name: "Ada" });
    expect(rendered).toMatchObject({ text: "Hello Ada (offline)", stale: true });
    const e = await expectCode(cache.get("other"), Code.Unavailable);
    expect(e.rawMessage).toMatch(/^prompt other is not cached and prompt-service is unreachable: /);
  });

  it("NOT_FOUND is never hidden, and drops the entry", async () => {
    const { service, cache } = setup({ watch: false, ttlMs: 0 });
    const id = service.createPrompt("p");
    await cache.get("p");
    service.prompts.delete(id); // gone without an event this cache saw
    await pollUntil(
      async () => {
        try {
          await cache.get("p");
          return false;
        } catch (e) {
          return e instanceof ConnectError && e.code === Code.NotFound;
        }
      },
      5_000,
      "NOT_FOUND surfaced",
    );
    service.down = true;
    await expectCode(cache.get("p"), Code.Unavailable);
  });

  it("PERMISSION_DENIED, INVALID_ARGUMENT, UNAUTHENTICATED are never hidden, even with an entry cached", async () => {
    const { service, cache } = setup();
    const id = service.createPrompt("p");
    await cache.fresh();
    await cache.get("p");
    for (const code of [Code.PermissionDenied, Code.InvalidArgument, Code.Unauthenticated, Code.Internal]) {
      service.setLabel(id, "production", 1);
      await cache.fresh();
      service.getError = new ConnectError("no", code);
      await expectCode(cache.get("p"), code);
    }
    service.getError = undefined;
    expect((await cache.get("p")).stale).toBe(false);
  });

  it("a background refresh that meets another error does not hide it: the next read gets it", async () => {
    const { service, cache, clock } = setup({ watch: false, ttlMs: 10 });
    service.createPrompt("p");
    await cache.get("p");
    clock.now += 10;
    service.getError = new ConnectError("token revoked", Code.PermissionDenied);
    expect((await cache.get("p")).stale).toBe(true);
    await pollUntil(
      async () => {
        try {
          await cache.get("p");
          return false;
        } catch (e) {
          return e instanceof ConnectError && e.code === Code.PermissionDenied;
        }
      },
      5_000,
      "error surfaced",
    );
  });
});

describe("PromptCache: store", () => {
  it("round trip: a restarted app serves the saved entries (stale) during an outage, revalidates once up", async () => {
    const store = memoryStore();
    const service = new FakePromptService();
    service.createPrompt("greeting", {
      content: "Hi {{name}}",
      variables: [{ name: "name", type: VariableType.STRING, required: true }],
    });
    const first = setup({ store }, service);
    await first.cache.get("greeting");
    await first.cache.get("greeting", { version: 1 });
    await first.cache.close();
    expect(store.state.saves).toBeGreaterThan(0);

    service.down = true;
    const second = setup({ store }, service);
    const read = await second.cache.get("greeting");
    expect(read).toMatchObject({ stale: true, source: "cache" });
    expect(read.prompt.content).toBe("Hi {{name}}");
    expect((await second.cache.get("greeting", { version: 1 })).stale).toBe(true);
    expect(await second.cache.render("greeting", { name: "Ada" })).toMatchObject({
      text: "Hi Ada",
      stale: true,
    });
    await expectCode(second.cache.get("unknown"), Code.Unavailable);

    service.down = false;
    const revalidated = await second.cache.get("greeting");
    expect(revalidated).toMatchObject({ stale: false, source: "network" });
  });

  it("an unreadable store is reported and ignored", async () => {
    const errors: string[] = [];
    const { service, cache } = setup({
      store: { load: async () => "not json", save: async () => {} },
      hooks: { error: (_e, where) => errors.push(where) },
    });
    service.createPrompt("p");
    expect((await cache.get("p")).source).toBe("network");
    expect(errors).toEqual(["store"]);
  });
});

describe("PromptCache: render", () => {
  it("renders locally with includes read through the cache, like RenderPrompt", async () => {
    const { service, cache } = setup();
    service.createPrompt("footer", { content: "-- {{team}}" });
    const root = service.createPrompt("mail", {
      content: "Dear {{name}},\n{{> footer}}\n{{> footer@latest}}",
      variables: [
        { name: "name", type: VariableType.STRING, required: true },
        { name: "team", type: VariableType.STRING, required: false },
      ],
    });
    service.setLabel(root, "production", 1);
    await cache.fresh();
    const rendered = await cache.render("mail", { name: "Ada", team: "Support" }, { label: "production" });
    expect(rendered).toMatchObject({
      kind: PromptKind.TEXT,
      text: "Dear Ada,\n-- Support\n-- Support",
      messages: [],
      modelConfig: { model: "m1" },
      stale: false,
    });
    expect(rendered.resolved.map((r) => [r.name, r.version, r.label])).toEqual([
      ["mail", 1, "production"],
      ["footer", 1, ""],
    ]);
    const calls = service.count("getPrompt");
    // footer declares nothing: its {{team}} is a required string there, as on the server
    await expectCode(
      cache.render("mail", { name: "Bob" }, { label: "production" }),
      Code.InvalidArgument,
      /^variables\.team: is required$/,
    );
    await cache.render("mail", { name: "Bob", team: "Sales" }, { label: "production" });
    expect(service.count("getPrompt")).toBe(calls);
  });

  it("chat prompts render each message", async () => {
    const { service, cache } = setup();
    service.createPrompt("chat", {
      messages: [
        { role: 1, content: "You are {{persona}}." },
        { role: 2, content: "Hi", name: "ada" },
      ],
    });
    const rendered = await cache.render("chat", { persona: "kind" });
    expect(rendered.kind).toBe(PromptKind.CHAT);
    expect(rendered.text).toBe("");
    expect(rendered.messages.map((m) => [m.role, m.content, m.name])).toEqual([
      [1, "You are kind.", ""],
      [2, "Hi", "ada"],
    ]);
  });

  it("errors as the server words them", async () => {
    const { service, cache } = setup();
    service.createPrompt("p", { content: "{{a}} {{> missing}}" });
    service.createPrompt("q", { content: "{{a}}" });
    await expectCode(cache.render("q", {}), Code.InvalidArgument, /^variables\.a: is required$/);
    await expectCode(cache.render("q", { b: "x" }), Code.InvalidArgument, /^variables\.b: is not declared$/);
    await expectCode(
      cache.render("p", { a: "x" }),
      Code.FailedPrecondition,
      /^include \{\{> missing\}\} of p v1: not found$/,
    );
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`v${i}`, "x"]));
    await expectCode(cache.render("q", many), Code.InvalidArgument, /^variables: at most 100 variables$/);
  });

  it("a stale include makes the render stale", async () => {
    const { service, cache } = setup();
    const inc = service.createPrompt("inc", { content: "inner" });
    service.createPrompt("outer", { content: "[{{> inc}}]" });
    await cache.fresh();
    await cache.render("outer", {});
    service.setLabel(inc, "production", 1);
    await cache.fresh();
    service.down = true;
    expect(await cache.render("outer", {})).toMatchObject({ text: "[inner]", stale: true });
  });
});

describe("PromptCache: close", () => {
  it("ends the streams; later reads reject", async () => {
    const { service, cache } = setup();
    service.createPrompt("p");
    await cache.fresh();
    expect(service.openStreams()).toBe(1);
    await cache.close();
    expect(service.openStreams()).toBe(0);
    await expectCode(cache.get("p"), Code.Canceled);
    await expectCode(cache.fresh(), Code.Canceled);
  });

  it("events apply once each, in order (sequence never goes back)", async () => {
    const seen: bigint[] = [];
    const service = new FakePromptService();
    const id = service.createPrompt("p");
    const { cache } = setup({ hooks: { invalidated: (_lag, e) => seen.push(e.sequence) } }, service);
    await cache.fresh();
    for (let i = 0; i < 20; i++) {
      service.setLabel(id, "production", 1);
      if (i % 5 === 0) service.dropStreams();
    }
    await cache.fresh();
    expect(seen).toEqual(Array.from({ length: 20 }, (_, i) => BigInt(i + 2)));
    expect(service.events.filter((e) => e.type === PromptEventType.LABEL_SET)).toHaveLength(20);
  });
});
