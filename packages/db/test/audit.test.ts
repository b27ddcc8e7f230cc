import type { Client } from "@libsql/client";
import { sql } from "drizzle-orm";
import { describe, expect, it, onTestFinished } from "vitest";
import { itWith } from "../../../test/support/engine.js";
import {
  AUDIT_GENESIS_HASH,
  appendAudit,
  auditDigest,
  auditLogTriggersDownSql,
  auditLogTriggersSql,
  auditRowHash,
  ConstraintViolationError,
  canonicalJson,
  type Database,
  listAuditEvents,
  verifyAuditChain,
} from "../src/index.js";
import { authors } from "./fixtures/schema.js";
import { rawClient, type TestSchema, testDatabase } from "./helpers.js";

/** A database with `n` audit events, one per write unit of work, and a raw client to tamper below the triggers. */
async function chain(n: number): Promise<{ db: Database<TestSchema>; raw: Client }> {
  const { db, location } = await testDatabase();
  for (let i = 1; i <= n; i++) {
    await db.write(async (tx) => {
      await tx.insert(authors).values({ id: i, name: `author ${i}` });
      await appendAudit(tx, {
        actor: i % 2 === 0 ? "alice" : "bob",
        action: "CreateAuthor",
        resourceType: "author",
        resourceId: String(i),
        requestId: `req-${i}`,
        after: { id: i, name: `author ${i}` },
      });
    });
  }
  const raw = rawClient(db, location);
  onTestFinished(() => raw.close());
  return { db, raw };
}

async function dropTriggers(raw: Client) {
  await raw.executeMultiple(auditLogTriggersDownSql.replaceAll("--> statement-breakpoint", ""));
}

