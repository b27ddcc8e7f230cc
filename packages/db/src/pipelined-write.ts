import { type InStatement, LibsqlBatchError, type ResultSet, type Transaction } from "@libsql/client";

/**
 * Round trips of a write unit of work on a remote engine (sqld, Turso). There every statement of an interactive
 * transaction is one HTTP request, and the writer is held across all of them. Two things cut them down:
 *
 * - Held-back writes. Most of a unit's writes are INSERTs whose result nobody reads, so they need not wait:
 *   they are sent with the unit's next statement that does need an answer (a read, an UPDATE whose
 *   `rowsAffected` is checked), or with the COMMIT, in one request, in order (each statement still sees the
 *   ones before it). Each step of a request runs only if the one before it succeeded, so nothing after a
 *   failure runs; after a held-back statement failed the unit can only roll back (every later call fails).
 *   Held back: `INSERT` / `REPLACE` without `RETURNING`. Their result is not known before the flush, so
 *   reading `rowsAffected` or `lastInsertRowid` of one throws (an INSERT whose count matters, such as `ON
 *   CONFLICT DO NOTHING`, needs `.returning()`); an error of one (a constraint) comes from the call it is
 *   flushed with, or from the commit.
 * - Read-ahead. A statement without arguments that write units keep running (the audit chain's head, say) is
 *   learned, and sent with the first request of the next units. When such a unit runs it, it gets that answer
 *   at once, and a check goes in its place in the request stream: the same query, compared in SQL with the
 *   answer given, failing the request if it differs. So the unit commits only if what it read is what it would
 *   have read there; otherwise its attempt starts again without read-ahead ({@link ReadAheadMiss}).
 */

/**
 * The statements a database's write units read ahead (learned; shared by its units), each with how many units
 * in a row read it ahead without using it: at {@link READ_AHEAD_UNUSED_MAX} it is forgotten, so a statement
 * one unit ran once does not ride along with every later unit.
 */
export interface ReadAhead {
  statements: Map<string, number>;
  /** Statements that missed once (their answer moves within a unit): never read ahead again. */
  refused: Set<string>;
}

const READ_AHEAD_MAX = 4;
const READ_AHEAD_UNUSED_MAX = 8;

export function createReadAhead(): ReadAhead {
  return { statements: new Map(), refused: new Set() };
}

/** The attempt read ahead something that changed before it used it, or a read-ahead failed: run it again. */
export class ReadAheadMiss extends Error {
  constructor(readonly sql: string) {
    super("a read-ahead of the unit of work no longer held; the attempt runs again without read-ahead");
    this.name = "ReadAheadMiss";
  }
}

interface Sent {
  stmt: InStatement;
  /** A read-ahead check: its failure means the answer given was stale. */
  check?: string;
}

export interface PipelinedTransaction extends Transaction {
  /**
   * Set when a read-ahead missed (however the unit's code handled the error it got): the attempt's outcome
   * does not count, it is rolled back and run again without read-ahead.
   */
  readonly miss: ReadAheadMiss | undefined;
}

