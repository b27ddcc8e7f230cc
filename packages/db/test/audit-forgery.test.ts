import { generateKeyPairSync, randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Client } from "@libsql/client";
import { describe, expect, it, onTestFinished, vi } from "vitest";
import {
  type AuditCheckpointer,
  type AuditKeyring,
  appendAudit,
  auditCheckpointFile,
  auditLogTriggersDownSql,
  auditRowHash,
  auditRowHmac,
  createAuditCheckpointer,
  createAuditCheckpointSigner,
  createAuditKeyring,
  type Database,
  listAuditEvents,
  parseAuditKeyList,
  verifyAuditChain,
} from "../src/index.js";
import { rawClient, type TestSchema, tempDir, testDatabase } from "./helpers.js";

const keyA = randomBytes(32);
const keyB = randomBytes(32);
const ringA = createAuditKeyring([["a", keyA]], "a");
const ringAB = createAuditKeyring(
  [
    ["a", keyA],
    ["b", keyB],
  ],
  "b",
);

interface Fixture {
  db: Database<TestSchema>;
  raw: Client;
  append(n: number, keys?: AuditKeyring): Promise<void>;
}

/** The fixture schema predates `key_id`; add it as migration 0003_audit_key_id does in the services. */
async function fixture(): Promise<Fixture> {
  const { db, location } = await testDatabase();
  const raw = rawClient(db, location);
  onTestFinished(() => raw.close());
  await raw.execute("ALTER TABLE audit_log ADD key_id text");
  let i = 0;
  return {
    db,
    raw,
    async append(n, keys) {
      for (let k = 0; k < n; k++) {
        i++;
        await db.write((tx) =>
          appendAudit(
            tx,
            {
              actor: i % 2 === 0 ? "alice" : "bob",
              action: "CreateAuthor",
              resourceType: "author",
              resourceId: String(i),
              requestId: `req-${i}`,
              after: { id: i },
            },
            keys,
          ),
        );
      }
    },
  };
}

async function dropTriggers(raw: Client) {
  await raw.executeMultiple(auditLogTriggersDownSql.replaceAll("--> statement-breakpoint", ""));
}

/** Recomputes every hash from row `from` on, as a forger would: unkeyed, or with the HMAC key. */
async function rehashFrom(f: Fixture, from: number, key?: { id: string; key: Uint8Array } | null) {
  const events = await listAuditEvents(f.db, { limit: 1000 });
  let prev = events.find((e) => e.seq === from - 1)?.hash ?? "0".repeat(64);
  for (const e of events.filter((e) => e.seq >= from)) {
    const { hash: _h, keyId: _k, ...fields } = { ...e, prevHash: prev };
    const hash = key ? auditRowHmac(fields, key.id, key.key) : auditRowHash(fields);
    const keyId = key === null ? null : key ? key.id : e.keyId;
    await f.raw.execute({
      sql: "UPDATE audit_log SET prev_hash = ?, hash = ?, key_id = ? WHERE seq = ?",
      args: [prev, hash, keyId, e.seq],
    });
    prev = hash;
  }
}

function signerPem(): string {
  return generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}

function checkpointer(f: Fixture, dir: string, everyRows = 1): AuditCheckpointer {
  return createAuditCheckpointer({
    db: f.db,
    dir,
    chain: "test",
    signer: createAuditCheckpointSigner(signerPem()),
    everyRows,
    intervalMs: 0,
    pollMs: 10,
  });
}

/** mulberry32: a seeded generator, so a failing case can be replayed. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Value edits below the triggers, per column; each changes the stored value. */
const edits: Record<string, string[]> = {
  occurred_at: ["'yesterday'", "1.5", "9223372036854775807", "-1", "x'00'", "occurred_at + 1", "'1e400'"],
  actor: ["'mallory'", "''", "42", "x'6d616c6c6f7279'", "actor || ' '"],
  action: ["'DeleteAuthor'", "0.5", "x'00'"],
  resource_type: ["'book'", "x''"],
  resource_id: ["'999'", "resource_id || '0'"],
  request_id: ["NULL", "'req-x'", "x'01'", "7"],
  digest: ["'zz'", "upper(digest)", "substr(digest, 2) || '0'", "x'00'", "''"],
  prev_hash: ["'0'", "upper(prev_hash)", "hash", "x'ab'"],
  hash: ["'not-hex'", "upper(hash)", "prev_hash", "substr(hash, 2) || 'a'", "12345"],
  key_id: ["NULL", "'b'", "'zz'", "x'61'", "1"],
};

