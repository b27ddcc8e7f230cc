/**
 * The prompt cache against real services (OS processes, test/e2e/harness.ts), over Connect (connect-node, the
 * Connect port, HTTP/2) and over gRPC (connect-node's gRPC transport, the gRPC port). The cache reads as a
 * project service principal; another client (a publisher of the project) changes prompts.
 */
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { createPromptCache, type PromptCacheClient, type PromptCacheOptions } from "@autoforge/client";
import {
  ChatRole,
  type PromptEvent,
  PromptEventType,
  PromptService,
  type RenderPromptResponse,
  VariableType,
} from "@autoforge/contracts/prompt/v1";
import type { JsonValue } from "@autoforge/render";
import type { TokenClaims } from "@autoforge/server";
import { fromJson, type JsonValue as ProtoJson } from "@bufbuild/protobuf";
import { type Value, ValueSchema } from "@bufbuild/protobuf/wkt";
import { type Client, createClient, type Interceptor } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  Code,
  ConnectError,
  expectCode,
  must,
  pollUntil,
  type ServiceProcess,
  signer,
  startEvaluationService,
  startService,
  tempDir,
} from "../e2e/harness.js";

type Protocol = "connect" | "grpc";

const appClaims: TokenClaims = { sub: "app", roles: ["service"], project: "acme" };
const moverClaims: TokenClaims = { sub: "mover", roles: ["user"], projects: { acme: "publisher" } };
const num = (value: number): Value => ({ kind: { case: "numberValue", value } }) as Value;
const str = (value: string): Value => ({ kind: { case: "stringValue", value } }) as Value;

async function startPromptService(dir: string, ports?: { grpcPort: number; connectPort: number }) {
  return startService("prompt-service", {
    DATABASE_URL: `file:${join(dir, "prompt-service.db")}`,
    ...(ports === undefined
      ? {}
      : { GRPC_PORT: String(ports.grpcPort), CONNECT_PORT: String(ports.connectPort) }),
  });
}

/** A PromptService client over `protocol` to `port` on localhost (one HTTP/2 connection, closed after the test). */
async function promptClient(
  protocol: Protocol,
  port: number,
  claims: TokenClaims,
): Promise<Client<typeof PromptService>> {
  const token = await signer.signToken({ ttl: "1h", ...claims });
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const baseUrl = `http://127.0.0.1:${port}`;
  const sessionManager = new Http2SessionManager(baseUrl);
  onTestFinished(() => sessionManager.abort());
  const transport =
    protocol === "connect"
      ? createConnectTransport({ baseUrl, httpVersion: "2", sessionManager, interceptors: [auth] })
      : createGrpcTransport({ baseUrl, sessionManager, interceptors: [auth] });
  return createClient(PromptService, transport);
}

const portOf = (svc: ServiceProcess, protocol: Protocol) =>
  protocol === "connect" ? svc.connectPort : svc.grpcPort;

/** The cache's client, recording the feed calls it makes (`list <after>`, `watch <after>`). */
function recording(client: Client<typeof PromptService>) {
  const calls: string[] = [];
  const recorded: PromptCacheClient = {
    getPrompt: (req, options) => client.getPrompt(req, options),
    listPromptEvents: (req, options) => {
      calls.push(`list ${req.afterSequence ?? 0n}`);
      return client.listPromptEvents(req, options);
    },
    watchPromptEvents: (req, options) => {
      calls.push(`watch ${req.afterSequence ?? 0n}`);
      return client.watchPromptEvents(req, options);
    },
  };
  return { client: recorded, calls };
}

/** A cache (closed after the test) with the events it applied and its stream states. */
function cacheOf(client: PromptCacheClient, options: Partial<PromptCacheOptions> = {}) {
  const events: PromptEvent[] = [];
  const states: string[] = [];
  const cache = createPromptCache({
    client,
    project: "acme",
    reconnect: { initialDelayMs: 20, maxDelayMs: 200 },
    ...options,
    hooks: {
      invalidated: (_lag, event) => events.push(event),
      streamState: (state) => states.push(state),
      ...options.hooks,
    },
  });
  onTestFinished(() => cache.close());
  return { cache, events, states };
}

