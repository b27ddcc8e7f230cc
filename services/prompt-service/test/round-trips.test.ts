import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { createDatabase, migrate } from "@autoforge/db";
import { createTokenSigner } from "@autoforge/server";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport, Http2SessionManager } from "@connectrpc/connect-node";
import { pino } from "pino";
import { expect, it, onTestFinished } from "vitest";
import { must } from "../../../test/support/assertions.js";
import { type CountingProxy, startCountingProxy } from "../../../test/support/counting-proxy.js";
import { describeWithSqld, sqldForTest } from "../../../test/support/sqld.js";
import { migrationsFolder } from "../src/db/migrations-folder.js";
import { schema } from "../src/db/schema.js";
import { createPromptServer } from "../src/server.js";

const secret = "round-trips-test-secret-of-32-bytes-or-more";

/**
 * prompt-service in-process (both ports on 0) on a fresh sqld reached through a counting proxy: directly, or as
 * the primary of an embedded replica (whose syncs then pass the proxy too).
 */
async function promptServiceOnCountedSqld(engine: "sqld" | "replica" = "sqld") {
  const sqld = await sqldForTest();
  const proxy = await startCountingProxy(sqld.url);
  onTestFinished(() => proxy.close());
  const dir = mkdtempSync(join(tmpdir(), "round-trips-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  const db = await createDatabase(
    engine === "sqld"
      ? { url: proxy.url, schema }
      : { url: `file:${join(dir, "replica.db")}`, syncUrl: proxy.url, syncIntervalMs: 600_000, schema },
  );
  onTestFinished(() => db.close());
  await migrate(db, migrationsFolder);
  const app = createPromptServer({ db, auth: { secret }, logger: pino({ level: "silent" }) });
  const { grpcPort } = await app.server.listen({ host: "127.0.0.1", grpcPort: 0, connectPort: 0 });
  const baseUrl = `http://127.0.0.1:${grpcPort}`;
  const sessionManager = new Http2SessionManager(baseUrl);
  onTestFinished(async () => {
    await app.server.shutdown({ graceMs: 1_000 });
    sessionManager.abort();
  });
  const token = await createTokenSigner(secret).signToken({ sub: "alice", roles: ["user"] });
  const auth: Interceptor = (next) => (req) => {
    req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
  const client = createClient(
    PromptService,
    createGrpcTransport({ baseUrl, sessionManager, interceptors: [auth] }),
  );
  return { client, proxy };
}

/** The requests `call` made to sqld (Hrana's, and a replica's syncs), described for a failure message. */
async function counted<T>(
  proxy: CountingProxy,
  call: () => Promise<T>,
): Promise<{ result: T; requests: string[]; hrana: string[] }> {
  proxy.reset();
  const result = await call();
  const described = proxy.requests.map((r) => ({
    hrana: /\/v\d+\/(pipeline|cursor)$/.test(r.path),
    text: `${r.method} ${r.path} ${JSON.stringify(r.sql)}`,
  }));
  return {
    result,
    requests: described.map((r) => r.text),
    hrana: described.filter((r) => r.hrana).map((r) => r.text),
  };
}

describeWithSqld("HTTP round trips to sqld per RPC", () => {
  it("CreatePrompt costs at most 2, GetPrompt at most 1", async () => {
    const { client, proxy } = await promptServiceOnCountedSqld();
    // warm up: the client's first request negotiates the Hrana version
    await client.createPrompt({ title: "warm-up", content: "x" });

    const create = await counted(proxy, () =>
      client.createPrompt({ title: "Summarise", content: "Summarise {{text}}\n", tags: ["a"] }),
    );
    const prompt = must(create.result.prompt);
    expect(create.requests.length, create.requests.join("\n")).toBeLessThanOrEqual(2);

    const get = await counted(proxy, () => client.getPrompt({ id: prompt.id }));
    expect(must(get.result.prompt).title).toBe("Summarise");
    expect(get.requests.length, get.requests.join("\n")).toBeLessThanOrEqual(1);
  });
});

describeWithSqld("round trips of an embedded replica to its primary per RPC", () => {
  it("CreatePrompt commits in at most 2 HTTP requests, then syncs; GetPrompt is local (none)", async () => {
    const { client, proxy } = await promptServiceOnCountedSqld("replica");
    await client.createPrompt({ title: "warm-up", content: "x" });

    const create = await counted(proxy, () =>
      client.createPrompt({ title: "Summarise", content: "Summarise {{text}}\n", tags: ["a"] }),
    );
    const prompt = must(create.result.prompt);
    expect(create.hrana.length, create.requests.join("\n")).toBeLessThanOrEqual(2);
    // and one sync (Hello + BatchLogEntries) before the RPC answered, so the local read below sees the commit;
    // through the replica connection's write delegation it was a request per statement, each with its sync
    expect(create.requests.length, create.requests.join("\n")).toBeGreaterThan(create.hrana.length);
    expect(create.requests.length, create.requests.join("\n")).toBeLessThanOrEqual(4);

    const get = await counted(proxy, () => client.getPrompt({ id: prompt.id }));
    expect(must(get.result.prompt).title).toBe("Summarise");
    expect(get.requests, get.requests.join("\n")).toEqual([]);
  });
});