describe("verifyAuditChain never throws on stored values of the wrong type or shape", () => {
  // a fresh database per trial: on sqld and replicas each is its own sqld process
  it("random edits of every column kind, keyed and unkeyed chains: each reported at the edited row", async () => {
    const random = prng(13);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)] as T;
    const columns = Object.keys(edits);
    const cases: string[] = [];
    for (let trial = 0; trial < 48; trial++) {
      const keyed = trial % 2 === 0;
      const column = columns[trial % columns.length] as string;
      if (column === "key_id" && !keyed && trial % 4 === 1) continue;
      const f = await fixture();
      await f.append(5, keyed ? ringA : undefined);
      await dropTriggers(f.raw);
      const seq = 1 + Math.floor(random() * 5);
      const value = pick(edits[column] ?? []);
      await f.raw.execute(`UPDATE audit_log SET ${column} = ${value} WHERE seq = ${seq}`);
      const label = `${keyed ? "keyed" : "unkeyed"} row ${seq}: ${column} = ${value}`;
      const result = await verifyAuditChain(f.db, { keys: ringA });
      expect(result, label).toMatchObject({ ok: false, firstBrokenSequence: seq });
      cases.push(label);
    }
    expect(cases.length).toBeGreaterThan(40);
  }, 120_000);

  it("an edited sequence number is a gap at the old position, a huge one a malformed row", async () => {
    for (const [value, reason] of [
      ["100", "sequence_gap"],
      ["9223372036854775807", "malformed_row"],
    ] as const) {
      const f = await fixture();
      await f.append(4, ringA);
      await dropTriggers(f.raw);
      await f.raw.execute(`UPDATE audit_log SET seq = ${value} WHERE seq = 4`);
      expect(await verifyAuditChain(f.db, { keys: ringA }), value).toMatchObject({
        ok: false,
        firstBrokenSequence: 4,
        reason,
      });
    }
  });

  it("occurred_at = 'yesterday' is a malformed row with a reason, not an error", async () => {
    const f = await fixture();
    await f.append(3);
    await dropTriggers(f.raw);
    await f.raw.execute("UPDATE audit_log SET occurred_at = 'yesterday' WHERE seq = 2");
    expect(await verifyAuditChain(f.db)).toMatchObject({
      ok: false,
      firstBrokenSequence: 2,
      reason: "malformed_row",
      detail: 'occurred_at is text "yesterday", not an integer',
      checked: 1,
    });
  });
});