/** A prompt `greeting` in acme with versions 1..n (content "v<i> {{customer}}"), production on 1. */
async function greeting(mover: Client<typeof PromptService>, versions = 3) {
  let p = must(
    (
      await mover.createPrompt({
        project: "acme",
        name: "greeting",
        title: "Greeting",
        content: "v1 {{customer}}",
      })
    ).prompt,
  );
  for (let v = 2; v <= versions; v++) {
    p = must(
      (
        await mover.updatePrompt({
          project: "acme",
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["content"] },
          content: `v${v} {{customer}}`,
        })
      ).prompt,
    );
  }
  await mover.setPromptLabel({ project: "acme", id: p.id, label: "production", version: 1 });
  return p.id;
}

/** A TCP proxy to `target` whose connections the test can cut (and refuse) and let through again. */
async function tcpProxy(target: number) {
  const sockets = new Set<Socket>();
  let open = true;
  const server = createServer((client) => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = connect(target, "127.0.0.1");
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
      s.on("error", () => {});
    }
    client.pipe(upstream).pipe(client);
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address !== null ? address.port : 0,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
    },
    restore() {
      open = true;
    },
  };
}

function toValues(variables: Record<string, JsonValue>): Record<string, Value> {
  return Object.fromEntries(
    Object.entries(variables).map(([k, v]) => [k, fromJson(ValueSchema, v as ProtoJson)]),
  );
}

type Outcome =
  | {
      ok: Pick<RenderPromptResponse, "kind" | "text" | "modelConfig"> & {
        messages: unknown[];
        resolved: unknown[];
      };
    }
  | { error: [string, string] };

async function outcome(
  call: Promise<Pick<RenderPromptResponse, "kind" | "text" | "messages" | "modelConfig" | "resolved">>,
): Promise<Outcome> {
  try {
    const r = await call;
    return {
      ok: {
        kind: r.kind,
        text: r.text,
        messages: r.messages.map((m) => ({ role: m.role, content: m.content, name: m.name })),
        modelConfig: r.modelConfig,
        resolved: r.resolved.map((u) => ({
          promptId: u.promptId,
          name: u.name,
          version: u.version,
          label: u.label,
        })),
      },
    };
  } catch (e) {
    const error = ConnectError.from(e);
    return { error: [Code[error.code], error.rawMessage] };
  }
}

