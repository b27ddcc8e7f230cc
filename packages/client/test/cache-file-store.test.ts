import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Code } from "@connectrpc/connect";
import { afterEach, describe, expect, it } from "vitest";
import { expectCode } from "../../../test/support/assertions.js";
import { createPromptCache } from "../src/cache/index.js";
import { createFileStore } from "../src/node/file-store.js";
import { FakePromptService } from "./cache-fake.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "autoforge-cache-store-"));
  dirs.push(dir);
  return dir;
}

describe("createFileStore", () => {
  it("loads nothing from a missing file, then what was saved; leaves no temp files", async () => {
    const dir = tempDir();
    const store = createFileStore(join(dir, "nested", "prompts.json"));
    expect(await store.load()).toBeUndefined();
    await store.save("one");
    await Promise.all([store.save("two"), store.save("three")]);
    expect(["two", "three"]).toContain(await store.load());
    expect(readdirSync(join(dir, "nested"))).toEqual(["prompts.json"]);
  });

  it("a restarted app serves the entries a previous process saved, while prompt-service is down", async () => {
    const path = join(tempDir(), "prompts.json");
    const service = new FakePromptService();
    service.createPrompt("greeting", { content: "Hello {{name}}" });
    const first = createPromptCache({ client: service.client, store: createFileStore(path) });
    await first.get("greeting");
    await first.close();

    service.down = true;
    const second = createPromptCache({ client: service.client, store: createFileStore(path) });
    try {
      expect(await second.get("greeting")).toMatchObject({ stale: true, source: "cache" });
      expect(await second.render("greeting", { name: "Ada" })).toMatchObject({
        text: "Hello Ada",
        stale: true,
      });
      await expectCode(second.get("other"), Code.Unavailable);
    } finally {
      await second.close();
    }
  });
});
