import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import type { PromptCacheStore } from "../cache/types.js";

/**
 * A PromptCacheStore in one file (Node only: exported from "@autoforge/client/node"). A save writes a temp file
 * next to it and renames it over the old one, so a crash mid-write leaves the previous snapshot, never half of
 * one. A missing file loads as nothing.
 */
export function createFileStore(path: string): PromptCacheStore {
  let n = 0;
  return {
    async load() {
      try {
        return await readFile(path, "utf8");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw e;
      }
    },
    async save(data) {
      await mkdir(dirname(path), { recursive: true });
      const temp = `${path}.${process.pid}.${n++}.tmp`;
      await writeFile(temp, data, { encoding: "utf8", mode: 0o600 });
      await rename(temp, path);
    },
  };
}
