import { LibsqlError } from "@libsql/client";
import { sql } from "drizzle-orm";
import { describe, expect, it } from "vitest";
import { testEngine } from "../../../test/support/engine.js";
import {
  appendAudit,
  CommitOutcomeUnknownError,
  type ConstraintKind,
  ConstraintViolationError,
  classifyCommitError,
  classifyDatabaseError,
  type Database,
  DatabaseAuthError,
  TransientDatabaseError,
} from "../src/index.js";
import { authors, books } from "./fixtures/schema.js";
import { type TestSchema, testDatabase } from "./helpers.js";

/** Runs one failing write and returns the error it threw and how many times fn ran. */
async function failingWrite(db: Database<TestSchema>, statement: Parameters<typeof sql.raw>[0]) {
  let runs = 0;
  const error = await db
    .write(async (tx) => {
      runs++;
      await tx.run(sql.raw(statement));
    })
    .catch((err: unknown) => err);
  return { error, runs };
}

describe("classification of real SQLite errors", () => {
  const cases: { name: string; statement: string; kind: ConstraintKind; code: string; detail?: string }[] = [
    {
      name: "CHECK",
      statement: "INSERT INTO authors (id, name) VALUES (100, '')",
      kind: "check",
      code: "SQLITE_CONSTRAINT_CHECK",
      detail: "authors_name_length",
    },
    {
      name: "UNIQUE",
      statement: "INSERT INTO books (author_id, title, isbn) VALUES (1, 'dup', 'isbn-1')",
      kind: "unique",
      code: "SQLITE_CONSTRAINT_UNIQUE",
      detail: "books.isbn",
    },
    {
      name: "FOREIGN KEY",
      statement: "INSERT INTO books (author_id, title) VALUES (999, 'orphan')",
      kind: "foreign_key",
      code: "SQLITE_CONSTRAINT_FOREIGNKEY",
    },
    {
      name: "NOT NULL",
      statement: "INSERT INTO books (author_id, title) VALUES (1, NULL)",
      kind: "not_null",
      code: "SQLITE_CONSTRAINT_NOTNULL",
      detail: "books.title",
    },
    {
      name: "PRIMARY KEY",
      statement:
        "INSERT INTO schema_migrations (id, tag, hash, down_sql, applied_at) SELECT id, 'x', hash, '', 0 FROM schema_migrations LIMIT 1",
      kind: "primary_key",
      code: "SQLITE_CONSTRAINT_PRIMARYKEY",
    },
    {
      name: "trigger RAISE(ABORT)",
      statement: "DELETE FROM audit_log",
      kind: "trigger",
      code: "SQLITE_CONSTRAINT_TRIGGER",
      detail: "audit_log is append-only: DELETE refused",
    },
  ];

  for (const c of cases) {
    it(`${c.name} -> ConstraintViolationError(${c.kind}), not retried`, async () => {
      const { db } = await testDatabase();
      await db.write(async (tx) => {
        await tx.insert(authors).values({ id: 1, name: "a" });
        await tx.insert(books).values({ authorId: 1, title: "b", isbn: "isbn-1" });
        await appendAudit(tx, { actor: "t", action: "create", resourceType: "author", resourceId: "1" });
      });
      const { error, runs } = await failingWrite(db, c.statement);
      expect(error).toBeInstanceOf(ConstraintViolationError);
      // sqld sends no extended code, and SQLite's message for a PRIMARY KEY violation is a UNIQUE one's (a
      // replica's write units run on its primary's HTTP API too)
      const pkAsUnique = c.kind === "primary_key" && testEngine !== "file";
      expect(error).toMatchObject(
        pkAsUnique ? { kind: "unique", code: "SQLITE_CONSTRAINT_UNIQUE" } : { kind: c.kind, code: c.code },
      );
      if (c.detail !== undefined) expect((error as ConstraintViolationError).detail).toContain(c.detail);
      expect(runs).toBe(1);
    });
  }

  it("exposes the columns of a UNIQUE violation and keeps the driver error as cause", async () => {
    const { db } = await testDatabase();
    await db.write(async (tx) => tx.insert(authors).values({ id: 1, name: "a" }));
    const { error } = await failingWrite(db, "INSERT INTO authors (id, name) VALUES (1, 'again')");
    expect(error).toMatchObject({
      kind: testEngine === "file" ? "primary_key" : "unique",
      columns: ["authors.id"],
    });
    expect((error as Error).cause).toBeInstanceOf(Error); // the DrizzleQueryError, with LibsqlError below
  });

  it("passes other errors through unchanged", async () => {
    const { db } = await testDatabase();
    const { error, runs } = await failingWrite(db, "SELECT * FROM no_such_table");
    expect(error).not.toBeInstanceOf(ConstraintViolationError);
    expect(error).not.toBeInstanceOf(TransientDatabaseError);
    // SQLITE_ERROR on a file, SQLITE_UNKNOWN from sqld, a delegation error of a replica: all passed through
    expect(classifyDatabaseError(error)).toBe(error);
    expect(String((error as Error).cause)).toContain("no such table");
    expect(runs).toBe(1);
    const plain = new Error("bug");
    expect(classifyDatabaseError(plain)).toBe(plain);
  });
});

