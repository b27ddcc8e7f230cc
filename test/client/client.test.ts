import { createServer, type Socket } from "node:net";
import { Code, createAutoforgeClient, evaluation, type Interceptor, prompt } from "@autoforge/client";
import { connectTransport, createNodeClient } from "@autoforge/client/node";
import { describe, expect, it, onTestFinished } from "vitest";
import {
  expectCode,
  must,
  signer,
  startEvaluationService,
  startPromptService,
  tempDir,
} from "../e2e/harness.js";
import { attemptCounter, clientFor, transportKinds } from "./support.js";

const greeting = { project: "demo", name: "checkout-greeting" };

describe.each(transportKinds)("@autoforge/client over %s against the real services", (kind) => {
  it("typed calls to PromptService, EvaluationService and AdminService; a project service token reads and renders a prompt by name", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    const evaluations = await startEvaluationService(dir, prompts.url);
    const services = { prompt: prompts, evaluation: evaluations };
    const publisher = clientFor(kind, services, { sub: "ada", projects: { demo: "publisher" } });
    const app = clientFor(kind, services, { sub: "checkout-app", roles: ["service"], project: "demo" });
    const operator = clientFor(kind, services, { sub: "root", roles: ["admin"] });

    // A publisher of demo creates the prompt by name and points production at it.
    const created = must(
      (
        await publisher.promptService.createPrompt({
          ...greeting,
          title: "Checkout greeting",
          content: "Hello {{customer}}, thanks for your order!",
        })
      ).prompt,
    );
    expect(created).toMatchObject({ ...greeting, ownerId: "ada", version: 1, kind: prompt.PromptKind.TEXT });
    await publisher.promptService.setPromptLabel({
      project: "demo",
      id: created.id,
      label: "production",
      version: 1,
    });

    // The app's service token (project demo: the default project of its calls) reads and renders it by name.
    const read = must((await app.promptService.getPrompt({ name: greeting.name })).prompt);
    expect(read).toMatchObject({ id: created.id, project: "demo", labels: { production: 1 } });
    const rendered = await app.promptService.renderPrompt({
      name: greeting.name,
      variables: { customer: { kind: { case: "stringValue", value: "Ada" } } },
    });
    expect(rendered.text).toBe("Hello Ada, thanks for your order!");
    // The same through the prompt cache (served from memory the second time).
    const cached = await app.prompts.get(greeting.name, { label: "production" });
    expect(cached.prompt.id).toBe(created.id);
    expect((await app.prompts.render(greeting.name, { customer: "Ada" })).text).toBe(
      "Hello Ada, thanks for your order!",
    );

    // EvaluationService on its own port, in the same project.
    const evaluationCreated = must(
      (
        await publisher.evaluationService.createEvaluation({
          project: "demo",
          promptId: created.id,
          provider: "openai",
          model: "gpt-4o",
        })
      ).evaluation,
    );
    const got = must(
      (await publisher.evaluationService.getEvaluation({ project: "demo", id: evaluationCreated.id }))
        .evaluation,
    );
    expect(got.status).toBe(evaluation.EvaluationStatus.PENDING);

    // AdminService (served by prompt-service here) with an operator's token.
    const stats = await operator.adminService.getDatabaseStats({});
    expect(stats.objects.find((o) => o.name === "prompts")?.rowCount).toBe(1n);

    // Errors are ConnectErrors with their code.
    await expectCode(app.promptService.getPrompt({ name: "missing" }), Code.NotFound);
    await expectCode(
      app.promptService.createPrompt({ name: "nope", title: "t", content: "c" }),
      Code.PermissionDenied,
    );
    await expectCode(
      app.promptService.renderPrompt({ name: greeting.name, variables: {} }),
      Code.InvalidArgument,
      /customer/,
    );
  }, 60_000);

  it("the token provider is called lazily and again before expiry; a failing one answers UNAUTHENTICATED with the cause", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    let now = Date.now();
    let calls = 0;
    const app = clientFor(
      kind,
      { prompt: prompts },
      () => {
        calls++;
        return signer.signToken({ sub: "checkout-app", roles: ["service"], project: "demo", ttl: "2m" });
      },
      { tokenOptions: { now: () => now } },
    );
    expect(calls).toBe(0);
    await app.promptService.listPrompts({});
    await app.promptService.listPrompts({});
    expect(calls).toBe(1);
    now += 91_000; // 29 s of the 2 minutes left
    await app.promptService.listPrompts({});
    expect(calls).toBe(2);

    const cause = new Error("secret store unreachable");
    const broken = clientFor(kind, { prompt: prompts }, () => Promise.reject(cause));
    const err = await expectCode(broken.promptService.listPrompts({}), Code.Unauthenticated, /unreachable/);
    expect(err.cause).toBe(cause);
    // A token the server refuses: UNAUTHENTICATED from the server, not retried.
    const counter = attemptCounter();
    const stranger = clientFor(kind, { prompt: prompts }, "not-a-token", {
      interceptors: [counter.interceptor],
    });
    await expectCode(stranger.promptService.listPrompts({}), Code.Unauthenticated);
    expect(counter.count("ListPrompts")).toBe(1);
  }, 60_000);
});

/** A TCP server that accepts connections and never answers: calls to it can only end by their deadline. */
async function blackHole(): Promise<number> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  onTestFinished(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

describe("deadlines", () => {
  it.each(["connect", "grpc"] as const)(
    "%s: a call to a server that never answers ends with DEADLINE_EXCEEDED at its deadline, once",
    async (protocol) => {
      const port = await blackHole();
      const counter = attemptCounter();
      const client = createNodeClient({
        baseUrl: `http://127.0.0.1:${port}`,
        protocol,
        token: "t",
        timeoutMs: 300,
        interceptors: [counter.interceptor],
      });
      onTestFinished(() => client.close());
      const started = Date.now();
      await expectCode(client.promptService.getPrompt({ name: "x" }), Code.DeadlineExceeded);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      await expectCode(
        client.promptService.createPrompt({ title: "t", content: "c" }, { timeoutMs: 200 }),
        Code.DeadlineExceeded,
      );
      expect(counter.attempts.map((a) => a.method)).toEqual(["GetPrompt", "CreatePrompt"]);
    },
  );

  it("the server is told the deadline: 10 s by default, the call's own timeoutMs when it passes one", async () => {
    const dir = tempDir();
    const prompts = await startPromptService(dir);
    const sent: (string | null)[] = [];
    const spy: Interceptor = (next) => (req) => {
      sent.push(req.header.get("connect-timeout-ms"));
      return next(req);
    };
    const transport = connectTransport({
      baseUrl: `http://127.0.0.1:${prompts.connectPort}`,
      interceptors: [spy],
    });
    onTestFinished(() => transport.close());
    const client = createAutoforgeClient({
      transport,
      token: await signer.signToken({ sub: "ada", projects: { demo: "viewer" } }),
    });
    await client.promptService.listPrompts({ project: "demo" });
    await client.promptService.listPrompts({ project: "demo" }, { timeoutMs: 1_500 });
    const [byDefault, own] = sent.map(Number);
    expect(byDefault).toBeLessThanOrEqual(10_000);
    expect(byDefault).toBeGreaterThan(9_000);
    expect(own).toBeLessThanOrEqual(1_500);
    expect(own).toBeGreaterThan(1_000);
  }, 30_000);
});
