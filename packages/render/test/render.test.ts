import { describe, expect, it } from "vitest";
import {
  type ChatMessage,
  type IncludeRef,
  type JsonValue,
  type RenderableVersion,
  renderPrompt,
  type VariableDeclaration,
} from "../src/index.js";
import { decl, failsAsync } from "./helpers.js";

function textVersion(
  name: string,
  text: string,
  variables: VariableDeclaration[] = [],
  version = 1,
): RenderableVersion {
  return { promptId: `id-${name}`, name, version, body: { kind: "text", text }, variables };
}

function chatVersion(
  name: string,
  messages: ChatMessage[],
  variables: VariableDeclaration[] = [],
  version = 1,
): RenderableVersion {
  return { promptId: `id-${name}`, name, version, body: { kind: "chat", messages }, variables };
}

/** Versions by name; labels as `name@label` -> version; no selector means the newest version. */
function store(versions: RenderableVersion[], labels: Record<string, number> = {}) {
  const calls: string[] = [];
  const resolve = async (ref: IncludeRef, from: RenderableVersion) => {
    calls.push(`${from.name} v${from.version}: ${ref.raw}`);
    const all = versions.filter((v) => v.name === ref.name);
    const wanted =
      ref.version ??
      (ref.label !== undefined ? labels[`${ref.name}@${ref.label}`] : Math.max(...all.map((v) => v.version)));
    return all.find((v) => v.version === wanted);
  };
  return { resolve, calls };
}

async function render(
  root: RenderableVersion,
  others: RenderableVersion[],
  variables: Record<string, JsonValue | undefined> = {},
  more: { labels?: Record<string, number>; rootLabel?: string; maxDepth?: number } = {},
) {
  const { resolve } = store([root, ...others], more.labels);
  return renderPrompt({
    root,
    variables,
    resolve,
    ...(more.rootLabel === undefined ? {} : { rootLabel: more.rootLabel }),
    ...(more.maxDepth === undefined ? {} : { maxDepth: more.maxDepth }),
  });
}

describe("renderPrompt: variables", () => {
  it("renders a text prompt with typed values and defaults", async () => {
    const root = textVersion(
      "root",
      "{{ who }} x{{n}} {{loud}} {{tone}} {{data}} {{opt}}|{{ not a var }} {{1x}}",
      [
        decl("who", "string", { required: true }),
        decl("n", "number", { defaultValue: 2 }),
        decl("loud", "boolean"),
        decl("tone", "enum", { enumValues: ["formal", "casual"], defaultValue: "formal" }),
        decl("data", "json"),
        decl("opt"),
      ],
      4,
    );
    const out = await render(root, [], { who: "Ann", loud: false, data: { k: [1, "a"] } });
    expect(out.body).toEqual({
      kind: "text",
      text: 'Ann x2 false formal {"k":[1,"a"]} |{{ not a var }} {{1x}}',
    });
    expect(out.used).toEqual([{ promptId: "id-root", name: "root", version: 4 }]);
  });
  it("substitutes in one pass: a value holding {{x}} or {{> y}} is neither expanded nor resolved", async () => {
    const root = textVersion("root", "[{{a}}] [{{b}}]", [decl("a"), decl("b")]);
    const { resolve, calls } = store([root]);
    const out = await renderPrompt({ root, resolve, variables: { a: "{{b}}", b: "{{> y}} {{> Bad}}" } });
    expect(out.body).toEqual({ kind: "text", text: "[{{b}}] [{{> y}} {{> Bad}}]" });
    expect(calls).toEqual([]);
  });
  it("names an input no version declares, a missing required one, and a mistyped one", async () => {
    const root = textVersion("root", "{{a}} {{> inc}}", [decl("a", "string", { required: true })]);
    const inc = textVersion("inc", "{{b}} {{c}}", [
      decl("b", "number", { required: true }),
      decl("c", "string", { required: true }),
    ]);
    const undeclared = await failsAsync(render(root, [inc], { a: "x", b: 1, c: "y", extra: 1 }));
    expect(undeclared.message).toBe("variables.extra: is not declared");
    expect(undeclared.field).toBe("variables.extra");
    expect((await failsAsync(render(root, [inc], { b: 1, c: "y" }))).message).toBe(
      "variables.a: is required",
    );
    expect((await failsAsync(render(root, [inc], { a: "x", b: 1 }))).message).toBe(
      "variables.c: is required",
    );
    expect((await failsAsync(render(root, [inc], { a: "x", b: "1", c: "y" }))).message).toBe(
      "variables.b: must be a number, got string",
    );
  });
  it("refuses undeclared input even when nothing is included", async () => {
    const root = textVersion("root", "plain");
    expect((await failsAsync(render(root, [], { x: "1" }))).message).toBe("variables.x: is not declared");
  });
});

