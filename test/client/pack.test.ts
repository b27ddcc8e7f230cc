/**
 * A consumer outside the repository: the three packages built, packed with `npm pack`, installed from the
 * tarballs (their other dependencies from the registry, through npm's usual cache) into a new project in a temp
 * dir, the README's quick start typechecked there as written, by the repo's tsc, and run against a real
 * prompt-service.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { PromptService } from "@autoforge/contracts/prompt/v1";
import { createClient, type Interceptor } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { describe, expect, it, onTestFinished } from "vitest";
import { must, signer, startPromptService, tempDir } from "../e2e/harness.js";

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const tsc = join(root, "node_modules", ".bin", "tsc");

/** The environment without npm's own variables (`npm test` sets npm_config_* pointing at this repo). */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^npm_/i.test(k)) env[k] = v;
  return { ...env, ...extra };
}

function tempOutside(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The first ```ts block under the README's "## Quick start". */
function quickStart(): string {
  const readme = readFileSync(join(root, "packages", "client", "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Quick start"));
  const block = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error("no ```ts block in the README's quick start");
  return block;
}

describe("a consumer project outside the repo", () => {
  it("installs the npm-packed tarballs, typechecks the README's quick start and runs it against a real prompt-service", async () => {
    // Build (tsc -b: contracts, render, client) and pack.
    await run(tsc, ["-b", "packages/client/tsconfig.build.json"], { cwd: root });
    const packs = tempOutside("autoforge-pack-");
    await run(
      "npm",
      [
        "pack",
        "-w",
        "packages/contracts",
        "-w",
        "packages/render",
        "-w",
        "packages/client",
        "--pack-destination",
        packs,
      ],
      { cwd: root, env: cleanEnv() },
    );
    const tarballs = readdirSync(packs)
      .filter((f) => f.endsWith(".tgz"))
      .sort();
    expect(tarballs).toEqual([
      "autoforge-client-0.1.0.tgz",
      "autoforge-contracts-0.1.0.tgz",
      "autoforge-render-0.1.0.tgz",
    ]);

    // A new project: the tarballs, and @types/node for process.env (the version this repo uses).
    const project = tempOutside("autoforge-consumer-");
    const env = cleanEnv();
    await run("npm", ["init", "-y"], { cwd: project, env });
    await run("npm", ["pkg", "set", "type=module"], { cwd: project, env });
    const typesNode = (
      JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
        devDependencies: Record<string, string>;
      }
    ).devDependencies["@types/node"];
    await run(
      "npm",
      [
        "install",
        "--no-audit",
        "--no-fund",
        ...tarballs.map((t) => join(packs, t)),
        `@types/node@${typesNode}`,
      ],
      { cwd: project, env },
    );

    // The quick start as written, strictly typechecked with the declarations of every package (no skipLibCheck).
    writeFileSync(join(project, "quickstart.ts"), quickStart());
    writeFileSync(
      join(project, "tsconfig.json"),
      JSON.stringify({
        compilerOptions: {
          target: "es2023",
          lib: ["es2023", "dom"],
          module: "nodenext",
          moduleResolution: "nodenext",
          strict: true,
          types: ["node"],
          outDir: "out",
        },
        files: ["quickstart.ts"],
      }),
    );
    await run(tsc, ["-p", "tsconfig.json"], { cwd: project, env });

    // A real prompt-service with the prompt the quick start reads: checkout-greeting in demo, production = v1.
    const prompts = await startPromptService(tempDir());
    const publisherToken = await signer.signToken({ sub: "ada", projects: { demo: "publisher" } });
    const auth: Interceptor = (next) => (req) => {
      req.header.set("authorization", `Bearer ${publisherToken}`);
      return next(req);
    };
    const admin = createClient(
      PromptService,
      createGrpcTransport({ baseUrl: prompts.url, interceptors: [auth] }),
    );
    const created = must(
      (
        await admin.createPrompt({
          project: "demo",
          name: "checkout-greeting",
          title: "Checkout greeting",
          content: "Hello {{customer}}, thanks for your order!",
        })
      ).prompt,
    );
    await admin.setPromptLabel({ project: "demo", id: created.id, label: "production", version: 1 });

    const { stdout } = await run(process.execPath, [join(project, "out", "quickstart.js")], {
      cwd: project,
      timeout: 30_000,
      env: cleanEnv({
        AUTOFORGE_URL: `http://127.0.0.1:${prompts.connectPort}`,
        AUTOFORGE_TOKEN: await signer.signToken({ sub: "checkout-app", roles: ["service"], project: "demo" }),
      }),
    });
    expect(stdout.trim()).toBe("checkout-greeting v1: Hello Ada, thanks for your order!");
  }, 180_000);
});
