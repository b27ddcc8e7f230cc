/**
 * docs/errors.md lists every ErrorInfo reason the code sends, and only those: the reasons thrown in the
 * sources (`reason: "X"` / `reason = "X"` in packages/* and services/*), the database errors' reasons (from
 * mapError itself) and the code-name defaults the doc names.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  type ConstraintKind,
  ConstraintViolationError,
  DatabaseClosedError,
  TransientDatabaseError,
} from "@autoforge/db";
import { describe, expect, it } from "vitest";
import { mapError, type WireDetail } from "../src/index.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === "gen" || name === "migrations" ? [] : sourceFiles(path);
    return path.endsWith(".ts") ? [path] : [];
  });
}

function reasonsInSources(): Set<string> {
  const out = new Set<string>();
  for (const top of ["packages", "services"]) {
    for (const pkg of readdirSync(join(root, top))) {
      const src = join(root, top, pkg, "src");
      if (!statSync(join(root, top, pkg)).isDirectory() || !readdirSync(join(root, top, pkg)).includes("src"))
        continue;
      for (const file of sourceFiles(src)) {
        for (const m of readFileSync(file, "utf8").matchAll(/\breason(?:: | = )"([A-Z][A-Z0-9_]*)"/g)) {
          if (m[1] !== undefined) out.add(m[1]);
        }
      }
    }
  }
  return out;
}

function reasonOf(details: readonly WireDetail[]): string {
  const info = details[0];
  if (info === undefined || !("desc" in info)) throw new Error("no outgoing ErrorInfo");
  return (info.value as { reason: string }).reason;
}

function databaseReasons(): Set<string> {
  const kinds: ConstraintKind[] = [
    "check",
    "not_null",
    "trigger",
    "unique",
    "primary_key",
    "foreign_key",
    "other",
  ];
  const errors: unknown[] = [
    ...kinds.map((k) => new ConstraintViolationError("SQLITE_CONSTRAINT", "SQLITE_CONSTRAINT", k, "t.c")),
    new TransientDatabaseError("busy", "SQLITE_BUSY", "busy"),
    new DatabaseClosedError(),
  ];
  return new Set(errors.map((e) => reasonOf(mapError(e).details)));
}

/** The first column of the doc's reason table, and the defaults it names in the paragraph above it. */
function documented(): { table: string[]; defaults: string[] } {
  const doc = readFileSync(join(root, "docs", "errors.md"), "utf8");
  const table = [...doc.matchAll(/^\| `([A-Z][A-Z0-9_]*)` +\|/gm)].flatMap((m) =>
    m[1] === undefined ? [] : [m[1]],
  );
  const paragraph = doc.slice(doc.indexOf("Errors without a reason of their own"), doc.indexOf("| reason"));
  const defaults = [...paragraph.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].flatMap((m) =>
    m[1] === undefined ? [] : [m[1]],
  );
  return { table, defaults };
}

describe("docs/errors.md", () => {
  it("lists every reason the code sends, once, and no other", () => {
    const { table, defaults } = documented();
    expect(new Set(table).size, "a reason listed twice").toBe(table.length);
    const sent = new Set([...reasonsInSources(), ...databaseReasons()]);
    expect([...sent].filter((r) => !table.includes(r)).sort(), "sent but not documented").toEqual([]);
    const known = new Set([...sent, ...defaults]);
    expect(table.filter((r) => !known.has(r)).sort(), "documented but never sent").toEqual([]);
    // the defaults are the code names
    expect(defaults).toContain("INTERNAL");
    expect(defaults).toContain("INVALID_ARGUMENT");
  });
});
