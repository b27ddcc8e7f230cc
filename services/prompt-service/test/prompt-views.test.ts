import { type Prompt, PromptSchema, PromptStatus } from "@autoforge/contracts/prompt/v1";
import { create } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import { promptMessage } from "../src/convert.js";
import { findPrompt, findVersion } from "../src/db/repository.js";
import { must, startPromptService } from "./helpers.js";

/**
 * GetPrompt and ListPrompts read a prompt with its version, tags and labels in one statement (JSON subselects),
 * and UpdatePrompt builds its response from what it wrote. Each answer must equal the prompt read back one
 * table at a time.
 */
describe("prompt views", () => {
  it("GetPrompt, ListPrompts and the mutations' responses equal the prompt re-read table by table", async () => {
    const svc = await startPromptService();
    const d = svc.db.drizzle();
    const reread = async (id: string, version?: number): Promise<Prompt> => {
      const row = must(await findPrompt(d, "user:alice", id));
      const shown = must(await findVersion(d, id, version ?? row.currentVersion));
      const tags = await svc.db.client.execute({
        sql: "SELECT tag FROM prompt_tags WHERE prompt_id = ? ORDER BY tag",
        args: [id],
      });
      const labels = await svc.db.client.execute({
        sql: "SELECT label, version FROM prompt_labels WHERE prompt_id = ? ORDER BY label",
        args: [id],
      });
      return create(
        PromptSchema,
        promptMessage(
          row,
          shown,
          tags.rows.map((r) => String(r.tag)),
          labels.rows.map((r) => ({ label: String(r.label), version: Number(r.version) })),
        ),
      );
    };
    const c = svc.alicePublisher;
    // mixed case and punctuation: the database's order must be the one the API shows
    const tagSets = [[], ["b", "A", "a", "Z", "_x", "-y", ".z", ":w", "9", "a.b:c-d_e"], ["z", "y"]];
    for (let i = 0; i < 3; i++) {
      let p = must(
        (
          await c.createPrompt({
            title: `t${i}`,
            content: "v1",
            tags: tagSets[i],
            metadata: { k: i },
            modelConfig: { temperature: 0.5, model: "m" },
          })
        ).prompt,
      );
      expect(p).toEqual(await reread(p.id));
      const update = async (paths: string[], fields: Record<string, unknown>) => {
        p = must((await c.updatePrompt({ id: p.id, etag: p.etag, updateMask: { paths }, ...fields })).prompt);
        expect(p).toEqual(await reread(p.id));
      };
      await update(["content"], { content: "v2" });
      await update(["tags"], { tags: ["q", "B", "b", "A"] });
      await update(["title"], { title: "same" });
      await update(["title"], { title: "same" }); // no change
      await update(["model_config"], { modelConfig: { model: "m", temperature: 0.5 } }); // same config
      await update(["model_config", "content"], { modelConfig: { x: 1 }, content: "v2" }); // new config only
      for (const [label, version] of [
        ["staging", 1],
        ["production", 2],
        ["a-b_c", 3],
      ] as const) {
        p = must((await c.setPromptLabel({ id: p.id, label, version })).prompt);
        expect(p).toEqual(await reread(p.id));
      }
      await update(["tags", "status", "metadata", "content"], {
        tags: i === 2 ? [] : ["q", "Q", "_"],
        status: PromptStatus.ACTIVE,
        metadata: {},
        content: "v4",
      });
      for (const version of [1, 2, 3, 4]) {
        expect(must((await c.getPrompt({ id: p.id, version })).prompt)).toEqual(await reread(p.id, version));
      }
      for (const [label, version] of [
        ["staging", 1],
        ["production", 2],
        ["a-b_c", 3],
      ] as const) {
        expect(must((await c.getPrompt({ id: p.id, label })).prompt)).toEqual(await reread(p.id, version));
      }
      expect(must((await c.getPrompt({ id: p.id, label: "latest" })).prompt)).toEqual(await reread(p.id));
      if (i === 1) {
        p = must((await c.removePromptLabel({ id: p.id, label: "staging" })).prompt);
        expect(p).toEqual(await reread(p.id));
        p = must((await c.deletePrompt({ id: p.id })).prompt);
        expect(p).toEqual(await reread(p.id));
        expect(must((await c.getPrompt({ id: p.id })).prompt)).toEqual(await reread(p.id));
      }
    }
    for (const includeDeleted of [false, true]) {
      for (const tag of ["", "q", "_", "z"]) {
        let pageToken = "";
        do {
          const page = await c.listPrompts({ pageSize: 2, includeDeleted, tag, pageToken });
          for (const p of page.prompts) expect(p).toEqual(await reread(p.id));
          pageToken = page.nextPageToken;
        } while (pageToken !== "");
      }
    }
  });
});
