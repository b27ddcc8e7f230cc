import { type InStatement, LibsqlError, type ResultSet, type Transaction } from "@libsql/client";

/**
 * The read-only guard of read units of work on a remote engine (sqld / Turso, an embedded replica's primary).
 *
 * There, `BEGIN TRANSACTION READONLY` does not refuse writes and `PRAGMA query_only` is refused, and a read
 * unit ends with ROLLBACK, so a stray write would be discarded without a word. The guard reads the
 * connection's change counter and schema version with the unit's first statement and again with its closing
 * ROLLBACK (the same requests, no extra round trip); if either moved, the unit fails with SQLITE_READONLY, as
 * a write on a `file:` database's read-only connection does. Each transaction has a connection of its own
 * (one Hrana stream), so only the unit's own statements can move them. Counted: rows changed by INSERT,
 * UPDATE and DELETE (and by their triggers), and any schema change.
 */

const PROBE = "SELECT total_changes() AS changes, schema_version AS schema FROM pragma_schema_version";

interface Probe {
  changes: number;
  schema: number;
}

function probeOf(result: ResultSet | undefined): Probe {
  const row = result?.rows[0];
  return { changes: Number(row?.changes ?? 0), schema: Number(row?.schema ?? 0) };
}

export interface GuardedReadTransaction extends Transaction {
  /** Set once a statement came after a one-request read (however the unit handled the error it got). */
  readonly needsTransaction: ReadNeedsTransaction | undefined;
  /** Ends the read: ROLLBACK, then SQLITE_READONLY if the unit changed anything. Use instead of `rollback`. */
  finish(): Promise<void>;
}

/**
 * A read unit's statement after its first one, when the first went alone (see {@link GuardOptions.oneShot}):
 * its transaction is over, so the attempt runs again as an interactive transaction.
 */
export class ReadNeedsTransaction extends Error {
  constructor(readonly firstSql: string) {
    super(
      "a read unit of work ran a second statement after a one-request read; it runs again in a transaction",
    );
    this.name = "ReadNeedsTransaction";
  }
}

export interface GuardOptions {
  /**
   * Remote engines: a unit's first statement (or batch) is sent with BEGIN, the probe before and after it, and
   * the ROLLBACK, in one request, so a read of one statement costs one round trip (an SQLite statement is its
   * own snapshot). A second statement then throws {@link ReadNeedsTransaction}; its first statement's SQL goes
   * in `multiStatement`, and units starting with it run interactively from then on.
   */
  oneShot?: { multiStatement: Set<string> } | undefined;
}

const MULTI_STATEMENT_MAX = 1_000;
const sqlOf = (stmt: InStatement): string => (typeof stmt === "string" ? stmt : stmt.sql);

export function guardReadTransaction(inner: Transaction, options: GuardOptions = {}): GuardedReadTransaction {
  let baseline: Promise<Probe> | undefined;
  /** Set once a one-request read ended the transaction; later statements throw it. */
  let ended: ReadNeedsTransaction | undefined;
  let endedUsed = false;
  /** Whether anything was sent on `inner` yet. */
  let begun = false;

  /** A statement after a one-request read: units starting like this one run interactively from now on. */
  const refuse = (err: ReadNeedsTransaction): ReadNeedsTransaction => {
    endedUsed = true;
    const multi = options.oneShot?.multiStatement;
    if (multi !== undefined && multi.size < MULTI_STATEMENT_MAX) multi.add(err.firstSql);
    return err;
  };

  /** The whole read in one request: BEGIN, probe, `stmts`, probe, ROLLBACK and the stream's close. */
  const oneRequest = async (stmts: InStatement[]): Promise<ResultSet[]> => {
    ended = new ReadNeedsTransaction(stmts[0] === undefined ? "" : sqlOf(stmts[0]));
    const results = inner.batch([PROBE, ...stmts, PROBE]);
    // queued behind the batch (both before the request goes): one request, the transaction ends either way
    const rolledBack = inner.rollback();
    rolledBack.catch(() => undefined);
    const all = await results;
    await rolledBack;
    const before = probeOf(all[0]);
    const after = probeOf(all[all.length - 1]);
    if (after.changes !== before.changes || after.schema !== before.schema) throw readOnlyViolation();
    return all.slice(1, -1);
  };

  /** Runs `stmts` with the probe in front when it has not been taken yet; returns the statements' results. */
  const run = async (stmts: InStatement[]): Promise<ResultSet[]> => {
    if (ended !== undefined) throw refuse(ended);
    const oneShot = options.oneShot;
    const first = stmts[0];
    // only the unit's very first request may be the whole read (not after a failed first statement)
    const fresh = !begun;
    begun = true;
    if (fresh && oneShot !== undefined && first !== undefined) {
      if (!oneShot.multiStatement.has(sqlOf(first))) return oneRequest(stmts);
    }
    if (baseline !== undefined) return inner.batch(stmts);
    const results = inner.batch([PROBE, ...stmts]);
    const taken = results.then((r) => probeOf(r[0]));
    baseline = taken;
    // a failed first batch rejects `results` (awaited below); the baseline's copy of it is not awaited
    taken.catch(() => undefined);
    try {
      return (await results).slice(1);
    } catch (err) {
      // The probe's result went down with the batch, and a failed statement changed nothing: the unit's next
      // statement takes the baseline instead (reset before the caller sees the error, so it may go on).
      if (baseline === taken) baseline = undefined;
      throw err;
    }
  };

  return {
    async execute(stmt: InStatement): Promise<ResultSet> {
      if (baseline !== undefined && ended === undefined) return inner.execute(stmt);
      const [result] = await run([stmt]);
      if (result === undefined) throw new Error("a batch of one statement returned no result");
      return result;
    },
    batch: (stmts) => run(stmts),
    async executeMultiple(sql) {
      if (ended !== undefined) throw refuse(ended);
      if (baseline === undefined) await run([]);
      begun = true;
      return inner.executeMultiple(sql);
    },
    rollback: () => inner.rollback(),
    commit: () => inner.commit(),
    close: () => inner.close(),
    get closed() {
      return inner.closed;
    },
    get needsTransaction() {
      return endedUsed ? ended : undefined;
    },
    async finish() {
      if (ended !== undefined) {
        // a later statement was refused (even if the unit caught that): the attempt must run again
        if (endedUsed) throw ended;
        return;
      }
      // nothing ran: nothing can have been written
      if (baseline === undefined) return inner.rollback();
      const before = await baseline;
      const probed = inner.batch([PROBE]);
      probed.catch(() => undefined);
      // ROLLBACK and the stream's close go in the probe's request: queued one tick later, behind the batch,
      // which @libsql/client queues after awaiting its BEGIN (see pipelined-write.ts)
      await Promise.resolve();
      const rolledBack = inner.rollback();
      rolledBack.catch(() => undefined);
      const [probe] = await probed;
      await rolledBack;
      const after = probeOf(probe);
      if (after.changes !== before.changes || after.schema !== before.schema) throw readOnlyViolation();
    },
  };
}

function readOnlyViolation(): LibsqlError {
  return new LibsqlError(
    "attempt to write in a read unit of work (rolled back): use db.write for changes",
    "SQLITE_READONLY",
    "SQLITE_READONLY",
    8,
  );
}