describe("renderPrompt: includes", () => {
  it("resolves includes by label, by version and by default, and lists the versions used", async () => {
    const root = textVersion("root", "A {{> header@production}} B {{> footer@2}} C {{> sig}} D", [], 7);
    const others = [
      textVersion("header", "H1", [], 1),
      textVersion("header", "H3", [], 3),
      textVersion("footer", "F2", [], 2),
      textVersion("footer", "F5", [], 5),
      textVersion("sig", "S1", [], 1),
      textVersion("sig", "S2", [], 2),
    ];
    const out = await render(root, others, {}, { labels: { "header@production": 1 }, rootLabel: "staging" });
    expect(out.body).toEqual({ kind: "text", text: "A H1 B F2 C S2 D" });
    expect(out.used).toEqual([
      { promptId: "id-root", name: "root", version: 7, label: "staging" },
      { promptId: "id-header", name: "header", version: 1, label: "production" },
      { promptId: "id-footer", name: "footer", version: 2 },
      { promptId: "id-sig", name: "sig", version: 2 },
    ]);
  });
  it("renders each version with its own declarations, sharing the input by name", async () => {
    const root = textVersion("root", "Dear {{name}}, {{> body}}", [
      decl("name", "string", { required: true }),
    ]);
    const body = textVersion("body", "from {{company}} ({{year}}), {{name}}: {{> sig}}", [
      decl("company", "string", { required: true }),
      decl("year", "number", { defaultValue: 2024 }),
    ]);
    const sig = textVersion("sig", "-- {{name}} {{year}}", [
      decl("name", "string", { defaultValue: "team" }),
    ]);
    const out = await render(root, [body, sig], { name: "Ann", company: "ACME" });
    // body does not declare name: its {{name}} is not filled; sig declares name but not year
    expect(out.body).toEqual({ kind: "text", text: "Dear Ann, from ACME (2024), {{name}}: -- Ann {{year}}" });
    const typed = await failsAsync(
      render(
        textVersion("root", "{{x}} {{> inc}}", [decl("x")]),
        [textVersion("inc", "{{x}}", [decl("x", "number")])],
        { x: "abc" },
      ),
    );
    expect(typed.message).toBe("variables.x: must be a number, got string");
  });
  it("does not scan an included text again in the including one", async () => {
    const root = textVersion("root", "<{{> inc}}>", [decl("a")]);
    const inc = textVersion("inc", "{{v}}", [decl("v")]);
    const { resolve, calls } = store([root, inc]);
    const out = await renderPrompt({ root, resolve, variables: { a: "A", v: "{{a}} {{> other}}" } });
    expect(out.body).toEqual({ kind: "text", text: "<{{a}} {{> other}}>" });
    expect(calls).toEqual(["root v1: {{> inc}}"]);
  });
  it("lists each version once, in order of first use, depth-first", async () => {
    const root = textVersion("root", "{{> b}} {{> c}} {{> b@production}} {{> b@1}} {{> e}} {{> b}}");
    const others = [
      textVersion("b", "B"),
      textVersion("c", "C[{{> d}}{{> b}}]"),
      textVersion("d", "D"),
      textVersion("e", "E"),
    ];
    const { resolve, calls } = store([root, ...others], { "b@production": 1 });
    const out = await renderPrompt({ root, resolve, variables: {} });
    expect(out.body).toEqual({ kind: "text", text: "B C[DB] B B E B" });
    expect(
      out.used.map((u) => `${u.name} v${u.version}${u.label === undefined ? "" : ` @${u.label}`}`),
    ).toEqual(["root v1", "b v1", "c v1", "d v1", "e v1"]);
    // one lookup per (version, reference): `{{> b}}` twice in root is one
    expect(calls).toEqual([
      "root v1: {{> b}}",
      "root v1: {{> c}}",
      "c v1: {{> d}}",
      "c v1: {{> b}}",
      "root v1: {{> b@production}}",
      "root v1: {{> b@1}}",
      "root v1: {{> e}}",
    ]);
  });
  it("renders a shared include once per version, so a wide tree stays cheap", async () => {
    const levels = 5;
    const versions = Array.from({ length: levels + 1 }, (_, i) =>
      textVersion(`p${i}`, i === levels ? "x" : `{{> p${i + 1}}}{{> p${i + 1}}}`),
    );
    const root = versions[0] as RenderableVersion;
    const { resolve, calls } = store(versions);
    const out = await renderPrompt({ root, resolve, variables: {} });
    expect(out.body).toEqual({ kind: "text", text: "x".repeat(2 ** levels) });
    expect(calls).toHaveLength(levels);
    expect(out.used.map((u) => u.name)).toEqual(versions.map((v) => v.name));
  });
  it("includes text prompts into a chat prompt's messages", async () => {
    const root = chatVersion(
      "chat",
      [
        { role: "system", content: "{{> rules@production}} Tone: {{tone}}." },
        { role: "user", content: "{{question}}", name: "ann" },
        { role: "assistant", content: "", name: "" },
      ],
      [decl("tone", "enum", { enumValues: ["dry", "warm"], required: true }), decl("question")],
      3,
    );
    const rules = textVersion(
      "rules",
      "Rule for {{product}}.",
      [decl("product", "string", { defaultValue: "X" })],
      2,
    );
    const out = await render(
      root,
      [rules],
      { tone: "dry", question: "Why {{tone}}?" },
      {
        labels: { "rules@production": 2 },
      },
    );
    expect(out.body).toEqual({
      kind: "chat",
      messages: [
        { role: "system", content: "Rule for X. Tone: dry." },
        { role: "user", content: "Why {{tone}}?", name: "ann" },
        { role: "assistant", content: "" },
      ],
    });
    expect(out.used).toEqual([
      { promptId: "id-chat", name: "chat", version: 3 },
      { promptId: "id-rules", name: "rules", version: 2, label: "production" },
    ]);
  });
  it("refuses to include a chat prompt", async () => {
    const root = textVersion("a", "x {{> c}}");
    const c = chatVersion("c", [{ role: "user", content: "hi" }], [], 3);
    const e = await failsAsync(render(root, [c]), "failed_precondition");
    expect(e.message).toBe(
      "include {{> c}} of a v1: c v3 is a chat prompt; only text prompts can be included",
    );
    expect(e.field).toBeUndefined();
    const fromChat = chatVersion("d", [{ role: "user", content: "{{> c}}" }]);
    expect((await failsAsync(render(fromChat, [c]), "failed_precondition")).message).toContain(
      "is a chat prompt",
    );
  });
  it("names an include that does not resolve", async () => {
    const root = textVersion("a", "{{> x@production}}", [], 2);
    const e = await failsAsync(render(root, []), "failed_precondition");
    expect(e.message).toBe("include {{> x@production}} of a v2: not found");
    const nested = await failsAsync(
      render(textVersion("a", "{{> b}}"), [textVersion("b", "{{>  x@3 }}", [], 4)]),
      "failed_precondition",
    );
    expect(nested.message).toBe("include {{> x@3}} of b v4: not found");
  });
});

