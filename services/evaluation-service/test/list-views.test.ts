import { TestResultView } from "@autoforge/contracts/evaluation/v1";
import { describe, expect, it } from "vitest";
import { Code, expectCode, must, result, startServicesOnBothPorts } from "./helpers.js";

/**
 * ListTestResults and ListEvaluations cap a page by bytes as well as by count: 40 results with 64 KiB texts, or 80
 * evaluations with 60 KB of metadata, do not fit the 4 MiB message limit in one page of 100, so pages stop early
 * with a token that continues right after the last item. BASIC leaves out a result's texts; UNSPECIFIED is FULL.
 */

const alice = { sub: "alice", roles: ["user" as const] };
const text = (label: string, i: number) => `${label} ${i} `.padEnd(64 * 1024, "abcdefgh ");

interface Page<T> {
  items: T[];
  nextPageToken: string;
}

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

function expectShortPagesWithTokens<T>(pages: Page<T>[], pageSize: number) {
  expect(pages.length).toBeGreaterThan(1);
  for (const page of pages.slice(0, -1)) {
    expect(page.items.length).toBeGreaterThan(0);
    expect(page.items.length).toBeLessThan(pageSize);
    expect(page.nextPageToken).not.toBe("");
  }
  expect(pages.at(-1)?.nextPageToken).toBe("");
}

describe("list pages capped by bytes, BASIC and FULL views", () => {
  it("ListTestResults of 40 results with 64 KiB texts: short pages with tokens on both ports; BASIC fits one page", async () => {
    const svc = await startServicesOnBothPorts();
    const prompts = await svc.promptsAs(alice);
    const prompt = must((await prompts.createPrompt({ title: "p", content: "c" })).prompt);
    const { evaluations: grpc } = await svc.clientsFor("grpc", alice);
    const evaluation = must(
      (await grpc.createEvaluation({ promptId: prompt.id, provider: "p", model: "m" })).evaluation,
    );
    await grpc.startEvaluation({ id: evaluation.id });
    for (let batch = 0; batch < 4; batch++) {
      const results = Array.from({ length: 10 }, (_, k) => {
        const i = batch * 10 + k;
        return result(i, {
          input: text("input", i),
          expectedOutput: text("expected", i),
          actualOutput: text("actual", i),
        });
      });
      await grpc.recordTestResults({ evaluationId: evaluation.id, results });
    }
    const names = Array.from({ length: 40 }, (_, i) => `test ${i}`);

    for (const protocol of ["grpc", "connect"] as const) {
      const { evaluations: client } = await svc.clientsFor(protocol, alice);
      for (const view of [TestResultView.UNSPECIFIED, TestResultView.FULL]) {
        const pages = await allPages(async (pageToken) => {
          const res = await client.listTestResults({
            evaluationId: evaluation.id,
            pageSize: 100,
            pageToken,
            view,
          });
          return { items: res.testResults, nextPageToken: res.nextPageToken };
        });
        expectShortPagesWithTokens(pages, 100);
        const listed = pages.flatMap((p) => p.items);
        expect(
          listed.map((r) => r.name),
          `${protocol}, view ${view}`,
        ).toEqual(names);
        expect(listed.map((r) => r.actualOutput)).toEqual(names.map((_, i) => text("actual", i)));
        expect(listed.map((r) => r.input)).toEqual(names.map((_, i) => text("input", i)));
      }

      const full = (
        await allPages(async (pageToken) => {
          const res = await client.listTestResults({ evaluationId: evaluation.id, pageSize: 100, pageToken });
          return { items: res.testResults, nextPageToken: res.nextPageToken };
        })
      ).flatMap((p) => p.items);
      const basic = await client.listTestResults({
        evaluationId: evaluation.id,
        pageSize: 100,
        view: TestResultView.BASIC,
      });
      expect(basic.nextPageToken, protocol).toBe("");
      expect(basic.testResults).toEqual(
        full.map((r) => ({ ...r, input: "", expectedOutput: "", actualOutput: "" })),
      );
      // filters and the view together
      const passed = await client.listTestResults({
        evaluationId: evaluation.id,
        passed: true,
        view: TestResultView.BASIC,
        pageSize: 100,
      });
      expect(passed.testResults.map((r) => r.name)).toEqual(names.filter((_, i) => i % 2 === 0));
    }

    const e = await expectCode(
      grpc.listTestResults({ evaluationId: evaluation.id, view: 9 as TestResultView }),
      Code.InvalidArgument,
    );
    expect(e.message).toContain("view");
  });

  it("ListEvaluations of 80 evaluations with 60 KB metadata: short pages with tokens that continue after the last one", async () => {
    const svc = await startServicesOnBothPorts();
    const prompts = await svc.promptsAs(alice);
    const prompt = must((await prompts.createPrompt({ title: "p", content: "c" })).prompt);
    const { evaluations: grpc } = await svc.clientsFor("grpc", alice);
    const ids: string[] = [];
    for (let i = 0; i < 80; i++) {
      const created = await grpc.createEvaluation({
        promptId: prompt.id,
        provider: "p",
        model: `m${i}`,
        metadata: { blob: `${i} `.padEnd(60_000, "x") },
      });
      ids.push(must(created.evaluation).id);
    }
    for (const protocol of ["grpc", "connect"] as const) {
      const { evaluations: client } = await svc.clientsFor(protocol, alice);
      const pages = await allPages(async (pageToken) => {
        const res = await client.listEvaluations({ promptId: prompt.id, pageSize: 100, pageToken });
        return { items: res.evaluations, nextPageToken: res.nextPageToken };
      });
      expectShortPagesWithTokens(pages, 100);
      const listed = pages.flatMap((p) => p.items);
      expect(
        listed.map((e) => e.id),
        protocol,
      ).toEqual([...ids].reverse());
      expect(listed.map((e) => e.metadata?.blob)).toEqual(
        [...ids].reverse().map((_, k) => `${79 - k} `.padEnd(60_000, "x")),
      );
    }
  });
});
