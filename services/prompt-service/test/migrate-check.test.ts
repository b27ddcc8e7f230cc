import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkMigrations } from "@autoforge/db";
import { expect, it, onTestFinished } from "vitest";
import { describeWith } from "../../../test/support/engine.js";
import { promptInvariants } from "../src/db/invariants.js";
import { migrationsFolder } from "../src/db/migrations-folder.js";
import { must, startPromptService } from "./helpers.js";

/** The service's migrations plus one more, in a temp folder. */
function migrationsWith(tag: string, up: string, down: string): string {
  const dir = mkdtempSync(join(tmpdir(), "prompt-migrations-"));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  cpSync(migrationsFolder, dir, { recursive: true });
  const journalPath = join(dir, "meta", "_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8")) as { entries: { idx: number }[] };
  journal.entries.push({
    idx: journal.entries.length,
    version: "6",
    when: Date.now(),
    tag,
    breakpoints: true,
  } as never);
  writeFileSync(journalPath, JSON.stringify(journal));
  writeFileSync(join(dir, `${tag}.sql`), up);
  writeFileSync(join(dir, `${tag}.down.sql`), down);
  return dir;
}

describeWith("vacuumInto", "migrate check with prompt-service's invariants", () => {
  it("a database written through the API satisfies every invariant", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "t", content: "v1", tags: ["a", "b"] })).prompt);
    const v2 = must(
      (
        await svc.alice.updatePrompt({
          id: p.id,
          etag: p.etag,
          content: "v2",
          updateMask: { paths: ["content"] },
        })
      ).prompt,
    );
    await svc.alice.setPromptLabel({ id: p.id, label: "staging", version: v2.currentVersion });
    await svc.alice.createPrompt({ title: "child", content: "c", parentId: p.id });

    const report = await checkMigrations(svc.db, { migrationsFolder, invariants: promptInvariants });
    expect(report).toEqual({ safe: true, pending: [], problems: [] });
  });

  it("a migration that deletes first versions breaks 'versions are contiguous from 1' and is reported unsafe", async () => {
    const svc = await startPromptService();
    const p = must((await svc.alice.createPrompt({ title: "t", content: "v1" })).prompt);
    await svc.alice.updatePrompt({
      id: p.id,
      etag: p.etag,
      content: "v2",
      updateMask: { paths: ["content"] },
    });
    // a "clean-up" that looks harmless: drop the first version of prompts that have newer ones
    const folder = migrationsWith(
      "0002_prune_first_versions",
      "DELETE FROM prompt_versions WHERE version = 1 AND prompt_id IN (SELECT prompt_id FROM prompt_versions WHERE version = 2);",
      "SELECT 1;",
    );

    const report = await checkMigrations(svc.db, { migrationsFolder: folder, invariants: promptInvariants });
    expect(report.safe).toBe(false);
    expect(report.pending).toEqual(["0002_prune_first_versions"]);
    expect(report.problems).toEqual([
      expect.stringMatching(
        new RegExp(`^invariant "versions are contiguous from 1" violated by 1 row\\(s\\): .*${p.id}`),
      ),
    ]);
    expect((await svc.alice.getPrompt({ id: p.id, version: 1 })).prompt?.content).toBe("v1");
  });
});
