import { VariableType } from "@autoforge/contracts/prompt/v1";
import { describe, expect, it } from "vitest";
import { Code, expectCode, must, startPromptService, tableCounts } from "./helpers.js";

const missing = "01900000-0000-7000-8000-000000000000";
const variables = [
  { name: "text", type: VariableType.STRING, required: true },
  {
    name: "words",
    type: VariableType.NUMBER,
    defaultValue: { kind: { case: "numberValue" as const, value: 50 } },
  },
  { name: "bullets", type: VariableType.BOOLEAN },
  { name: "tone", type: VariableType.ENUM, required: true, enumValues: ["formal", "casual"] },
];
const body = "Summarise in {{words}} words ({{tone}}, bullets={{bullets}}):\n{{ text }}";

describe("prompt templates", () => {
  it("creates, gets, lists and renders by id or name", async () => {
    const svc = await startPromptService();
    const { template } = await svc.alice.createPromptTemplate({
      name: "summary.v1",
      description: "d",
      body,
      variables,
    });
    expect(template).toMatchObject({ ownerId: "alice", name: "summary.v1", description: "d", body });
    expect(template?.variables.map((v) => v.name)).toEqual(["text", "words", "bullets", "tone"]);
    expect(template?.variables[1]?.defaultValue?.kind).toEqual({ case: "numberValue", value: 50 });
    expect((await svc.alice.getPromptTemplate({ id: must(template).id })).template).toEqual(template);

    const rendered = await svc.alice.renderPromptTemplate({
      id: must(template).id,
      variables: {
        text: { kind: { case: "stringValue", value: "'; DROP TABLE prompts; --" } },
        tone: { kind: { case: "stringValue", value: "casual" } },
        bullets: { kind: { case: "boolValue", value: true } },
      },
    });
    expect(rendered.text).toBe("Summarise in 50 words (casual, bullets=true):\n'; DROP TABLE prompts; --");
    const byName = await svc.alice.renderPromptTemplate({
      name: "summary.v1",
      variables: {
        text: { kind: { case: "stringValue", value: "x" } },
        tone: { kind: { case: "stringValue", value: "formal" } },
      },
    });
    expect(byName.text).toBe("Summarise in 50 words (formal, bullets=):\nx");

    for (let i = 0; i < 4; i++) await svc.alice.createPromptTemplate({ name: `t${i}`, body: "b" });
    const names: string[] = [];
    let pageToken = "";
    do {
      const page = await svc.alice.listPromptTemplates({ pageSize: 2, pageToken });
      names.push(...page.templates.map((t) => t.name));
      pageToken = page.nextPageToken;
    } while (pageToken !== "");
    expect(names).toEqual(["t3", "t2", "t1", "t0", "summary.v1"]);
    expect((await svc.bob.listPromptTemplates({})).templates).toEqual([]);
  });

  it("names are unique per owner, not globally", async () => {
    const svc = await startPromptService();
    await svc.alice.createPromptTemplate({ name: "same", body: "b" });
    await expectCode(
      svc.alice.createPromptTemplate({ name: "same", body: "b2" }),
      Code.AlreadyExists,
      /name/,
    );
    expect((await svc.bob.createPromptTemplate({ name: "same", body: "b" })).template?.ownerId).toBe("bob");
  });

  it("replays a request_id; the key with another payload is ALREADY_EXISTS", async () => {
    const svc = await startPromptService();
    const a = must((await svc.alice.createPromptTemplate({ name: "n", body: "b", requestId: "k" })).template);
    expect((await svc.alice.createPromptTemplate({ name: "n", body: "b", requestId: "k" })).template).toEqual(
      a,
    );
    await expectCode(
      svc.alice.createPromptTemplate({ name: "n2", body: "b", requestId: "k" }),
      Code.AlreadyExists,
      /request_id/,
    );
  });

  it("refuses an undeclared variable in the body, naming it, and bad declarations", async () => {
    const svc = await startPromptService();
    await expectCode(
      svc.alice.createPromptTemplate({ name: "n", body: "Hi {{who}}" }),
      Code.InvalidArgument,
      /^body.*who/,
    );
    await expectCode(
      svc.alice.createPromptTemplate({
        name: "n",
        body: "{{x}}",
        variables: [{ name: "x", type: VariableType.UNSPECIFIED }],
      }),
      Code.InvalidArgument,
      /^variables\[0\]\.type/,
    );
    await expectCode(
      svc.alice.createPromptTemplate({
        name: "n",
        body: "{{x}}",
        variables: [
          {
            name: "x",
            type: VariableType.NUMBER,
            defaultValue: { kind: { case: "stringValue", value: "five" } },
          },
        ],
      }),
      Code.InvalidArgument,
      /^variables\[0\]\.default_value/,
    );
    await expectCode(
      svc.alice.createPromptTemplate({
        name: "n",
        body: "{{x}}",
        variables: [{ name: "x", type: VariableType.ENUM }],
      }),
      Code.InvalidArgument,
      /^variables\[0\]\.enum_values/,
    );
    await expectCode(
      svc.alice.createPromptTemplate({ name: "bad name!", body: "b" }),
      Code.InvalidArgument,
      /^name/,
    );
    await expectCode(svc.alice.createPromptTemplate({ name: "n", body: "" }), Code.InvalidArgument, /^body/);
    expect((await tableCounts(svc.db)).prompt_templates).toBe(0);
  });

  it("render names a missing, mistyped or undeclared variable; unknown templates are NOT_FOUND", async () => {
    const svc = await startPromptService();
    const t = must((await svc.alice.createPromptTemplate({ name: "s", body, variables })).template);
    const str = (value: string) => ({ kind: { case: "stringValue" as const, value } });
    await expectCode(
      svc.alice.renderPromptTemplate({ id: t.id, variables: { tone: str("formal") } }),
      Code.InvalidArgument,
      /^variables\.text/,
    );
    await expectCode(
      svc.alice.renderPromptTemplate({ id: t.id, variables: { text: str("x"), tone: str("angry") } }),
      Code.InvalidArgument,
      /^variables\.tone/,
    );
    await expectCode(
      svc.alice.renderPromptTemplate({
        id: t.id,
        variables: { text: str("x"), tone: str("formal"), words: str("many") },
      }),
      Code.InvalidArgument,
      /^variables\.words/,
    );
    await expectCode(
      svc.alice.renderPromptTemplate({
        id: t.id,
        variables: { text: str("x"), tone: str("formal"), extra: str("y") },
      }),
      Code.InvalidArgument,
      /^variables\.extra/,
    );
    await expectCode(svc.alice.renderPromptTemplate({ id: t.id, name: "s" }), Code.InvalidArgument, /^id/);
    await expectCode(svc.alice.renderPromptTemplate({}), Code.InvalidArgument, /^id/);
    await expectCode(svc.alice.renderPromptTemplate({ id: missing }), Code.NotFound);
    await expectCode(svc.alice.renderPromptTemplate({ name: "nope" }), Code.NotFound);
    await expectCode(svc.alice.getPromptTemplate({ id: missing }), Code.NotFound);
    await expectCode(svc.alice.getPromptTemplate({ id: "x" }), Code.InvalidArgument, /^id/);
    await expectCode(svc.alice.listPromptTemplates({ pageSize: 1000 }), Code.InvalidArgument, /^page_size/);
  });
});