describe("audit chain", () => {
  it("chains rows by hash and verifies an untouched chain", async () => {
    const { db } = await chain(5);
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true, count: 5, lastSequence: 5 });

    const events = await listAuditEvents(db, { limit: 10 });
    expect(events.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(events[0]?.prevHash).toBe(AUDIT_GENESIS_HASH);
    for (let i = 1; i < events.length; i++) expect(events[i]?.prevHash).toBe(events[i - 1]?.hash);
    const first = events[0];
    if (first === undefined) throw new Error("no events");
    const { hash, ...rest } = first;
    expect(auditRowHash(rest)).toBe(hash);
    expect(first.digest).toBe(auditDigest(undefined, { name: "author 1", id: 1 })); // key order irrelevant
  });

  it("an empty log verifies", async () => {
    const { db } = await testDatabase();
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true, count: 0 });
  });

  itWith(
    "sqliteErrorCodes",
    "refuses UPDATE and DELETE through SQL (trigger), whoever runs them",
    async () => {
      const { db, raw } = await chain(2);
      for (const statement of [
        "UPDATE audit_log SET actor = 'mallory' WHERE seq = 1",
        "DELETE FROM audit_log WHERE seq = 2",
      ]) {
        await expect(db.write(async (tx) => tx.run(sql.raw(statement)))).rejects.toMatchObject({
          kind: "trigger",
        });
        await expect(raw.execute(statement)).rejects.toMatchObject({
          extendedCode: "SQLITE_CONSTRAINT_TRIGGER",
        });
      }
      expect(await verifyAuditChain(db)).toMatchObject({ ok: true, count: 2 });
    },
  );

  it("detects an edited row below the trigger", async () => {
    const { db, raw } = await chain(5);
    await dropTriggers(raw);
    await raw.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3");
    expect(await verifyAuditChain(db)).toMatchObject({
      ok: false,
      firstBrokenSequence: 3,
      reason: "hash_mismatch",
    });
  });

  it("detects an edited row whose own hash was recomputed (the next link breaks)", async () => {
    const { db, raw } = await chain(5);
    await dropTriggers(raw);
    const [row] = await listAuditEvents(db, { afterSeq: 2, limit: 1 });
    if (row === undefined) throw new Error("no row 3");
    const forged = { ...row, actor: "mallory" };
    const { hash: _old, ...fields } = forged;
    await raw.execute({
      sql: "UPDATE audit_log SET actor = ?, hash = ? WHERE seq = 3",
      args: ["mallory", auditRowHash(fields)],
    });
    expect(await verifyAuditChain(db)).toMatchObject({
      ok: false,
      firstBrokenSequence: 4,
      reason: "prev_hash_mismatch",
    });
  });

  it("detects a deleted row in the middle", async () => {
    const { db, raw } = await chain(5);
    await dropTriggers(raw);
    await raw.execute("DELETE FROM audit_log WHERE seq = 2");
    expect(await verifyAuditChain(db)).toMatchObject({
      ok: false,
      firstBrokenSequence: 2,
      reason: "sequence_gap",
    });
  });

  it("detects deletion of the newest rows through sqlite_sequence", async () => {
    const { db, raw } = await chain(5);
    await dropTriggers(raw);
    await raw.execute("DELETE FROM audit_log WHERE seq >= 4");
    expect(await verifyAuditChain(db)).toMatchObject({
      ok: false,
      firstBrokenSequence: 4,
      reason: "tail_truncated",
    });
  });

  it("detects reordered rows (two rows' contents swapped)", async () => {
    const { db, raw } = await chain(5);
    await dropTriggers(raw);
    const columns =
      "occurred_at, actor, action, resource_type, resource_id, request_id, digest, prev_hash, hash";
    await raw.batch(
      [
        // a plain table, not TEMP: sqld refuses CREATE TEMP TABLE
        `CREATE TABLE swap AS SELECT seq, ${columns} FROM audit_log WHERE seq IN (2, 3)`,
        `UPDATE audit_log SET (${columns}) = (SELECT ${columns} FROM swap WHERE swap.seq = 5 - audit_log.seq) WHERE seq IN (2, 3)`,
        "DROP TABLE swap",
      ],
      "write",
    );
    const events = await listAuditEvents(db, { limit: 5 });
    expect(events.map((e) => e.requestId)).toEqual(["req-1", "req-3", "req-2", "req-4", "req-5"]);
    expect(await verifyAuditChain(db)).toMatchObject({
      ok: false,
      firstBrokenSequence: 2,
      reason: "prev_hash_mismatch",
    });
  });

  it("a rolled-back write leaves no audit row, and the chain continues cleanly", async () => {
    const { db } = await chain(2);
    await expect(
      db.write(async (tx) => {
        await appendAudit(tx, {
          actor: "bob",
          action: "CreateAuthor",
          resourceType: "author",
          resourceId: "x",
        });
        await tx.insert(authors).values({ id: 1, name: "duplicate id" });
      }),
    ).rejects.toBeInstanceOf(ConstraintViolationError);
    expect((await listAuditEvents(db, { limit: 10 })).map((e) => e.resourceId)).toEqual(["1", "2"]);
    await db.write(async (tx) =>
      appendAudit(tx, { actor: "bob", action: "Touch", resourceType: "author", resourceId: "1" }),
    );
    expect(await verifyAuditChain(db)).toMatchObject({ ok: true, count: 3 });
  });

  it("lists events with keyset paging and filters", async () => {
    const { db } = await chain(6);
    const page1 = await listAuditEvents(db, { limit: 2, actor: "alice" });
    expect(page1.map((e) => e.seq)).toEqual([2, 4]);
    const page2 = await listAuditEvents(db, { limit: 2, actor: "alice", afterSeq: page1.at(-1)?.seq });
    expect(page2.map((e) => e.seq)).toEqual([6]);
    const one = await listAuditEvents(db, { limit: 10, resourceType: "author", resourceId: "5" });
    expect(one.map((e) => e.seq)).toEqual([5]);
    await expect(listAuditEvents(db, { limit: 0 })).rejects.toThrow(RangeError);
  });

  it("exports the trigger SQL that the fixture's custom migration uses", () => {
    expect(auditLogTriggersSql).toContain("BEFORE UPDATE ON audit_log");
    expect(auditLogTriggersSql).toContain("BEFORE DELETE ON audit_log");
    expect(auditLogTriggersSql).toContain("--> statement-breakpoint");
  });
});

describe("canonicalJson", () => {
  it("sorts keys, drops undefined members, honours toJSON and refuses values without a JSON form", () => {
    expect(canonicalJson({ b: 1, a: [true, null, "x"], c: undefined, d: { z: 1, y: 2 } })).toBe(
      '{"a":[true,null,"x"],"b":1,"d":{"y":2,"z":1}}',
    );
    expect(canonicalJson(new Date(0))).toBe('"1970-01-01T00:00:00.000Z"');
    expect(() => canonicalJson({ n: Number.NaN })).toThrow(TypeError);
    expect(() => canonicalJson({ n: 1n })).toThrow(TypeError);
  });
});
