import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

/**
 * `npm run migrate -w services/<name> -- <command>` as a user runs it (here from source: the same entry point):
 * a `check`/`status`/`down` on a database file that does not exist says so instead of creating an empty one,
 * and `up` says that it creates one. The default path (no DATABASE_URL) is the file `npm start` uses,
 * whatever the working folder: services/<name>/test/config.test.ts.
 */
const root = fileURLToPath(new URL("../..", import.meta.url));
const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), "autoforge-migrate-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function migrate(service: string, args: string[], databaseUrl: string) {
  try {
    const { stdout, stderr } = await run(
      process.execPath,
      ["--conditions=source", "--import", "tsx", "src/migrate.ts", ...args],
      {
        cwd: join(root, "services", service),
        env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: databaseUrl },
      },
    );
    return { code: 0, stdout, stderr };
  } catch (e) {
    const failed = e as { code: number; stdout: string; stderr: string };
    return { code: failed.code, stdout: failed.stdout, stderr: failed.stderr };
  }
}

describe.each(["prompt-service", "evaluation-service"])("%s migrate", (service) => {
  it("refuses to look at a database that does not exist, and `up` says it creates one", async () => {
    const file = join(dir, `${service}.db`);
    for (const command of [["status"], ["check"], ["down"]]) {
      const result = await migrate(service, command, `file:${file}`);
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr.trim()).toBe(
        `${service} migrate: no database at ${file} (DATABASE_URL=file:${file}); ` +
          "`up` creates it, as the service does at its first start",
      );
      expect(existsSync(file)).toBe(false);
    }
    const up = await migrate(service, ["up"], `file:${file}`);
    expect(up.code, up.stderr).toBe(0);
    expect(up.stdout).toContain(`no database at ${file}: creating a new, empty one`);
    expect(up.stdout).toMatch(/applied: 0000_/);
    const status = await migrate(service, ["status"], `file:${file}`);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stdout).toContain(`database: ${file}`);
    expect(status.stdout).toMatch(/^applied\s+0000_/m);
  });
});