describe("renderPrompt: cycles and depth", () => {
  it("refuses a cycle a -> b -> a, showing the chain", async () => {
    const a = textVersion("a", "A {{> b@2}}", [], 5);
    const b = textVersion("b", "B {{> a@production}}", [], 2);
    const e = await failsAsync(
      render(a, [b], {}, { rootLabel: "production", labels: { "a@production": 5 } }),
      "failed_precondition",
    );
    expect(e.message).toBe("include cycle: a@production -> b@2 -> a@production");
  });
  it("refuses a prompt including itself", async () => {
    const a = textVersion("a", "A {{> a}}", [], 1);
    expect((await failsAsync(render(a, []), "failed_precondition")).message).toBe("include cycle: a@1 -> a");
  });
  it("counts another version of a prompt on the path as a cycle", async () => {
    const a2 = textVersion("a", "{{> b}}", [], 2);
    const a1 = textVersion("a", "old", [], 1);
    const b = textVersion("b", "{{> a@1}}");
    expect((await failsAsync(render(a2, [a1, b]), "failed_precondition")).message).toBe(
      "include cycle: a@2 -> b -> a@1",
    );
  });
  it("finds a cycle through a version already rendered elsewhere in the tree", async () => {
    const r = textVersion("r", "{{> b}} {{> a@2}}");
    const b = textVersion("b", "{{> a@1}}");
    const a1 = textVersion("a", "old", [], 1);
    const a2 = textVersion("a", "{{> b}}", [], 2);
    expect((await failsAsync(render(r, [b, a1, a2]), "failed_precondition")).message).toBe(
      "include cycle: r@1 -> a@2 -> b -> a@1",
    );
  });
  it("allows maxDepth levels of includes and refuses one more, showing the chain", async () => {
    const chain = (n: number) =>
      Array.from({ length: n + 1 }, (_, i) => textVersion(`p${i}`, i === n ? "end" : `{{> p${i + 1}}}`));
    const [ok, ...okRest] = chain(5) as [RenderableVersion, ...RenderableVersion[]];
    expect((await render(ok, okRest)).body).toEqual({ kind: "text", text: "end" });
    const [deep, ...deepRest] = chain(6) as [RenderableVersion, ...RenderableVersion[]];
    expect((await failsAsync(render(deep, deepRest), "failed_precondition")).message).toBe(
      "includes nested deeper than 5 levels: p0@1 -> p1 -> p2 -> p3 -> p4 -> p5 -> p6",
    );
    const [two, ...twoRest] = chain(2) as [RenderableVersion, ...RenderableVersion[]];
    expect((await failsAsync(render(two, twoRest, {}, { maxDepth: 1 }), "failed_precondition")).message).toBe(
      "includes nested deeper than 1 levels: p0@1 -> p1 -> p2",
    );
    expect((await failsAsync(render(two, twoRest, {}, { maxDepth: 0 }), "failed_precondition")).message).toBe(
      "includes nested deeper than 0 levels: p0@1 -> p1",
    );
  });
  it("checks the depth of a version already loaded when it is reached again deeper", async () => {
    const r = textVersion("r", "{{> x}} {{> y}}");
    const x = textVersion("x", "X{{> z}}");
    const y = textVersion("y", "Y{{> x}}");
    const z = textVersion("z", "Z");
    expect((await render(r, [x, y, z], {}, { maxDepth: 3 })).body).toEqual({ kind: "text", text: "XZ YXZ" });
    expect((await failsAsync(render(r, [x, y, z], {}, { maxDepth: 2 }), "failed_precondition")).message).toBe(
      "includes nested deeper than 2 levels: r@1 -> y -> x -> z",
    );
  });
});
