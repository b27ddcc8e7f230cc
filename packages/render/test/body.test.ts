import { describe, expect, it } from "vitest";
import { type ChatMessage, checkBody, inferDeclarations, type PromptBody } from "../src/index.js";
import { decl, fails } from "./helpers.js";

const text = (t: string): PromptBody => ({ kind: "text", text: t });
const chat = (...messages: ChatMessage[]): PromptBody => ({ kind: "chat", messages });

describe("checkBody", () => {
  const decls = [decl("x"), decl("y")];

  it("accepts declared variables, literals and well-formed includes", () => {
    expect(() => checkBody(text("{{x}} {{ y }} {{ not a var }} {{> inc@production}}"), decls)).not.toThrow();
    expect(() =>
      checkBody(
        chat(
          { role: "system", content: "{{x}} {{> rules@2}}" },
          { role: "user", content: "{{y}}", name: "bob_1-A" },
          { role: "assistant", content: "", name: "" },
          { role: "tool", content: "t" },
        ),
        decls,
      ),
    ).not.toThrow();
  });
  it("names an undeclared variable in a text (content) or a message (messages[i].content)", () => {
    expect(fails(() => checkBody(text("Hi {{who}}"), decls)).message).toBe(
      "content: uses the undeclared variable {{who}}: declare who",
    );
    const e = fails(() =>
      checkBody(chat({ role: "system", content: "{{x}}" }, { role: "user", content: "{{ who }}" }), decls),
    );
    expect(e.field).toBe("messages[1].content");
    expect(e.reason).toBe("uses the undeclared variable {{who}}: declare who");
    expect(fails(() => checkBody(text("{{who}}"), [], "body")).field).toBe("body");
    expect(fails(() => checkBody(chat({ role: "user", content: "{{who}}" }), [], "msgs")).field).toBe(
      "msgs[0].content",
    );
  });
  it("names a malformed include", () => {
    expect(fails(() => checkBody(text("{{> Bad}}"), decls)).field).toBe("content");
    expect(
      fails(() =>
        checkBody(chat({ role: "user", content: "ok" }, { role: "user", content: "{{> a@}}" }), decls),
      ).field,
    ).toBe("messages[1].content");
  });
  it("checks the chat shape: 1 to 100 messages, a role, a name of [A-Za-z0-9_-]{1,64}", () => {
    expect(fails(() => checkBody(chat(), decls)).message).toBe("messages: must have 1 to 100 messages");
    const many = Array.from({ length: 101 }, (): ChatMessage => ({ role: "user", content: "" }));
    expect(fails(() => checkBody(chat(...many), decls)).field).toBe("messages");
    expect(() => checkBody(chat(...many.slice(1)), decls)).not.toThrow();
    const noRole = { role: undefined, content: "" } as unknown as ChatMessage;
    expect(fails(() => checkBody(chat({ role: "user", content: "" }, noRole), decls)).message).toBe(
      "messages[1].role: must be system, user, assistant or tool",
    );
    expect(fails(() => checkBody(chat({ role: "tool", content: "", name: "a b" }), decls)).message).toBe(
      "messages[0].name: must match [A-Za-z0-9_-]{1,64}",
    );
    expect(
      fails(() => checkBody(chat({ role: "tool", content: "", name: "n".repeat(65) }), decls)).field,
    ).toBe("messages[0].name");
  });
  it("limits a text, or all messages together, to 1 MiB of UTF-8", () => {
    const mib = 1024 * 1024;
    expect(() => checkBody(text("a".repeat(mib)), [])).not.toThrow();
    expect(fails(() => checkBody(text("a".repeat(mib + 1)), [])).message).toBe(
      "content: at most 1048576 bytes",
    );
    // 3 bytes each in UTF-8, one UTF-16 unit each
    expect(fails(() => checkBody(text("€".repeat(mib / 2)), [])).field).toBe("content");
    const half = { role: "user", content: "a".repeat(mib / 2) } as const;
    expect(() => checkBody(chat(half, half), [])).not.toThrow();
    expect(fails(() => checkBody(chat(half, half, { role: "user", content: "a" }), [])).message).toBe(
      "messages: at most 1048576 bytes in all messages together",
    );
  });
});

describe("inferDeclarations", () => {
  it("makes each variable used a required string, in order of first use", () => {
    const inferred = [
      { name: "b", type: "string", required: true, enumValues: [], description: "" },
      { name: "a", type: "string", required: true, enumValues: [], description: "" },
      { name: "c", type: "string", required: true, enumValues: [], description: "" },
    ];
    expect(inferDeclarations(text("{{b}} {{a}} {{ b }} {{> inc}} {{ not one }} {{c}}"))).toEqual(inferred);
    expect(
      inferDeclarations(
        chat({ role: "system", content: "{{b}} {{a}}" }, { role: "user", content: "{{a}}{{c}}" }),
      ),
    ).toEqual(inferred);
    expect(inferDeclarations(text("no variables"))).toEqual([]);
  });
  it("infers declarations that pass checkBody", () => {
    const body = chat({ role: "user", content: "{{x}} {{y}}" });
    expect(() => checkBody(body, inferDeclarations(body))).not.toThrow();
  });
});