describe("keyed chain (HMAC-SHA256)", () => {
  it("rows carry their key id; rotation keeps old rows verifiable; a removed key makes its rows unverifiable", async () => {
    const f = await fixture();
    await f.append(2); // rows of the earlier unkeyed chain
    await f.append(2, ringA);
    await f.append(2, ringAB); // rotated: b is current, a kept for verification
    const events = await listAuditEvents(f.db, { limit: 10 });
    expect(events.map((e) => e.keyId)).toEqual([null, null, "a", "a", "b", "b"]);
    expect(await verifyAuditChain(f.db, { keys: ringAB })).toMatchObject({
      ok: true,
      count: 6,
      firstKeyedSequence: 3,
    });
    const onlyB = createAuditKeyring([["b", keyB]], "b");
    expect(await verifyAuditChain(f.db, { keys: onlyB })).toMatchObject({
      ok: false,
      firstBrokenSequence: 3,
      reason: "unknown_key",
    });
    expect(await verifyAuditChain(f.db)).toMatchObject({
      ok: false,
      firstBrokenSequence: 3,
      reason: "unknown_key",
    });
  });

  it("rehashing every row after an edit without the key is caught at the edited row", async () => {
    for (const keyId of [undefined, null] as const) {
      const f = await fixture();
      await f.append(6, ringA);
      await dropTriggers(f.raw);
      await f.raw.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3");
      await rehashFrom(f, 3, keyId); // keep the key id (sha256 under it) or drop it (pose as unkeyed)
      expect(await verifyAuditChain(f.db, { keys: ringA })).toMatchObject({
        ok: false,
        firstBrokenSequence: 3,
        reason: keyId === null ? "unkeyed_after_keyed" : "hash_mismatch",
      });
    }
  });

  it("edit + rehash of that row: without the key its HMAC fails, with the key the next link breaks", async () => {
    const f = await fixture();
    await f.append(5, ringA);
    await dropTriggers(f.raw);
    const [row] = await listAuditEvents(f.db, { afterSeq: 2, limit: 1 });
    const { hash: _h, keyId: _k, ...fields } = { ...(row as NonNullable<typeof row>), actor: "mallory" };
    await f.raw.execute({
      sql: "UPDATE audit_log SET actor = 'mallory', hash = ? WHERE seq = 3",
      args: [auditRowHash(fields)],
    });
    expect(await verifyAuditChain(f.db, { keys: ringA })).toMatchObject({
      firstBrokenSequence: 3,
      reason: "hash_mismatch",
    });
    await f.raw.execute({
      sql: "UPDATE audit_log SET hash = ? WHERE seq = 3",
      args: [auditRowHmac(fields, "a", keyA)],
    });
    expect(await verifyAuditChain(f.db, { keys: ringA })).toMatchObject({
      firstBrokenSequence: 4,
      reason: "prev_hash_mismatch",
    });
  });

  it("a row appended with a correct unkeyed hash, or under a guessed key, is caught", async () => {
    const f = await fixture();
    await f.append(3, ringA);
    await dropTriggers(f.raw);
    await f.append(1); // the unkeyed algorithm, as anyone with write access could compute it
    expect(await verifyAuditChain(f.db, { keys: ringA })).toMatchObject({
      firstBrokenSequence: 4,
      reason: "unkeyed_after_keyed",
    });
    await f.raw.execute("DELETE FROM audit_log WHERE seq = 4");
    await f.append(1, createAuditKeyring([["a", randomBytes(32)]], "a"));
    expect(await verifyAuditChain(f.db, { keys: ringA })).toMatchObject({
      firstBrokenSequence: 4,
      reason: "hash_mismatch",
    });
  });

  it("parses `id:base64` lists and refuses short keys, bad ids and an unknown current id", () => {
    const b64 = keyA.toString("base64");
    expect([
      ...createAuditKeyring(
        parseAuditKeyList(`k1:${b64}, k2:${keyB.toString("base64url")}`),
        "k2",
      ).keys.keys(),
    ]).toEqual(["k1", "k2"]);
    expect(() => parseAuditKeyList("k1")).toThrow("entry 1 must be id:base64key");
    expect(() => parseAuditKeyList("k1:!!")).toThrow('key "k1" is not base64');
    expect(() => createAuditKeyring(parseAuditKeyList("k1:c2hvcnQ="), "k1")).toThrow("at least 32 needed");
    expect(() => createAuditKeyring(parseAuditKeyList(`k 1:${b64}`), "k 1")).toThrow("must match");
    expect(() => createAuditKeyring(parseAuditKeyList(`k1:${b64}`), "k2")).toThrow("not among the keys");
  });
});

