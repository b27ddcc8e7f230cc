import { PromptService } from "@autoforge/contracts/prompt/v1";
import { createServiceLogger, createTokenSigner } from "@autoforge/server";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { describe, expect, it, onTestFinished } from "vitest";
import { createPromptServer } from "../src/server.js";
import { openTestDatabase, secret } from "./helpers.js";

/** prompt-service as main.ts builds it (the service logger), its lines captured as parsed JSON. */
async function startWithServiceLogger(level: "info" | "debug") {
  const { db } = await openTestDatabase();
  const raw: string[] = [];
  const logger = createServiceLogger({
    service: "prompt-service",
    level,
    destination: { write: (line: string) => raw.push(line) },
  });
  const app = createPromptServer({ db, auth: { secret }, logger });
  const { connectPort } = await app.server.listen({ host: "127.0.0.1", grpcPort: 0, connectPort: 0 });
  onTestFinished(() => app.server.shutdown({ graceMs: 500 }));
  const token = await createTokenSigner(secret).signToken({ sub: "alice", roles: ["user"] });
  const client = createClient(
    PromptService,
    createConnectTransport({
      baseUrl: `http://127.0.0.1:${connectPort}`,
      httpVersion: "1.1",
      interceptors: [
        (next) => (req) => {
          req.header.set("authorization", `Bearer ${token}`);
          return next(req);
        },
      ],
    }),
  );
  const lines = () => raw.map((l) => JSON.parse(l) as Record<string, unknown>);
  return { db, client, raw, lines };
}

describe("log conventions", () => {
  it('string levels, ISO-8601 time, and no access line at "info" for calls that went well', async () => {
    const svc = await startWithServiceLogger("info");
    const before = svc.raw.length;
    await svc.client.createPrompt({ title: "quiet", content: "hello" });
    await expect(svc.client.getPrompt({ id: "0190f5a0-0000-7000-8000-000000000000" })).rejects.toMatchObject({
      code: Code.NotFound,
    });
    expect(svc.raw.slice(before)).toEqual([]);
    // what was logged at start: "listening", with the conventions every line follows
    const listening = svc.lines().find((l) => l.msg === "listening");
    expect(listening).toMatchObject({ level: "info", service: "prompt-service" });
    expect(String(listening?.time)).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it("at debug, one access line per call with its code, protocol and request", async () => {
    const svc = await startWithServiceLogger("debug");
    await svc.client.createPrompt(
      { title: "loud", content: "hello" },
      { headers: { "x-request-id": "req-42" } },
    );
    const access = svc.lines().filter((l) => l.requestId === "req-42");
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({
      level: "debug",
      msg: "call ok",
      rpc: "autoforge.prompt.v1.PromptService/CreatePrompt",
      protocol: "connect",
      code: "OK",
      principal: "alice",
      request: { title: "loud", content: "hello" },
    });
  });

  it("an unexpected database error is logged at error without the statement's bound values", async () => {
    const svc = await startWithServiceLogger("info");
    // the table the insert needs is gone: the statement fails in the database, carrying its values
    await svc.db.client.execute("ALTER TABLE prompts RENAME TO prompts_moved_away");
    // the prompt's name is the first statement's bound value (the lookup of an existing name)
    const userData = "customer-secret-7f3a";
    const err = await svc.client
      .createPrompt(
        { name: userData, title: "leak-check", content: "the customer's secret prompt text" },
        { headers: { "x-request-id": "req-db" } },
      )
      .then(
        () => undefined,
        (e: unknown) => ConnectError.from(e),
      );
    expect(err?.code).toBe(Code.Internal);
    expect(err?.rawMessage).toBe("internal error");
    const logged = svc.raw.join("\n");
    expect(logged).not.toContain(userData);
    expect(logged).not.toContain("leak-check");
    expect(logged).not.toContain("user:alice,"); // the project id, bound next to the name
    const unexpected = svc.lines().find((l) => l.msg === "unexpected error" && l.requestId === "req-db");
    expect(unexpected).toMatchObject({ level: "error", service: "prompt-service" });
    // the cause is still there to debug: the SQL (without values) and SQLite's reason
    const text = JSON.stringify(unexpected);
    expect(text).toContain("prompts");
    expect(text).toContain("[redacted]");
    expect(svc.lines().find((l) => l.msg === "call failed" && l.requestId === "req-db")).toMatchObject({
      level: "error",
      code: "INTERNAL",
    });
  });
});
