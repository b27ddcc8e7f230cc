import {
  ChatRole,
  type Prompt,
  PromptTemplateView,
  PromptVersionView,
  PromptView,
} from "@autoforge/contracts/prompt/v1";
import { describe, expect, it } from "vitest";
import { itWith, itWithout } from "../../../test/support/engine.js";
import { Code, expectCode, must, type PromptClient, startPromptService } from "./helpers.js";

/**
 * List RPCs cap a page by bytes as well as by count: six prompts of 900 KB do not fit the 4 MiB message limit,
 * so a page stops early, says so with its token, and the next page starts right after it. The BASIC view leaves
 * out the large fields, and then the same prompts fit one page. UNSPECIFIED is FULL (what lists returned before).
 */

const bigText = (seed: number) => `${seed} lorem ipsum dolor sit amet\n`.repeat(32_000).slice(0, 900_000);

interface Page<T> {
  items: T[];
  nextPageToken: string;
}

/** Every page of a list, following next_page_token until it is empty. */
async function allPages<T>(list: (pageToken: string) => Promise<Page<T>>): Promise<Page<T>[]> {
  const pages: Page<T>[] = [];
  let token = "";
  do {
    const page = await list(token);
    pages.push(page);
    token = page.nextPageToken;
  } while (token !== "" && pages.length < 50);
  return pages;
}

/** Pages cut short by bytes: each but the last is shorter than `pageSize`, holds at least one item, has a token. */
function expectShortPagesWithTokens<T>(pages: Page<T>[], pageSize: number) {
  expect(pages.length).toBeGreaterThan(1);
  for (const page of pages.slice(0, -1)) {
    expect(page.items.length).toBeGreaterThan(0);
    expect(page.items.length).toBeLessThan(pageSize);
    expect(page.nextPageToken).not.toBe("");
  }
  expect(pages.at(-1)?.nextPageToken).toBe("");
}

async function clientsOnBothPorts(svc: Awaited<ReturnType<typeof startPromptService>>) {
  return [
    ["gRPC", svc.alice],
    ["Connect JSON", await svc.connectClient("alice", ["user"])],
  ] as const satisfies readonly (readonly [string, PromptClient])[];
}

describe("ListPrompts: pages capped by bytes, BASIC and FULL views", () => {
  it("six 900 KB prompts with page_size 10: short pages with tokens that continue after the last prompt; BASIC fits one page", async () => {
    const svc = await startPromptService();
    const created: Prompt[] = [];
    for (let i = 0; i < 6; i++) {
      const body =
        i % 2 === 0
          ? { content: bigText(i) }
          : {
              messages: [
                { role: ChatRole.SYSTEM, content: bigText(i).slice(0, 450_000) },
                { role: ChatRole.USER, content: bigText(i).slice(450_000) },
              ],
            };
      created.push(
        must((await svc.alice.createPrompt({ title: `big ${i}`, tags: ["big"], ...body })).prompt),
      );
    }
    const newestFirst = created.map((p) => p.id).reverse();

    for (const [protocol, client] of await clientsOnBothPorts(svc)) {
      for (const view of [PromptView.UNSPECIFIED, PromptView.FULL]) {
        const pages = await allPages(async (pageToken) => {
          const res = await client.listPrompts({ pageSize: 10, pageToken, view });
          return { items: res.prompts, nextPageToken: res.nextPageToken };
        });
        expectShortPagesWithTokens(pages, 10);
        const listed = pages.flatMap((p) => p.items);
        expect(
          listed.map((p) => p.id),
          `${protocol}, view ${view}`,
        ).toEqual(newestFirst);
        // FULL (and UNSPECIFIED, as before views): the whole prompt, as GetPrompt shows it
        for (const p of listed) {
          expect(p).toEqual(must((await svc.alice.getPrompt({ id: p.id })).prompt));
        }
      }

      const basic = await client.listPrompts({ pageSize: 10, view: PromptView.BASIC });
      expect(basic.nextPageToken).toBe("");
      expect(
        basic.prompts.map((p) => p.id),
        protocol,
      ).toEqual(newestFirst);
      for (const p of basic.prompts) {
        const full = must((await svc.alice.getPrompt({ id: p.id })).prompt);
        expect(p.content).toBe("");
        expect(p.messages).toEqual([]);
        // everything else is the FULL prompt's
        expect(p).toEqual({ ...full, content: "", messages: [] });
      }
    }
  });

  it("a page stops where the next prompt would pass the cap, and the next page starts right after it", async () => {
    const svc = await startPromptService();
    for (let i = 0; i < 5; i++) await svc.alice.createPrompt({ title: `small ${i}`, content: "x" });
    for (let i = 0; i < 4; i++) await svc.alice.createPrompt({ title: `big ${i}`, content: bigText(i) });
    // newest first: three big ones (2.7 MB) fit under the 3 MiB cap, a fourth would not
    const first = await svc.alice.listPrompts({ pageSize: 8 });
    expect(first.prompts.map((p) => p.title)).toEqual(["big 3", "big 2", "big 1"]);
    expect(first.nextPageToken).not.toBe("");
    const second = await svc.alice.listPrompts({ pageSize: 8, pageToken: first.nextPageToken });
    expect(second.prompts.map((p) => p.title)).toEqual([
      "big 0",
      "small 4",
      "small 3",
      "small 2",
      "small 1",
      "small 0",
    ]);
    expect(second.nextPageToken).toBe("");
    // the view may change between pages: it is not a filter
    const basicSecond = await svc.alice.listPrompts({
      pageSize: 8,
      pageToken: first.nextPageToken,
      view: PromptView.BASIC,
    });
    expect(basicSecond.prompts.map((p) => p.title)).toEqual(second.prompts.map((p) => p.title));
    // page_size still caps by count
    const counted = await svc.alice.listPrompts({ pageSize: 2, pageToken: first.nextPageToken });
    expect(counted.prompts.map((p) => p.title)).toEqual(["big 0", "small 4"]);
    expect(counted.nextPageToken).not.toBe("");
  });

  it("a view number this server does not know is INVALID_ARGUMENT naming view", async () => {
    const svc = await startPromptService();
    await svc.alice.createPrompt({ title: "t", content: "x" });
    const e = await expectCode(svc.alice.listPrompts({ view: 7 as PromptView }), Code.InvalidArgument);
    expect(e.message).toContain("view");
    const v = await expectCode(
      svc.alice.listPromptTemplates({ view: 3 as PromptTemplateView }),
      Code.InvalidArgument,
    );
    expect(v.message).toContain("view");
  });
});

