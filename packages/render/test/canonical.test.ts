import { describe, expect, it } from "vitest";
import { canonicalForm, type PromptBody } from "../src/index.js";

const text: PromptBody = { kind: "text", text: "Hello {{name}}\nline 2\n" };
const chat: PromptBody = {
  kind: "chat",
  messages: [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi {{name}}\nthere" },
    { role: "tool", content: "{}", name: "lookup" },
    { role: "assistant", content: "", name: "" },
  ],
};

describe("canonicalForm", () => {
  it("is the text itself for a text prompt without model settings", () => {
    expect(canonicalForm(text, undefined)).toBe(text.kind === "text" ? text.text : "");
    expect(canonicalForm(text, {})).toBe("Hello {{name}}\nline 2\n");
    expect(canonicalForm(text, null)).toBe("Hello {{name}}\nline 2\n");
  });
  it("shows chat messages as headers over their contents, one blank line apart", () => {
    expect(canonicalForm(chat, {})).toBe(
      "### system\nBe brief.\n\n### user\nHi {{name}}\nthere\n\n### tool (lookup)\n{}\n\n### assistant\n",
    );
  });
  it("appends model settings as JSON with keys sorted at every level, indented by 2", () => {
    const config = { temperature: 0.2, model: "m", extra: { z: 1, a: [{ y: true, b: null }] } };
    expect(canonicalForm(text, config)).toBe(
      [
        "Hello {{name}}",
        "line 2",
        "",
        "### model_config",
        "{",
        '  "extra": {',
        '    "a": [',
        "      {",
        '        "b": null,',
        '        "y": true',
        "      }",
        "    ],",
        '    "z": 1',
        "  },",
        '  "model": "m",',
        '  "temperature": 0.2',
        "}",
      ].join("\n"),
    );
    expect(canonicalForm({ kind: "chat", messages: [{ role: "user", content: "q" }] }, { b: 1, a: 2 })).toBe(
      '### user\nq\n### model_config\n{\n  "a": 2,\n  "b": 1\n}',
    );
  });
  it("does not depend on key order, and differs when only the model settings change", () => {
    expect(canonicalForm(text, { a: 1, b: { d: 2, c: 3 } })).toBe(
      canonicalForm(text, { b: { c: 3, d: 2 }, a: 1 }),
    );
    expect(canonicalForm(text, { temperature: 0.2 })).not.toBe(canonicalForm(text, { temperature: 0.3 }));
    expect(canonicalForm(text, { temperature: 0.2 })).not.toBe(canonicalForm(text, {}));
    expect(canonicalForm(chat, { temperature: 0.2 })).not.toBe(canonicalForm(chat, undefined));
  });
});
