import { type PromptStatus, VariableType } from "@autoforge/contracts/prompt/v1";
import { ConnectError } from "@connectrpc/connect";
import { describe, expect, it } from "vitest";
import { Code, expectCode, must, startPromptService, tableCounts } from "./helpers.js";

const nasty = [
  "'; DROP TABLE prompts; --",
  '" OR 1=1 --',
  "Robert'); DELETE FROM audit_log;--",
  "%_\\ backslash and LIKE wildcards",
  "emoji 🧪 and 日本語 and \u202e RTL",
  "/* comment */ UNION SELECT * FROM sqlite_master",
].join("\n");

const shortNasty = "x'); DROP TABLE prompt_templates; --";

describe("bad input", () => {
  it("answers INVALID_ARGUMENT naming the field (never INTERNAL) and writes nothing", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "t", content: "c" })).prompt);
    const before = await tableCounts(svc.db);
    const cases: [string, () => Promise<unknown>, RegExp][] = [
      ["empty title", () => svc.alice.createPrompt({ title: "", content: "c" }), /^title/],
      [
        "256-character title",
        () => svc.alice.createPrompt({ title: "x".repeat(256), content: "c" }),
        /^title/,
      ],
      [
        "content just over 1 MiB",
        () => svc.alice.createPrompt({ title: "t", content: "x".repeat(1024 * 1024 + 1) }),
        /^content/,
      ],
      [
        "tag of 51 characters",
        () => svc.alice.createPrompt({ title: "t", content: "c", tags: ["x".repeat(51)] }),
        /^tags\[0\]/,
      ],
      [
        "empty tag",
        () => svc.alice.createPrompt({ title: "t", content: "c", tags: ["ok", ""] }),
        /^tags\[1\]/,
      ],
      [
        "tag with SQL",
        () => svc.alice.createPrompt({ title: "t", content: "c", tags: ["a'; --"] }),
        /^tags\[0\]/,
      ],
      [
        "21 tags",
        () =>
          svc.alice.createPrompt({
            title: "t",
            content: "c",
            tags: Array.from({ length: 21 }, (_, i) => `t${i}`),
          }),
        /^tags/,
      ],
      [
        "malformed parent_id",
        () => svc.alice.createPrompt({ title: "t", content: "c", parentId: "1 OR 1=1" }),
        /^parent_id/,
      ],
      [
        "65-character request_id",
        () => svc.alice.createPrompt({ title: "t", content: "c", requestId: "r".repeat(65) }),
        /^request_id/,
      ],
      [
        "oversized metadata",
        () => svc.alice.createPrompt({ title: "t", content: "c", metadata: { big: "x".repeat(70_000) } }),
        /^metadata/,
      ],
      ["malformed id", () => svc.alice.getPrompt({ id: "' OR ''='" }), /^id/],
      ["negative version", () => svc.alice.getPrompt({ id: p.id, version: -1 }), /^version/],
      ["unknown status enum value", () => svc.alice.listPrompts({ status: 99 as PromptStatus }), /^status/],
      [
        "unknown status in update",
        () =>
          svc.alice.updatePrompt({
            id: p.id,
            etag: p.etag,
            updateMask: { paths: ["status"] },
            status: 42 as PromptStatus,
          }),
        /^status/,
      ],
      ["page_size 10,000", () => svc.alice.listPrompts({ pageSize: 10_000 }), /^page_size/],
      ["tag filter of 51 characters", () => svc.alice.listPrompts({ tag: "x".repeat(51) }), /^tag/],
      [
        "change_note over 1,000",
        () =>
          svc.alice.updatePrompt({
            id: p.id,
            etag: p.etag,
            updateMask: { paths: ["title"] },
            title: "n",
            changeNote: "x".repeat(1001),
          }),
        /^change_note/,
      ],
      ["label with SQL", () => svc.alice.setPromptLabel({ id: p.id, label: "x'--", version: 1 }), /^label/],
      [
        "template name with SQL",
        () => svc.alice.createPromptTemplate({ name: "n'; --", body: "b" }),
        /^name/,
      ],
      [
        "variable name with SQL",
        () =>
          svc.alice.createPromptTemplate({
            name: "n",
            body: "b",
            variables: [{ name: "x;--", type: VariableType.STRING }],
          }),
        /^variables\[0\]\.name/,
      ],
      ["NUL in title", () => svc.alice.createPrompt({ title: "a\0b", content: "c" }), /^title.*NUL/],
      ["NUL in content", () => svc.alice.createPrompt({ title: "t", content: "a\0b" }), /^content.*NUL/],
      [
        "NUL in change_note",
        () =>
          svc.alice.updatePrompt({
            id: p.id,
            etag: p.etag,
            updateMask: { paths: ["title"] },
            title: "n",
            changeNote: "\0",
          }),
        /^change_note/,
      ],
      ["NUL in template body", () => svc.alice.createPromptTemplate({ name: "n", body: "a\0" }), /^body/],
      [
        "NUL in an enum value",
        () =>
          svc.alice.createPromptTemplate({
            name: "n",
            body: "b",
            variables: [{ name: "x", type: VariableType.ENUM, enumValues: ["a\0"] }],
          }),
        /^variables\[0\]\.enum_values/,
      ],
      [
        "negative after_sequence",
        () => svc.service.listPromptEvents({ afterSequence: -1n }),
        /^after_sequence/,
      ],
    ];
    for (const [name, call, field] of cases) {
      const e = await expectCode(call(), Code.InvalidArgument, field).catch((err: unknown) => {
        throw new Error(`${name}: ${String(err)}`);
      });
      expect(e.code, name).not.toBe(Code.Internal);
    }
    expect(await tableCounts(svc.db)).toEqual(before);
  });

  it("a message over the 4 MiB transport cap is RESOURCE_EXHAUSTED on both ports, nothing written", async () => {
    const svc = await startPromptService();
    const before = await tableCounts(svc.db);
    // 10 MB on the Connect port; 5 MiB on the gRPC port, because the connect-node gRPC *client* used here
    // resets a 10 MB upload itself (NGHTTP2_ENHANCE_YOUR_CALM, its own HTTP/2 session memory limit) before
    // the server can answer. The grpc-js server has no such limit.
    const overCap = "x".repeat(5 * 1024 * 1024);
    await expectCode(svc.alice.createPrompt({ title: "t", content: overCap }), Code.ResourceExhausted);
    const viaConnect = await svc.connectClient("alice", ["user"]);
    await expectCode(
      viaConnect.createPrompt({ title: "t", content: "x".repeat(10 * 1024 * 1024) }),
      Code.ResourceExhausted,
    );
    expect(await tableCounts(svc.db)).toEqual(before);
    // the server is still fine
    expect(
      (await svc.alice.createPrompt({ title: "t", content: "x".repeat(1024 * 1024) })).prompt?.content,
    ).toHaveLength(1024 * 1024);
  });

  it("stores SQL metacharacters verbatim in every free-text field and reads them back byte for byte", async () => {
    const svc = await startPromptService();
    const title = `${nasty.replaceAll("\n", " ")}`.slice(0, 255);
    const created = must(
      (
        await svc.alice.createPrompt({
          title,
          content: nasty,
          metadata: { [nasty]: nasty, nested: { list: [nasty, 1, true, null] } },
          modelConfig: { model: nasty },
          requestId: "'; DROP TABLE idempotency_keys; --",
        })
      ).prompt,
    );
    const updated = must(
      (
        await svc.alice.updatePrompt({
          id: created.id,
          etag: created.etag,
          updateMask: { paths: ["content"] },
          content: `${nasty}\nmore`,
          changeNote: nasty,
        })
      ).prompt,
    );
    const got = must((await svc.alice.getPrompt({ id: created.id, version: 1 })).prompt);
    expect(got.title).toBe(title);
    expect(got.content).toBe(nasty);
    expect(got.metadata).toEqual({ [nasty]: nasty, nested: { list: [nasty, 1, true, null] } });
    expect(got.modelConfig).toEqual({ model: nasty });
    expect(updated.content).toBe(`${nasty}\nmore`);
    const v2 = must((await svc.alice.listPromptVersions({ promptId: created.id, pageSize: 1 })).versions[0]);
    expect(v2.changeNote).toBe(nasty);
    // the SQL-looking request_id is just a key
    const replay = must(
      (
        await svc.alice.createPrompt({
          title,
          content: nasty,
          metadata: { [nasty]: nasty, nested: { list: [nasty, 1, true, null] } },
          modelConfig: { model: nasty },
          requestId: "'; DROP TABLE idempotency_keys; --",
        })
      ).prompt,
    );
    expect(replay.id).toBe(created.id);

    const t = must(
      (
        await svc.alice.createPromptTemplate({
          name: "sql.template",
          description: nasty,
          body: `${nasty} {{v}}`,
          variables: [
            { name: "v", type: VariableType.ENUM, enumValues: [shortNasty, "b"], description: nasty },
          ],
        })
      ).template,
    );
    const gotT = must((await svc.alice.getPromptTemplate({ id: t.id })).template);
    expect(gotT.description).toBe(nasty);
    expect(gotT.variables[0]?.enumValues).toEqual([shortNasty, "b"]);
    const rendered = await svc.alice.renderPromptTemplate({
      id: t.id,
      variables: { v: { kind: { case: "stringValue", value: shortNasty } } },
    });
    expect(rendered.text).toBe(`${nasty} ${shortNasty}`);
    // a 255-character title of astral characters fits (lengths count characters, not UTF-16 units)
    const wide = "🧪".repeat(255);
    expect((await svc.alice.createPrompt({ title: wide, content: "c" })).prompt?.title).toBe(wide);
    const counts = await tableCounts(svc.db);
    expect(counts.prompts).toBe(2);
  });

  it("never answers INTERNAL for odd but well-formed requests", async () => {
    const svc = await startPromptService();
    const calls = [
      () => svc.alice.getPrompt({ id: "00000000-0000-0000-0000-000000000000" }),
      () => svc.alice.listPrompts({ tag: "a:b.c-d_e" }),
      () =>
        svc.alice.diffPromptVersions({
          id: "00000000-0000-0000-0000-000000000000",
          fromVersion: 2_147_483_647,
        }),
      () => svc.alice.renderPromptTemplate({ name: "..." }),
      () => svc.service.listPromptEvents({ afterSequence: 9_007_199_254_740_991n }),
    ];
    for (const c of calls) {
      try {
        await c();
      } catch (e) {
        expect(ConnectError.from(e).code).not.toBe(Code.Internal);
      }
    }
  });
});