export function pipelineWrites(inner: Transaction, readAhead?: ReadAhead): PipelinedTransaction {
  let pending: Sent[] = [];
  let begun = false;
  /** Set once a held-back statement or a check failed: the unit may only roll back. */
  let failed: unknown;
  const prefetched = new Map<string, ResultSet>();

  /** Sends what is held back, then `stmts` (then the read-ahead, in the first request); returns `stmts`' results. */
  const flushWith = async (stmts: InStatement[]): Promise<ResultSet[]> => {
    if (failed !== undefined) throw failed;
    const sent = pending;
    pending = [];
    const ahead = begun || readAhead === undefined ? [] : [...readAhead.statements.keys()];
    begun = true;
    if (sent.length === 0 && ahead.length === 0) return inner.batch(stmts);
    let results: ResultSet[];
    try {
      results = await inner.batch([...sent.map((s) => s.stmt), ...stmts, ...ahead]);
    } catch (err) {
      const index = err instanceof LibsqlBatchError ? err.statementIndex : -1;
      const before = index >= 0 && index < sent.length ? sent[index] : undefined;
      if (before?.check !== undefined) {
        failed = new ReadAheadMiss(before.check);
        refuse(readAhead, before.check);
      } else if (index >= sent.length + stmts.length) {
        // a read-ahead itself failed (a table gone?): `stmts` ran, but their results went with the batch
        const sql = ahead[index - sent.length - stmts.length] ?? "";
        refuse(readAhead, sql);
        failed = new ReadAheadMiss(sql);
      } else if (before !== undefined || index < 0) {
        failed = err;
      }
      throw failed ?? err;
    }
    ahead.forEach((sql, i) => {
      const result = results[sent.length + stmts.length + i];
      if (result !== undefined) prefetched.set(sql, result);
    });
    return results.slice(sent.length, sent.length + stmts.length);
  };

  const learn = (stmt: InStatement, result: ResultSet) => {
    if (readAhead === undefined || !isReadAheadCandidate(stmt, result)) return;
    if (readAhead.refused.has(sqlOf(stmt))) return;
    if (readAhead.statements.size < READ_AHEAD_MAX) readAhead.statements.set(sqlOf(stmt), 0);
  };

  /** At the unit's end: what it read ahead and did not use counts against the statement. */
  const settle = () => {
    if (readAhead === undefined) return;
    for (const sql of prefetched.keys()) {
      const unused = (readAhead.statements.get(sql) ?? 0) + 1;
      if (unused >= READ_AHEAD_UNUSED_MAX) readAhead.statements.delete(sql);
      else if (readAhead.statements.has(sql)) readAhead.statements.set(sql, unused);
    }
    prefetched.clear();
  };

  return {
    async execute(stmt: InStatement): Promise<ResultSet> {
      if (failed !== undefined) throw failed;
      if (isDeferrable(stmt)) {
        pending.push({ stmt });
        return deferredResult();
      }
      const known = argumentFree(stmt) ? prefetched.get(sqlOf(stmt)) : undefined;
      // more than one row now: not checkable, so read the ordinary way (and counted unused, see settle)
      if (known !== undefined && known.rows.length <= 1) {
        prefetched.delete(sqlOf(stmt));
        if (readAhead?.statements.has(sqlOf(stmt))) readAhead.statements.set(sqlOf(stmt), 0);
        pending.push({ stmt: readAheadCheck(sqlOf(stmt), known), check: sqlOf(stmt) });
        return known;
      }
      const [result] = await flushWith([stmt]);
      if (result === undefined) throw new Error("a batch returned no result for its last statement");
      learn(stmt, result);
      return result;
    },
    batch: (stmts) => flushWith(stmts),
    async executeMultiple(sql) {
      if (pending.length > 0 || failed !== undefined) await flushWith([]);
      begun = true;
      return inner.executeMultiple(sql);
    },
    async commit() {
      settle();
      if (failed !== undefined) throw failed;
      if (pending.length === 0) return inner.commit();
      const sent = pending;
      pending = [];
      // The held-back statements and COMMIT as one batch: COMMIT runs only if every statement succeeded.
      const committed = inner.batch([...sent.map((s) => s.stmt), "COMMIT"]);
      committed.catch(() => undefined);
      // The stream is ended in the same request: a ROLLBACK (which undoes everything when a statement failed and
      // COMMIT was skipped, and fails harmlessly after a COMMIT) and the stream's close. It is queued one tick
      // later, behind the batch, which @libsql/client queues after awaiting the BEGIN it sent first (a batch that
      // begins the transaction is queued at once); were it queued too late it would only go in a request of its
      // own.
      if (begun) await Promise.resolve();
      begun = true;
      const ended = inner.rollback().catch(() => undefined);
      try {
        await committed;
      } catch (err) {
        const index = err instanceof LibsqlBatchError ? err.statementIndex : -1;
        const check = sent[index]?.check;
        if (check !== undefined) {
          refuse(readAhead, check);
          failed = new ReadAheadMiss(check);
          throw failed;
        }
        throw err;
      } finally {
        await ended;
      }
    },
    rollback() {
      settle();
      pending = [];
      return inner.rollback();
    },
    close() {
      pending = [];
      inner.close();
    },
    get closed() {
      return inner.closed;
    },
    get miss() {
      return failed instanceof ReadAheadMiss ? failed : undefined;
    },
  };
}

const REFUSED_MAX = 256;

function refuse(readAhead: ReadAhead | undefined, sql: string): void {
  if (readAhead === undefined) return;
  readAhead.statements.delete(sql);
  if (readAhead.refused.size < REFUSED_MAX) readAhead.refused.add(sql);
}

const sqlOf = (stmt: InStatement): string => (typeof stmt === "string" ? stmt : stmt.sql);

function argumentFree(stmt: InStatement): boolean {
  if (typeof stmt === "string") return true;
  const { args } = stmt;
  return args === undefined || (Array.isArray(args) ? args.length === 0 : Object.keys(args).length === 0);
}

/** An INSERT or REPLACE whose result carries nothing but counts (no RETURNING). */
export function isDeferrable(stmt: InStatement): boolean {
  const sql = sqlOf(stmt);
  return /^\s*(insert|replace)\b/i.test(sql) && !/\breturning\b/i.test(sql);
}

/** A SELECT without arguments, answered with at most one row of distinct column names: checkable in SQL. */
function isReadAheadCandidate(stmt: InStatement, result: ResultSet): boolean {
  const sql = sqlOf(stmt);
  return (
    argumentFree(stmt) &&
    /^\s*select\b/i.test(sql) &&
    !sql.includes(";") &&
    result.rows.length <= 1 &&
    result.columns.length > 0 &&
    new Set(result.columns).size === result.columns.length
  );
}

/**
 * A statement that fails ("malformed JSON") unless `sql` still returns exactly `known`: SQLite has no RAISE
 * outside triggers, so the CASE makes json() parse an invalid text when the rows differ.
 */
function readAheadCheck(sql: string, known: ResultSet): InStatement {
  const row = known.rows[0];
  if (row === undefined) {
    return `SELECT json(CASE WHEN NOT EXISTS (${sql}) THEN '1' ELSE 'read-ahead changed' END)`;
  }
  const quoted = known.columns.map((c) => `"${c.replaceAll('"', '""')}"`);
  const same = quoted.map((c) => `${c} IS ?`).join(" AND ");
  return {
    sql:
      `SELECT json(CASE WHEN (SELECT count(*) FROM (${sql})) = 1 AND (SELECT ${same} FROM (${sql})) IS 1 ` +
      `THEN '1' ELSE 'read-ahead changed' END)`,
    args: known.columns.map((_, i) => row[i] ?? null),
  };
}

function deferredResult(): ResultSet {
  const unknown = (what: string): never => {
    throw new Error(
      `${what} of an INSERT held back until the unit of work's next statement is not known (use .returning())`,
    );
  };
  return {
    columns: [],
    columnTypes: [],
    rows: [],
    get rowsAffected(): number {
      return unknown("rowsAffected");
    },
    get lastInsertRowid(): bigint | undefined {
      return unknown("lastInsertRowid");
    },
    toJSON: () => ({ columns: [], columnTypes: [], rows: [], rowsAffected: null, lastInsertRowid: null }),
  };
}
