import { describe, expect, it } from "vitest";
import { Code, expectCode, must, startPromptService, tableCounts } from "./helpers.js";

const acme = { projects: { acme: "publisher" } } as const;
const other = { projects: { other: "editor" } } as const;

describe("prompts by name", () => {
  it("GetPrompt and RenderPrompt by name + label on both ports; by name alone: production, else latest", async () => {
    const svc = await startPromptService();
    const grpc = await svc.client("ada", ["user"], acme);
    const connect = await svc.connectClient("ada", ["user"], acme);
    const service = await svc.client("checkout-app", ["service"], { project: "acme" });
    const p = must(
      (
        await grpc.createPrompt({
          project: "acme",
          name: "checkout-greeting",
          title: "Greeting",
          content: "Hello {{customer}} (v1)",
        })
      ).prompt,
    );
    expect(p).toMatchObject({ project: "acme", name: "checkout-greeting", version: 1, ownerId: "ada" });
    const v2 = must(
      (
        await grpc.updatePrompt({
          project: "acme",
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["content"] },
          content: "Hello {{customer}} (v2)",
        })
      ).prompt,
    );
    // by name alone, no production label yet: the latest version
    for (const client of [grpc, connect, service]) {
      const got = must((await client.getPrompt({ project: "acme", name: "checkout-greeting" })).prompt);
      expect([got.id, got.version]).toEqual([p.id, 2]);
    }
    await grpc.setPromptLabel({ project: "acme", id: p.id, label: "production", version: 1 });
    for (const client of [grpc, connect, service]) {
      const byName = must((await client.getPrompt({ project: "acme", name: "checkout-greeting" })).prompt);
      expect([byName.version, byName.content]).toEqual([1, "Hello {{customer}} (v1)"]);
      const latest = must(
        (await client.getPrompt({ project: "acme", name: "checkout-greeting", label: "latest" })).prompt,
      );
      expect(latest.version).toBe(v2.version);
      const rendered = await client.renderPrompt({
        project: "acme",
        name: "checkout-greeting",
        label: "production",
        variables: { customer: { kind: { case: "stringValue", value: "Ada" } } },
      });
      expect(rendered.text).toBe("Hello Ada (v1)");
      expect(rendered.resolved.map((r) => [r.name, r.version, r.label])).toEqual([
        ["checkout-greeting", 1, "production"],
      ]);
    }
    // a service principal's default project is its own
    expect((await service.getPrompt({ name: "checkout-greeting" })).prompt?.id).toBe(p.id);
    await expectCode(
      grpc.getPrompt({ project: "acme", name: "checkout-greeting", label: "staging" }),
      Code.NotFound,
      /label staging/,
    );
    await expectCode(grpc.getPrompt({ project: "acme", name: "nope" }), Code.NotFound);
    await expectCode(
      grpc.getPrompt({ project: "acme", id: p.id, name: "checkout-greeting" }),
      Code.InvalidArgument,
      /^id: set exactly one of id and name/,
    );
  });

  it("rename keeps the id and frees the old name; names are unique per project, not across projects", async () => {
    const svc = await startPromptService();
    const ada = await svc.client("ada", ["user"], acme);
    const bea = await svc.client("bea", ["user"], other);
    const p = must(
      (await ada.createPrompt({ project: "acme", name: "a/old", title: "t", content: "c" })).prompt,
    );
    const renamed = must(
      (
        await ada.updatePrompt({
          project: "acme",
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["name"] },
          name: "a/new",
        })
      ).prompt,
    );
    expect([renamed.id, renamed.name, renamed.version]).toEqual([p.id, "a/new", 1]);
    await expectCode(ada.getPrompt({ project: "acme", name: "a/old" }), Code.NotFound);
    expect((await ada.getPrompt({ project: "acme", name: "a/new" })).prompt?.id).toBe(p.id);
    // the old name is free again
    const q = must(
      (await ada.createPrompt({ project: "acme", name: "a/old", title: "t", content: "c" })).prompt,
    );
    expect(q.id).not.toBe(p.id);
    // a rename onto a taken name is ALREADY_EXISTS and changes nothing
    const before = await tableCounts(svc.db);
    await expectCode(
      ada.updatePrompt({
        project: "acme",
        id: q.id,
        etag: q.etag,
        updateMask: { paths: ["name"] },
        name: "a/new",
      }),
      Code.AlreadyExists,
      /^name: a prompt named a\/new already exists/,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
    // the same name in another project coexists
    const elsewhere = must(
      (await bea.createPrompt({ project: "other", name: "a/new", title: "t", content: "c" })).prompt,
    );
    expect(elsewhere.id).not.toBe(p.id);
    expect((await bea.getPrompt({ project: "other", name: "a/new" })).prompt?.id).toBe(elsewhere.id);
    // a bad name is INVALID_ARGUMENT naming the field
    for (const name of ["Upper", ".dot", "sp ace", "x".repeat(129)]) {
      await expectCode(
        ada.createPrompt({ project: "acme", name, title: "t", content: "c" }),
        Code.InvalidArgument,
        /^name: /,
      );
    }
    // a prompt created without a name is named by its id (as every prompt from before names)
    const unnamed = must((await ada.createPrompt({ project: "acme", title: "t", content: "c" })).prompt);
    expect(unnamed.name).toBe(unnamed.id);
  });

  it("50 concurrent creates of one name in a project: exactly 1 OK, 49 ALREADY_EXISTS", async () => {
    const svc = await startPromptService();
    const ada = await svc.client("ada", ["user"], acme);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) =>
        ada.createPrompt({ project: "acme", name: "race", title: `t${i}`, content: "c" }),
      ),
    );
    const ok = outcomes.filter((o) => o.status === "fulfilled");
    const codes = outcomes.flatMap((o) =>
      o.status === "rejected" ? [(o.reason as { code?: number }).code] : [],
    );
    expect(ok).toHaveLength(1);
    expect(codes).toEqual(Array(49).fill(Code.AlreadyExists));
    const listed = await ada.listPrompts({ project: "acme", namePrefix: "race" });
    expect(listed.prompts).toHaveLength(1);
  });

  it("ListPrompts filters by name prefix and title substring, newest first, keyset-paged", async () => {
    const svc = await startPromptService();
    const ada = await svc.client("ada", ["user"], acme);
    const made: string[] = [];
    for (const [name, title] of [
      ["support/refund", "Refund policy"],
      ["support/greeting", "Greeting"],
      ["sales/greeting", "Greeting for sales"],
      ["support/escalate", "Escalation"],
    ]) {
      made.push(must((await ada.createPrompt({ project: "acme", name, title, content: "c" })).prompt).name);
    }
    const names = async (req: Record<string, unknown>) => {
      const out: string[] = [];
      let pageToken = "";
      do {
        const page = await ada.listPrompts({ project: "acme", pageSize: 1, pageToken, ...req });
        out.push(...page.prompts.map((p) => p.name));
        pageToken = page.nextPageToken;
      } while (pageToken !== "");
      return out;
    };
    expect(await names({ namePrefix: "support/" })).toEqual([
      "support/escalate",
      "support/greeting",
      "support/refund",
    ]);
    expect(await names({ titleContains: "Greeting" })).toEqual(["sales/greeting", "support/greeting"]);
    expect(await names({ namePrefix: "support/", titleContains: "Greeting" })).toEqual(["support/greeting"]);
    expect(await names({ namePrefix: "nothing" })).toEqual([]);
    await expectCode(
      ada.listPrompts({ project: "acme", namePrefix: "Bad" }),
      Code.InvalidArgument,
      /^name_prefix/,
    );
  });
});