describe("signed checkpoints", () => {
  it("rehashing every row with the HMAC key is caught by the checkpoint of the edited row", async () => {
    const f = await fixture();
    const cp = checkpointer(f, tempDir());
    for (let i = 0; i < 5; i++) {
      await f.append(1, ringA);
      await cp.checkpoint();
    }
    await dropTriggers(f.raw);
    await f.raw.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3");
    await rehashFrom(f, 3, { id: "a", key: keyA });
    expect(await verifyAuditChain(f.db, { keys: ringA })).toMatchObject({ ok: true }); // the HMAC alone cannot tell
    expect(await verifyAuditChain(f.db, { keys: ringA, checkpoints: await cp.expectations() })).toMatchObject(
      {
        ok: false,
        firstBrokenSequence: 3,
        reason: "checkpoint_mismatch",
        checkpointCount: 5,
        lastCheckpointSequence: 5,
      },
    );
  });

  it("deleting the newest rows and lowering sqlite_sequence is caught by the newest checkpoint", async () => {
    const f = await fixture();
    const cp = checkpointer(f, tempDir());
    await f.append(5, ringA);
    expect(await cp.checkpoint()).toMatchObject({ seq: 5, chain: "test" });
    await dropTriggers(f.raw);
    await f.raw.execute("DELETE FROM audit_log WHERE seq >= 4");
    await f.raw.execute("UPDATE sqlite_sequence SET seq = 3 WHERE name = 'audit_log'");
    expect(await verifyAuditChain(f.db, { keys: ringA })).toMatchObject({ ok: true, lastSequence: 3 });
    expect(await verifyAuditChain(f.db, { keys: ringA, checkpoints: await cp.expectations() })).toMatchObject(
      {
        ok: false,
        firstBrokenSequence: 4,
        reason: "checkpoint_beyond_head",
      },
    );
    // and a deleted middle row a checkpoint names
    const g = await fixture();
    const gcp = checkpointer(g, tempDir());
    for (let i = 0; i < 3; i++) {
      await g.append(1, ringA);
      await gcp.checkpoint();
    }
    await dropTriggers(g.raw);
    await g.raw.execute("DELETE FROM audit_log WHERE seq = 2");
    expect(
      await verifyAuditChain(g.db, { keys: ringA, checkpoints: await gcp.expectations() }),
    ).toMatchObject({
      firstBrokenSequence: 2,
      reason: "checkpoint_mismatch",
    });
  });

  it("a forged or foreign checkpoint line, and a removed checkpoint file, are reported", async () => {
    const f = await fixture();
    const dir = tempDir();
    const cp = checkpointer(f, dir);
    await f.append(2, ringA);
    await cp.checkpoint();
    const file = auditCheckpointFile(dir, "test");
    const line = JSON.parse(readFileSync(file, "utf8").trim()) as Record<string, unknown>;
    writeFileSync(file, `${JSON.stringify({ ...line, seq: 1 })}\n`, { flag: "a" });
    expect(await verifyAuditChain(f.db, { keys: ringA, checkpoints: await cp.expectations() })).toMatchObject(
      {
        ok: false,
        firstBrokenSequence: 1,
        reason: "checkpoint_invalid",
        detail: "checkpoint line 2 has a bad signature",
      },
    );
    const other = createAuditCheckpointSigner(signerPem()).sign({
      chain: "test",
      seq: 2,
      hash: String(line.hash),
      time: 1,
    });
    writeFileSync(file, `${JSON.stringify(line)}\n${JSON.stringify(other)}\n`);
    expect(await verifyAuditChain(f.db, { keys: ringA, checkpoints: await cp.expectations() })).toMatchObject(
      {
        reason: "checkpoint_invalid",
        detail: `checkpoint line 2 is signed by unknown key ${other.keyId}`,
      },
    );
    rmSync(file);
    expect(await verifyAuditChain(f.db, { keys: ringA, checkpoints: await cp.expectations() })).toMatchObject(
      {
        ok: false,
        reason: "checkpoints_missing",
      },
    );
  });

  it("the checkpointer writes at start, every N rows, and a final one at stop, as one signed JSON line each", async () => {
    const f = await fixture();
    const dir = tempDir();
    await f.append(1, ringA);
    const cp = checkpointer(f, dir, 3);
    await cp.start();
    const lines = () =>
      readFileSync(join(dir, "test.audit-checkpoints.jsonl"), "utf8")
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { seq: number }).seq);
    expect(lines()).toEqual([1]);
    await f.append(3, ringA);
    await vi.waitFor(() => expect(lines()).toEqual([1, 4]));
    await f.append(1, ringA);
    await cp.stop();
    expect(lines()).toEqual([1, 4, 5]);
    expect(await verifyAuditChain(f.db, { keys: ringA, checkpoints: await cp.expectations() })).toMatchObject(
      {
        ok: true,
        checkpointCount: 3,
        lastCheckpointSequence: 5,
      },
    );
  });

  it("refuses a checkpoint key that is not an Ed25519 private key", () => {
    expect(() => createAuditCheckpointSigner("nope")).toThrow("is not a PEM private key");
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({
      type: "pkcs8",
      format: "pem",
    });
    expect(() => createAuditCheckpointSigner(rsa.toString())).toThrow("must be an Ed25519 key, got rsa");
  });
});