describe("classification by code of errors that need a server or a broken network", () => {
  it("SQLITE_BUSY / SQLITE_LOCKED and their extended codes are transient", () => {
    for (const [code, extended, raw, reason] of [
      ["SQLITE_BUSY", "SQLITE_BUSY_SNAPSHOT", 517, "busy"],
      ["SQLITE_BUSY", "SQLITE_BUSY_RECOVERY", 261, "busy"],
      ["SQLITE_LOCKED", "SQLITE_LOCKED_SHAREDCACHE", 262, "locked"],
    ] as const) {
      const classified = classifyDatabaseError(new LibsqlError("x", code, extended, raw));
      expect(classified).toBeInstanceOf(TransientDatabaseError);
      expect(classified).toMatchObject({ code: extended, reason });
    }
  });

  it("remote stream and network failures are transient, HTTP 401/403 a refused token, other 4xx neither", () => {
    const hranaClosed = new LibsqlError("stream closed", "HRANA_CLOSED_ERROR");
    expect(classifyDatabaseError(hranaClosed)).toMatchObject({ reason: "network" });

    const refused = new TypeError("fetch failed", {
      cause: Object.assign(new Error("connect"), { code: "ECONNREFUSED" }),
    });
    expect(classifyDatabaseError(refused)).toMatchObject({ reason: "network", code: "ECONNREFUSED" });

    const unavailable = new LibsqlError(
      "HTTP 503",
      "SERVER_ERROR",
      undefined,
      undefined,
      Object.assign(new Error("503"), { status: 503 }),
    );
    expect(classifyDatabaseError(unavailable)).toBeInstanceOf(TransientDatabaseError);

    const unauthorized = new LibsqlError(
      "HTTP 401",
      "SERVER_ERROR",
      undefined,
      undefined,
      Object.assign(new Error("401"), { status: 401 }),
    );
    expect(classifyDatabaseError(unauthorized)).toBeInstanceOf(DatabaseAuthError);
    expect(classifyDatabaseError(unauthorized)).toMatchObject({ status: 401, code: "HTTP_401" });

    const badRequest = new LibsqlError(
      "HTTP 400",
      "SERVER_ERROR",
      undefined,
      undefined,
      Object.assign(new Error("400"), { status: 400 }),
    );
    expect(classifyDatabaseError(badRequest)).toBe(badRequest);
  });

  it("a replica's delegated write cut off by the transport is transient, its commit's outcome unknown", () => {
    const native = (message: string) =>
      new LibsqlError(message, "", undefined, undefined, Object.assign(new Error(message), { code: "" }));
    for (const message of [
      'WriteDelegation(status: Unavailable, message: "tcp connect error", details: [], metadata: MetadataMap { headers: {} })',
      'WriteDelegation(status: Unknown, message: "transport error", details: [], metadata: MetadataMap { headers: {} })',
      'WriteDelegation(status: Unknown, message: "error reading a body from connection: connection reset", details: [])',
      'WriteDelegation(status: Cancelled, message: "h2 protocol error: http2 error: stream error received", details: [])',
    ]) {
      expect(classifyDatabaseError(native(message)), message).toMatchObject({
        reason: "network",
        code: "REPLICA_PRIMARY_UNAVAILABLE",
      });
      expect(classifyCommitError(native(message)), message).toBeInstanceOf(CommitOutcomeUnknownError);
    }
    // an Unknown status that is not the transport's is not dressed up as an outage
    const other = native('WriteDelegation(status: Unknown, message: "something else", details: [])');
    expect(classifyDatabaseError(other)).toBe(other);
    // nothing left the replica: safe to retry
    const neverConnected = native(
      'WriteDelegation(status: Unknown, message: "transport error: error trying to connect: tcp connect error", details: [])',
    );
    expect(classifyCommitError(neverConnected)).toBeInstanceOf(TransientDatabaseError);
  });

  it("a remote constraint error without an extended code is classified by SQLite's message", () => {
    const remote = new LibsqlError("SQLite error: UNIQUE constraint failed: t.x", "SQLITE_CONSTRAINT");
    expect(classifyDatabaseError(remote)).toMatchObject({
      kind: "unique",
      code: "SQLITE_CONSTRAINT_UNIQUE",
      columns: ["t.x"],
    });
    const unnamed = new LibsqlError("constraint failed", "SQLITE_CONSTRAINT");
    expect(classifyDatabaseError(unnamed)).toMatchObject({ kind: "other", code: "SQLITE_CONSTRAINT" });
  });
});