describe.each<Protocol>(["connect", "grpc"])("prompt cache over %s", (protocol) => {
  it("a label moved by another client: the next get after the invalidation returns the new version; 1,000 moves, none missed, none out of order", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    // evaluation-service follows the same feed with its all-projects token meanwhile
    await startEvaluationService(dir, prompts.url);
    const mover = await promptClient(protocol, portOf(prompts, protocol), moverClaims);
    const id = await greeting(mover);
    const misses: string[] = [];
    const { cache, events } = cacheOf(await promptClient(protocol, portOf(prompts, protocol), appClaims), {
      hooks: { miss: (name) => misses.push(name) },
    });
    await cache.fresh();
    expect((await cache.get("greeting")).prompt.version).toBe(1);
    expect((await cache.get("greeting")).source).toBe("cache");

    await mover.setPromptLabel({ project: "acme", id, label: "production", version: 2 });
    await cache.fresh();
    const moved = await cache.get("greeting");
    expect(moved).toMatchObject({ stale: false, source: "network" });
    expect(moved.prompt.version).toBe(2);

    const expected: number[] = [];
    const served: number[] = [];
    for (let i = 0; i < 1_000; i++) {
      const version = ((i + 2) % 3) + 1; // 3, 1, 2, 3, ...: every move changes the label
      expected.push(version);
      await mover.setPromptLabel({ project: "acme", id, label: "production", version });
      await cache.fresh();
      served.push((await cache.get("greeting")).prompt.version);
    }
    expect(served).toEqual(expected);
    const moves = events.filter((e) => e.type === PromptEventType.LABEL_SET);
    expect(moves.map((e) => e.version)).toEqual([2, ...expected]);
    const sequences = moves.map((e) => Number(e.sequence));
    expect(sequences.every((s, i) => i === 0 || s > (sequences[i - 1] as number))).toBe(true);
    // one GetPrompt per move (the first read, the first move, 1,000 moves), every other read from memory
    expect(misses).toHaveLength(1_002);
  }, 180_000);

  it("a cached render equals RenderPrompt: text with typed variables, chat, includes by default/label/version/latest, and the errors", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    const mover = await promptClient(protocol, portOf(prompts, protocol), moverClaims);
    const create = async (req: Parameters<typeof mover.createPrompt>[0]) =>
      must((await mover.createPrompt({ project: "acme", title: req.name ?? "t", ...req })).prompt);

    let footer = await create({
      name: "footer",
      content: "-- the {{team}} team",
      variables: [{ name: "team", type: VariableType.STRING, defaultValue: str("support") }],
    });
    footer = must(
      (
        await mover.updatePrompt({
          project: "acme",
          id: footer.id,
          etag: footer.etag,
          updateMask: { paths: ["content"] },
          content: "Regards, {{team}}",
        })
      ).prompt,
    );
    await mover.setPromptLabel({ project: "acme", id: footer.id, label: "staging", version: 1 });
    await create({ name: "legacy", content: "Hi {{who}}, {{> footer@staging}}" }); // declares nothing: inferred
    await create({
      name: "order",
      content:
        "Dear {{name}} ({{tier}}): {{count}} items, vip={{vip}}, extra={{extra}}, note={{note}}\n" +
        "{{> footer}}\n{{> footer@staging}}\n{{> footer@1}}\n{{> footer@latest}}\n{{> legacy}}\n{{ not a var }} {{>  footer@2 }}",
      variables: [
        { name: "name", type: VariableType.STRING, required: true },
        { name: "tier", type: VariableType.ENUM, enumValues: ["gold", "silver"], required: true },
        { name: "count", type: VariableType.NUMBER, defaultValue: num(1) },
        { name: "vip", type: VariableType.BOOLEAN },
        { name: "extra", type: VariableType.JSON },
        { name: "note", type: VariableType.STRING },
      ],
      modelConfig: { model: "gpt-4o", temperature: 0.2, stop: ["\n\n"] },
    });
    await create({
      name: "support/chat",
      messages: [
        { role: ChatRole.SYSTEM, content: "You are a {{tone}} agent.\n{{> footer@staging}}" },
        { role: ChatRole.USER, content: "{{question}}", name: "customer" },
        { role: ChatRole.ASSISTANT, content: "Sure." },
      ],
      variables: [
        { name: "tone", type: VariableType.ENUM, enumValues: ["friendly", "formal"], required: true },
        { name: "question", type: VariableType.STRING, required: true },
        { name: "team", type: VariableType.STRING },
      ],
    });
    await create({ name: "loop-a", content: "a {{> loop-b}}" });
    await create({ name: "loop-b", content: "b {{> loop-a@latest}}" });
    await create({ name: "dangling", content: "x {{> nowhere}}" });
    const gone = await create({ name: "gone", content: "gone" });
    await create({ name: "uses-gone", content: "y {{> gone}}" });
    const deleted = await create({ name: "deleted", content: "z" });
    await mover.deletePrompt({ project: "acme", id: gone.id });
    await mover.deletePrompt({ project: "acme", id: deleted.id });
    await create({ name: "d6", content: "bottom" });
    for (let i = 5; i >= 0; i--) await create({ name: `d${i}`, content: `{{> d${i + 1}}}` });

    const app = await promptClient(protocol, portOf(prompts, protocol), appClaims);
    const { cache } = cacheOf(app);
    await cache.fresh();
    const cases: [string, Record<string, JsonValue>, { label?: string; version?: number }][] = [
      ["order", { name: "Ada", tier: "gold", vip: true, extra: { a: [1, "x", null], b: 2.5 }, who: "W" }, {}],
      [
        "order",
        { name: "Bob", tier: "silver", count: 7, note: "{{name}} stays as written", who: "W" },
        { label: "latest" },
      ],
      ["order", { name: "Cy", tier: "gold", count: null, team: "sales", who: "W" }, { version: 1 }],
      ["support/chat", { tone: "formal", question: "Where is my order?" }, {}],
      ["support/chat", { tone: "friendly", question: "Hi", team: "ops" }, { label: "latest" }],
      ["legacy", { who: "you" }, {}],
      ["footer", {}, { label: "staging" }],
      ["footer", { team: "x" }, { version: 2 }],
      // errors
      ["order", { tier: "gold", who: "W" }, {}],
      ["order", { name: "Ada", tier: "bronze", who: "W" }, {}],
      ["order", { name: "Ada", tier: "gold", count: "seven", who: "W" }, {}],
      ["order", { name: "Ada", tier: "gold", nobody: 1, who: "W" }, {}],
      ["order", { name: "Ada", tier: "gold" }, {}],
      ["footer", {}, { label: "nowhere" }],
      ["footer", {}, { version: 1, label: "staging" }],
      ["missing", {}, {}],
      ["loop-a", {}, {}],
      ["dangling", {}, {}],
      ["uses-gone", {}, {}],
      ["deleted", {}, {}],
      ["d0", {}, {}],
      ["d1", {}, {}],
    ];
    let rendered = 0;
    for (const [name, variables, selector] of cases) {
      const local = await outcome(cache.render(name, variables, selector));
      if ("ok" in local) rendered++;
      const remote = await outcome(
        app.renderPrompt({ project: "acme", name, ...selector, variables: toValues(variables) }),
      );
      expect(local, `${name} ${JSON.stringify(selector)} ${JSON.stringify(variables)}`).toEqual(remote);
    }
    expect(rendered).toBe(9); // the first eight cases and d1 (five levels of includes: the most allowed)
    // RenderPrompt of a version that does not exist answers INTERNAL (handlers/render.ts throws a plain Error);
    // GetPrompt says NOT_FOUND, and so does the cache
    await expectCode(
      cache.render("footer", {}, { version: 9 }),
      Code.NotFound,
      /^version 9 of prompt .* not found$/,
    );
    // the successes are the ones meant to succeed, and they were rendered from memory
    const first = await cache.render("order", cases[0]?.[1] ?? {}, {});
    expect(first.stale).toBe(false);
    expect(first.text).toContain(
      'Dear Ada (gold): 1 items, vip=true, extra={"a":[1,"x",null],"b":2.5}, note=',
    );
    expect(first.resolved.map((r) => `${r.name}@${r.version}${r.label === "" ? "" : `:${r.label}`}`)).toEqual(
      ["order@1", "footer@2", "footer@1:staging", "legacy@1"],
    );
  }, 120_000);

  it("prompt-service SIGKILLed: cached prompts served stale, an uncached name gets the fallback or a clear UNAVAILABLE; restarted on the same ports and database: the stream resumes from its sequence and a later move is picked up", async () => {
    const dir = tempDir();
    let prompts = await startPromptService(dir);
    const ports = { grpcPort: prompts.grpcPort, connectPort: prompts.connectPort };
    const mover = await promptClient(protocol, portOf(prompts, protocol), moverClaims);
    const id = await greeting(mover);
    const recorded = recording(await promptClient(protocol, portOf(prompts, protocol), appClaims));
    const { cache, states, events } = cacheOf(recorded.client, {
      ttlMs: 300,
      fallbacks: { "offline-notice": { content: "We are offline, {{customer}}." } },
    });
    await cache.fresh();
    expect((await cache.get("greeting")).prompt.version).toBe(1);
    expect((await cache.render("greeting", { customer: "Ada" })).text).toBe("v1 Ada");
    const position = (
      await recorded.client.listPromptEvents({ project: "acme", afterSequence: 0n, pageSize: 1 })
    ).lastSequence;

    await prompts.kill("SIGKILL");
    await pollUntil(() => states.at(-1) === "down", 20_000, "the cache's stream is down");
    // never an error for the cached name: fresh for the TTL after the drop, then stale (last-known-good)
    await pollUntil(async () => (await cache.get("greeting")).stale, 20_000, "served stale");
    const read = await cache.get("greeting");
    expect(read).toMatchObject({ stale: true, source: "cache" });
    expect(read.prompt.version).toBe(1);
    expect(await cache.render("greeting", { customer: "Bo" })).toMatchObject({ text: "v1 Bo", stale: true });
    expect(await cache.get("offline-notice")).toMatchObject({ stale: true, source: "fallback" });
    expect((await cache.render("offline-notice", { customer: "Cy" })).text).toBe("We are offline, Cy.");
    await expectCode(
      cache.get("never-cached"),
      Code.Unavailable,
      /^prompt never-cached is not cached and prompt-service is unreachable: /,
    );

    const callsBeforeRestart = recorded.calls.length;
    prompts = await startPromptService(dir, ports);
    await cache.fresh();
    // resumed: caught up from the last applied sequence, then watched from there (no head read, no replay of all)
    const after = recorded.calls.slice(callsBeforeRestart);
    const watchAt = after.findIndex((c) => c.startsWith("watch"));
    expect(watchAt).toBeGreaterThan(0);
    expect(new Set(after.slice(0, watchAt))).toEqual(new Set([`list ${position}`]));
    expect(after[watchAt]).toBe(`watch ${position}`);

    await mover.setPromptLabel({ project: "acme", id, label: "production", version: 3 });
    await cache.fresh();
    const caughtUp = await cache.get("greeting");
    expect(caughtUp).toMatchObject({ stale: false });
    expect(caughtUp.prompt.version).toBe(3);
    expect(events.filter((e) => e.type === PromptEventType.LABEL_SET).map((e) => e.version)).toEqual([3]);
  }, 120_000);

  it("events committed while the cache's stream was disconnected are applied once it reconnects (resume from its sequence)", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    const mover = await promptClient(protocol, portOf(prompts, protocol), moverClaims);
    const id = await greeting(mover);
    // only the cache goes through the proxy: the mover keeps its own connection
    const proxy = await tcpProxy(portOf(prompts, protocol));
    const recorded = recording(await promptClient(protocol, proxy.port, appClaims));
    const { cache, states, events } = cacheOf(recorded.client);
    await cache.fresh();
    expect((await cache.get("greeting")).prompt.version).toBe(1);
    expect((await cache.get("greeting", { label: "latest" })).prompt.version).toBe(3);
    const position = (
      await recorded.client.listPromptEvents({ project: "acme", afterSequence: 0n, pageSize: 1 })
    ).lastSequence;

    proxy.cut();
    await pollUntil(() => states.at(-1) === "down", 20_000, "the cache's stream is down");
    const callsWhileDown = recorded.calls.length;
    await mover.setPromptLabel({ project: "acme", id, label: "production", version: 2 });
    const p = must((await mover.getPrompt({ project: "acme", id })).prompt);
    await mover.updatePrompt({
      project: "acme",
      id,
      etag: p.etag,
      updateMask: { paths: ["content"] },
      content: "v4 {{customer}}",
    });
    // still the TTL's answer from memory: the cache cannot know yet
    expect((await cache.get("greeting")).prompt.version).toBe(1);

    proxy.restore();
    await cache.fresh();
    expect(events.map((e) => [e.type, e.version])).toEqual([
      [PromptEventType.LABEL_SET, 2],
      [PromptEventType.UPDATED, 4],
    ]);
    // caught up from the sequence it had applied before the cut, not from the head
    expect(recorded.calls.slice(callsWhileDown)).toContain(`list ${position}`);
    expect((await cache.get("greeting")).prompt.version).toBe(2);
    expect((await cache.get("greeting", { label: "latest" })).prompt.version).toBe(4);
  }, 120_000);
});
