/**
 * Database errors that only a remote engine produces, on a real sqld and an embedded replica: a lost COMMIT
 * answer, sqld's TRANSACTION_TIMEOUT, a stopped primary, a refused token. (Constraint kinds on every engine:
 * errors.test.ts, run per engine.)
 */
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { createClient } from "@libsql/client";
import { sql } from "drizzle-orm";
import { expect, it, onTestFinished } from "vitest";
import { type SqldServer, sqldForTest } from "../../../test/support/sqld.js";
import {
  CommitOutcomeUnknownError,
  createDatabase,
  type Database,
  DatabaseAuthError,
  migrate,
  TransientDatabaseError,
} from "../src/index.js";
import { describeEngines } from "./engines.js";
import * as schema from "./fixtures/schema.js";
import { deferred, migrationsDir, type TestSchema, tempDir } from "./helpers.js";
import { restartablePrimary } from "./replica-primary.js";

/** A database on `server` (sqld, or a replica of it), migrated, closed when the test finishes. */
async function databaseOn(
  engine: "sqld" | "replica",
  server: SqldServer,
  options: { url?: string; authToken?: string; migrated?: boolean } = {},
): Promise<Database<TestSchema>> {
  const url = options.url ?? server.url;
  const db = await createDatabase({
    ...(engine === "sqld" ? { url } : { url: `file:${join(tempDir(), "replica.db")}`, syncUrl: url }),
    authToken: options.authToken ?? server.authToken,
    schema,
    retry: { maxAttempts: 3, initialDelayMs: 5, maxDelayMs: 20 },
  });
  onTestFinished(() => db.close());
  if (options.migrated !== false) await migrate(db, migrationsDir);
  return db;
}

/** Authors as sqld holds them (read straight from the server, not through the database under test). */
async function authorIds(server: SqldServer): Promise<number[]> {
  const client = createClient({ url: server.url, authToken: server.authToken });
  try {
    const rows = await client.execute("SELECT id FROM authors ORDER BY id");
    return rows.rows.map((r) => Number(r.id));
  } finally {
    client.close();
  }
}

/**
 * An HTTP proxy to `target` that forwards the first request carrying a COMMIT, lets sqld answer it, and then
 * drops the connection instead of passing the answer on: the commit happened, the client cannot know.
 */
async function commitAnswerLosingProxy(target: string): Promise<{ url: string; dropped: () => number }> {
  let dropped = 0;
  const proxy: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const headers = new Headers();
      for (const [k, v] of Object.entries(req.headers)) {
        if (typeof v === "string" && k !== "host" && k !== "connection" && k !== "content-length") {
          headers.set(k, v);
        }
      }
      void (async () => {
        const upstream = await fetch(`${target}${req.url ?? "/"}`, {
          method: req.method ?? "GET",
          headers,
          ...(body.length > 0 ? { body } : {}),
        });
        const answer = Buffer.from(await upstream.arrayBuffer());
        // the statement's text is in the body as is, in JSON or protobuf
        if (dropped === 0 && body.includes("COMMIT")) {
          dropped++;
          req.socket.destroy();
          return;
        }
        // fetch has decoded the body: its encoding and length headers no longer apply
        const answerHeaders = Object.fromEntries(
          [...upstream.headers].filter(([k]) => k !== "content-encoding" && k !== "content-length"),
        );
        res.writeHead(upstream.status, answerHeaders);
        res.end(answer);
      })().catch(() => req.socket.destroy());
    });
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  onTestFinished(
    () =>
      new Promise<void>((resolve) => {
        proxy.closeAllConnections();
        proxy.close(() => resolve());
      }),
  );
  const address = proxy.address();
  const port = typeof address === "object" && address !== null ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, dropped: () => dropped };
}

