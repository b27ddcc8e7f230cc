import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const src = join(dirname(fileURLToPath(import.meta.url)), "..", "src");

/** The module specifiers of a file's imports and re-exports (comments stripped: they may name modules). */
function specifiers(file: string): string[] {
  const code = readFileSync(file, "utf8")
    .replace(/\/\*[\s\S]*?\*\//g, "")
    .replace(/^\s*\/\/.*$/gm, "");
  return [...code.matchAll(/(?:\bfrom\s*|\bimport\s*\(?\s*)"([^"]+)"/g)].map((m) => m[1] ?? "");
}

/** Every module reachable from `entry` through relative imports, and the packages they import. */
function reachable(entry: string): { files: string[]; packages: Map<string, string> } {
  const files: string[] = [];
  const packages = new Map<string, string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (files.includes(file)) continue;
    files.push(file);
    for (const spec of specifiers(file)) {
      if (spec.startsWith(".")) {
        const target = resolve(dirname(file), spec.replace(/\.js$/, ".ts"));
        if (existsSync(target)) queue.push(target);
      } else {
        packages.set(`${relative(src, file)}: ${spec}`, spec);
      }
    }
  }
  return { files, packages };
}

const nodeOnly = (spec: string) =>
  spec.startsWith("node:") || spec === "@grpc/grpc-js" || spec.startsWith("@connectrpc/connect-node");

describe("the universal entry points run in browsers", () => {
  it.each(["index.ts", "web/index.ts"])(
    "nothing reachable from src/%s imports node: modules, connect-node or grpc-js, or src/node/",
    (entry) => {
      const { files, packages } = reachable(join(src, entry));
      expect(files.map((f) => relative(src, f)).filter((f) => f.startsWith("node/"))).toEqual([]);
      expect([...packages].filter(([, spec]) => nodeOnly(spec)).map(([where]) => where)).toEqual([]);
    },
  );
});