/** A prompt with five 900 KB versions (change notes `v2`..`v5`): more than sqld answers in one response. */
async function promptWithFiveBigVersions() {
  const svc = await startPromptService();
  let p = must((await svc.alice.createPrompt({ title: "versions", content: bigText(0) })).prompt);
  for (let v = 2; v <= 5; v++) {
    p = must(
      (
        await svc.alice.updatePrompt({
          id: p.id,
          etag: p.etag,
          updateMask: { paths: ["content"] },
          content: bigText(v),
          changeNote: `v${v}`,
        })
      ).prompt,
    );
  }
  return { svc, p };
}

describe("ListPromptVersions and ListPromptTemplates: pages capped by bytes, BASIC and FULL views", () => {
  itWith(
    "responsesOver10MB",
    "five 900 KB versions: short pages with tokens; BASIC leaves out content and diff and fits one page",
    async () => {
      const { svc, p } = await promptWithFiveBigVersions();
      for (const [protocol, client] of await clientsOnBothPorts(svc)) {
        const pages = await allPages(async (pageToken) => {
          const res = await client.listPromptVersions({ promptId: p.id, pageSize: 10, pageToken });
          return { items: res.versions, nextPageToken: res.nextPageToken };
        });
        expectShortPagesWithTokens(pages, 10);
        const listed = pages.flatMap((page) => page.items);
        expect(
          listed.map((v) => v.version),
          protocol,
        ).toEqual([5, 4, 3, 2, 1]);
        expect(listed.map((v) => v.content)).toEqual([5, 4, 3, 2, 0].map(bigText));
        expect(listed.slice(0, 4).every((v) => v.diff.length > 0)).toBe(true);

        const basic = await client.listPromptVersions({
          promptId: p.id,
          pageSize: 10,
          view: PromptVersionView.BASIC,
        });
        expect(basic.nextPageToken).toBe("");
        expect(basic.versions).toEqual(listed.map((v) => ({ ...v, content: "", diff: "", messages: [] })));
      }
    },
  );

  // sqld refuses to answer more than 10 MB: the FULL page of five 900 KB versions (with their diffs) is a clear
  // RESOURCE_EXHAUSTED there, and BASIC, which reads no bodies, still lists them all in one page
  itWithout(
    "responsesOver10MB",
    "five 900 KB versions where answers over 10 MB are refused: FULL is RESOURCE_EXHAUSTED naming the limit, BASIC fits one page",
    async () => {
      const { svc, p } = await promptWithFiveBigVersions();
      for (const [, client] of await clientsOnBothPorts(svc)) {
        const full = await expectCode(
          client.listPromptVersions({ promptId: p.id, pageSize: 10 }),
          Code.ResourceExhausted,
        );
        expect(full.message).toContain("BASIC view");
        const basic = await client.listPromptVersions({
          promptId: p.id,
          pageSize: 10,
          view: PromptVersionView.BASIC,
        });
        expect(basic.nextPageToken).toBe("");
        expect(basic.versions.map((v) => [v.version, v.content, v.diff])).toEqual(
          [5, 4, 3, 2, 1].map((v) => [v, "", ""]),
        );
      }
    },
  );

  it("six 900 KB templates: short pages with tokens; BASIC leaves out the body and fits one page", async () => {
    const svc = await startPromptService();
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const t = await svc.alice.createPromptTemplate({ name: `big-${i}`, body: bigText(i) });
      ids.push(must(t.template).id);
    }
    for (const [protocol, client] of await clientsOnBothPorts(svc)) {
      const pages = await allPages(async (pageToken) => {
        const res = await client.listPromptTemplates({ pageSize: 10, pageToken });
        return { items: res.templates, nextPageToken: res.nextPageToken };
      });
      expectShortPagesWithTokens(pages, 10);
      const listed = pages.flatMap((page) => page.items);
      expect(
        listed.map((t) => t.id),
        protocol,
      ).toEqual([...ids].reverse());
      expect(listed.map((t) => t.body)).toEqual([5, 4, 3, 2, 1, 0].map(bigText));

      const basic = await client.listPromptTemplates({ pageSize: 10, view: PromptTemplateView.BASIC });
      expect(basic.nextPageToken).toBe("");
      expect(basic.templates).toEqual(listed.map((t) => ({ ...t, body: "" })));
    }
  });
});