describeEngines(
  "remote database errors",
  (engine) => {
    if (engine === "file") return;

    it("a stopped primary fails a write with a TransientDatabaseError (network) after its retries", async () => {
      const server = await sqldForTest({ auth: true });
      const db = await databaseOn(engine, server);
      await db.write(async (tx) => tx.run(sql`INSERT INTO authors (id, name) VALUES (1, 'before')`));
      await server.stop();
      let runs = 0;
      const error = await db
        .write(async (tx) => {
          runs++;
          await tx.run(sql`UPDATE authors SET name = 'after' WHERE id = 1`);
        })
        .catch((err: unknown) => err);
      expect(error).toBeInstanceOf(TransientDatabaseError);
      expect(error).toMatchObject({ reason: "network" });
      expect(runs).toBeLessThanOrEqual(3);
    });

    if (engine === "sqld") {
      it("a server that stops answering (SIGSTOP) fails reads and writes after requestTimeoutMs, not never", async () => {
        const primary = await restartablePrimary();
        const db = await createDatabase({
          url: primary.url,
          schema,
          requestTimeoutMs: 300,
          retry: { maxAttempts: 2, initialDelayMs: 5, maxDelayMs: 20 },
        });
        onTestFinished(() => db.close());
        await migrate(db, migrationsDir);
        await db.write(async (tx) => tx.run(sql`INSERT INTO authors (id, name) VALUES (1, 'before')`));
        primary.pause();
        try {
          const read = await db
            .read(async (tx) => tx.all(sql`SELECT * FROM authors`))
            .catch((e: unknown) => e);
          expect(read).toBeInstanceOf(TransientDatabaseError);
          expect(read).toMatchObject({ reason: "network", code: "REQUEST_TIMEOUT" });
          const write = await db
            .write(async (tx) => tx.run(sql`INSERT INTO authors (id, name) VALUES (2, 'during')`))
            .catch((e: unknown) => e);
          // the request may have reached the server: a write's outcome is unknown, and it is not run again
          expect(write).toBeInstanceOf(CommitOutcomeUnknownError);
        } finally {
          primary.resume();
        }
        const rows = await db.read(async (tx) =>
          tx.all<{ id: number }>(sql`SELECT id FROM authors ORDER BY id`),
        );
        expect(rows.map((r) => Number(r.id))).toContain(1);
      });
    }

    it("a refused token (expired: 401, read-only on a write: 403) is a DatabaseAuthError, not retried", async () => {
      const server = await sqldForTest({ auth: true });
      await databaseOn(engine, server);
      const tokens: [string, number][] = [[server.token({ access: "ro" }), 403]];
      // a replica with an expired token cannot even make its first sync (that is a transient sync error)
      if (engine === "sqld") tokens.push([server.token({ expiresInSeconds: -3600 }), 401]);
      for (const [token, status] of tokens) {
        const db = await databaseOn(engine, server, { authToken: token, migrated: false });
        let runs = 0;
        const error = await db
          .write(async (tx) => {
            runs++;
            await tx.run(sql`INSERT INTO authors (id, name) VALUES (1, 'x')`);
          })
          .catch((err: unknown) => err);
        expect(error).toBeInstanceOf(DatabaseAuthError);
        expect(error).toMatchObject({ status, code: `HTTP_${status}` });
        expect(runs).toBe(1);
      }
    });

    if (engine !== "sqld") return;

    it("a COMMIT whose answer was lost is not run again: CommitOutcomeUnknownError, applied once", async () => {
      const server = await sqldForTest({ auth: true });
      await databaseOn(engine, server); // migrates through a direct connection
      const proxy = await commitAnswerLosingProxy(server.url);
      const db = await databaseOn(engine, server, { url: proxy.url, migrated: false });
      let runs = 0;
      const error = await db
        .write(async (tx) => {
          runs++;
          await tx.run(sql`UPDATE authors SET name = name WHERE id = 0`); // begins the transaction at once
          await tx.run(sql`INSERT INTO authors (id, name) VALUES (${10 + runs}, 'once')`);
        })
        .catch((err: unknown) => err);
      expect(proxy.dropped()).toBe(1);
      expect(error).toBeInstanceOf(CommitOutcomeUnknownError);
      expect(runs).toBe(1);
      expect(await authorIds(server)).toEqual([11]); // it was committed, once
    });

    it("TRANSACTION_TIMEOUT (sqld gave the lock to a waiting writer) is transient: the unit runs again", async () => {
      const server = await sqldForTest({ auth: true });
      const a = await databaseOn(engine, server);
      const b = await databaseOn(engine, server, { migrated: false });
      const holding = deferred();
      const bCommitted = deferred();
      let runs = 0;
      const errors: string[] = [];
      const slow = a.write(
        async (tx) => {
          runs++;
          // an UPDATE is sent at once: the transaction holds sqld's write lock from here
          await tx.run(sql`UPDATE authors SET name = name WHERE id = 0`);
          await tx.run(sql`INSERT INTO authors (id, name) VALUES (${10 + runs}, 'slow')`);
          if (runs === 1) {
            holding.resolve();
            await bCommitted.promise; // held past sqld's 5 s transaction timeout, until b took the lock
          }
        },
        { onRetry: (event) => errors.push(event.error.code) },
      );
      await holding.promise;
      await b.write(async (tx) => tx.run(sql`INSERT INTO authors (id, name) VALUES (100, 'waiting')`));
      bCommitted.resolve();
      await slow;
      expect(errors).toEqual(["TRANSACTION_TIMEOUT"]);
      expect(runs).toBe(2);
      expect(await authorIds(server)).toEqual([12, 100]);
    }, 30_000);
  },
  ["sqld", "replica"],
);
