/**
 * The audit chain as the services run it from their environment (docs/audit.md): AUDIT_HMAC_KEYS keys every
 * row, a rotation keeps the old rows verifiable, AUDIT_CHECKPOINT_* signs the head into a file outside the
 * database, and VerifyAuditChain catches what an attacker with write access to the database file can do.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createClient as createLibsqlClient } from "@libsql/client";
import { describe, expect, it } from "vitest";
import { engineLocation, peerOptions } from "../support/engine.js";
import { clients, must, type ServiceProcess, serviceDatabaseEnv, startService, tempDir } from "./harness.js";

const checkpointKey = generateKeyPairSync("ed25519")
  .privateKey.export({ type: "pkcs8", format: "pem" })
  .toString();
const keyA = randomBytes(32).toString("base64");
const keyB = randomBytes(32).toString("base64");

async function promptService(dir: string, env: Record<string, string>): Promise<ServiceProcess> {
  return startService("prompt-service", {
    ...(await serviceDatabaseEnv(dir, "prompt-service")),
    AUDIT_CHECKPOINT_DIR: join(dir, "checkpoints"),
    AUDIT_CHECKPOINT_KEY: checkpointKey,
    AUDIT_CHECKPOINT_EVERY_ROWS: "1",
    ...env,
  });
}

async function createPrompts(service: ServiceProcess, n: number, title: string): Promise<void> {
  const alice = await clients(service.url).prompts("alice");
  for (let i = 0; i < n; i++)
    must((await alice.createPrompt({ title: `${title}-${i}`, content: "hi" })).prompt);
}

async function verify(service: ServiceProcess) {
  return (await clients(service.url).admin()).verifyAuditChain({});
}

/** A raw client on the service's database (as an attacker with write access has): the file, sqld, a primary. */
async function rawClient(dir: string) {
  return createLibsqlClient(peerOptions(await engineLocation(dir, "prompt-service")));
}

async function sql(dir: string, statements: string[]): Promise<void> {
  const db = await rawClient(dir);
  try {
    await db.executeMultiple(statements.join(";\n"));
  } finally {
    db.close();
  }
}

async function keyIds(dir: string): Promise<(string | null)[]> {
  const db = await rawClient(dir);
  try {
    const rs = await db.execute("SELECT key_id FROM audit_log ORDER BY seq");
    return rs.rows.map((r) => (r.key_id === null ? null : String(r.key_id)));
  } finally {
    db.close();
  }
}

describe("audit chain from the environment", () => {
  it("keys every row, survives a key rotation, and checkpoints the head to a file", async () => {
    const dir = tempDir();
    const first = await promptService(dir, { AUDIT_HMAC_KEYS: `a:${keyA}` });
    await createPrompts(first, 3, "before-rotation");
    expect(await verify(first)).toMatchObject({ ok: true, checkedCount: 3n });
    await first.kill("SIGTERM");
    expect(await first.exited).toBe(0);

    // rotate: b signs new rows, a stays for the old ones
    const second = await promptService(dir, {
      AUDIT_HMAC_KEYS: `a:${keyA},b:${keyB}`,
      AUDIT_HMAC_KEY_ID: "b",
    });
    await createPrompts(second, 2, "after-rotation");
    expect(await verify(second)).toMatchObject({
      ok: true,
      checkedCount: 5n,
      firstKeyedSequence: 1n,
      checkpointCount: expect.any(Number),
    });
    await second.kill("SIGTERM");
    expect(await keyIds(dir)).toEqual(["a", "a", "a", "b", "b"]);

    const file = join(dir, "checkpoints", "prompt-service.audit-checkpoints.jsonl");
    expect(existsSync(file)).toBe(true);
    const lines = readFileSync(file, "utf8")
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { seq: number });
    expect(lines.at(-1)?.seq).toBe(5);
    const restarted = await promptService(dir, {
      AUDIT_HMAC_KEYS: `a:${keyA},b:${keyB}`,
      AUDIT_HMAC_KEY_ID: "b",
    });
    expect(await verify(restarted)).toMatchObject({
      ok: true,
      checkpointCount: lines.length,
      lastCheckpointSequence: 5n,
    });
    await restarted.kill();

    // without key a, its rows cannot be verified: reported, not accepted
    const third = await promptService(dir, { AUDIT_HMAC_KEYS: `b:${keyB}` });
    expect(await verify(third)).toMatchObject({ ok: false, firstBrokenSequence: 1n });
    expect((await verify(third)).reason).toMatch(/^unknown_key: /);
  });

  it("catches an edit of a checkpointed row and the deletion of the newest rows", async () => {
    const dir = tempDir();
    const env = { AUDIT_HMAC_KEYS: `a:${keyA}` };
    const first = await promptService(dir, env);
    await createPrompts(first, 4, "kept");
    await first.kill("SIGTERM");

    // below the triggers: delete the two newest rows and make sqlite_sequence forget them
    await sql(dir, [
      "DROP TRIGGER audit_log_no_delete",
      "DELETE FROM audit_log WHERE seq > 2",
      "UPDATE sqlite_sequence SET seq = 2 WHERE name = 'audit_log'",
    ]);
    const truncated = await promptService(dir, env);
    const result = await verify(truncated);
    expect(result.ok).toBe(false);
    expect(result.reason).toMatch(/^checkpoint_beyond_head: /);
    await truncated.kill();

    // an edit without the key: the row's HMAC no longer matches
    await sql(dir, [
      "DROP TRIGGER audit_log_no_update",
      "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
    ]);
    const edited = await promptService(dir, env);
    expect(await verify(edited)).toMatchObject({ ok: false, firstBrokenSequence: 1n });
  });

  it("a bad key is one configuration error naming the variable, never the key", async () => {
    const dir = tempDir();
    const short = Buffer.from("too short").toString("base64");
    await expect(promptService(dir, { AUDIT_HMAC_KEYS: `a:${short}` })).rejects.toThrow(
      /bad configuration: AUDIT_HMAC_KEYS: key "a" has 9 bytes, at least 32 needed/,
    );
    await expect(promptService(dir, { AUDIT_CHECKPOINT_KEY: "not a pem" })).rejects.toThrow(
      /bad configuration: AUDIT_CHECKPOINT_KEY: is not a PEM private key/,
    );
  });
});
