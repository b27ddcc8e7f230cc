import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

/**
 * Node 20 reached end of life on 2026-04-30; the project runs and is tested on 20.19+, and keeps to APIs that
 * Node 22 and 24 still have, so moving up is a change of the base image, not of the code (README, "Node").
 */
const root = fileURLToPath(new URL("../..", import.meta.url));

/** APIs removed after Node 20, each with the first release that no longer has it. */
const removed: readonly [RegExp, string][] = [
  [
    /\bcreate(?:Cipher|Decipher)\(/,
    "crypto.createCipher/createDecipher: removed in Node 22 (use createCipheriv)",
  ],
  [/\bassert\s*\{\s*type\s*:/, "import assertions (`assert { type }`): removed in Node 22 (use `with`)"],
  [
    /\butil\.is(?:Array|Boolean|Buffer|Date|Error|Function|Null|Number|Object|Primitive|RegExp|String|Symbol|Undefined)\b/,
    "util.is*(): removed in Node 23",
  ],
  [/\butil\.log\(/, "util.log(): removed in Node 23"],
  [/\bprocess\.assert\(/, "process.assert(): removed in Node 23"],
  [/\bcreateSecurePair\(/, "tls.createSecurePair(): removed in Node 24"],
  [/\bdirent\.path\b/, "fs.Dirent#path: removed in Node 24 (use parentPath)"],
  [/\bnew Buffer\(/, "new Buffer(): deprecated since Node 10 (use Buffer.from/alloc)"],
];

function trackedSources(): string[] {
  const out = execFileSync("git", ["ls-files", "*.ts", "*.mts", "*.mjs", "*.js"], {
    cwd: root,
    encoding: "utf8",
  });
  return out
    .split("\n")
    .filter((f) => f !== "" && !f.includes("/gen/") && f !== "test/node/node-versions.test.ts");
}

describe("Node versions", () => {
  it("the sources use no API that Node 22 or 24 removed", () => {
    const files = trackedSources();
    expect(files.length).toBeGreaterThan(100);
    const hits: string[] = [];
    for (const file of files) {
      const lines = readFileSync(join(root, file), "utf8").split("\n");
      lines.forEach((line, i) => {
        for (const [pattern, why] of removed) if (pattern.test(line)) hits.push(`${file}:${i + 1}: ${why}`);
      });
    }
    expect(hits).toEqual([]);
  });

  it("every package's engines say the same, and this Node satisfies it", () => {
    const manifests = execFileSync("git", ["ls-files", "package.json", "*/package.json"], {
      cwd: root,
      encoding: "utf8",
    })
      .split("\n")
      .filter((f) => f !== "" && !f.includes("fixtures"));
    const engines = new Map<string, string | undefined>();
    for (const file of manifests) {
      const manifest = JSON.parse(readFileSync(join(root, file), "utf8")) as {
        engines?: { node?: string };
        private?: boolean;
        name?: string;
      };
      engines.set(file, manifest.engines?.node);
    }
    const rootRange = engines.get("package.json");
    expect(rootRange).toBe(">=20.19");
    // the packages that are run or installed on their own (services, the client SDK) declare it too
    for (const file of [
      "services/prompt-service/package.json",
      "services/evaluation-service/package.json",
      "packages/client/package.json",
    ]) {
      expect(engines.get(file), file).toBe(rootRange);
    }
    for (const [file, range] of engines) if (range !== undefined) expect(range, file).toBe(rootRange);
    const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
    expect(major > 20 || (major === 20 && minor >= 19), process.versions.node).toBe(true);
  });
});
