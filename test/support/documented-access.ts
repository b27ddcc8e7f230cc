import { readFileSync } from "node:fs";

/**
 * docs/projects.md's role table as `Service.Method -> needs` (`AdminService.*` for AdminService): each service's
 * access test compares it with the service's declarations, so the page cannot drift from the code.
 */
export function documentedAccess(): Map<string, string> {
  const doc = readFileSync(new URL("../../docs/projects.md", import.meta.url), "utf8");
  const rows = new Map<string, string>();
  for (const m of doc.matchAll(
    /^\| ((?:Prompt|Evaluation|Dataset|Admin)Service\.(?:\w+|\\\*)) +\| ([^|]+?) +\|$/gm,
  )) {
    rows.set((m[1] as string).replace("\\*", "*"), m[2] as string);
  }
  return rows;
}
