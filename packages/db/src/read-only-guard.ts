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
  /** Ends the read: ROLLBACK, then SQLITE_READONLY if the unit changed anything. Use instead of `rollback`. */
  finish(): Promise<void>;
}

export function guardReadTransaction(inner: Transaction): GuardedReadTransaction {
  let baseline: Promise<Probe> | undefined;

  /** Runs `stmts` with the probe in front when it has not been taken yet; returns the statements' results. */
  const run = async (stmts: InStatement[]): Promise<ResultSet[]> => {
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
      if (baseline !== undefined) return inner.execute(stmt);
      const [result] = await run([stmt]);
      if (result === undefined) throw new Error("a batch of one statement returned no result");
      return result;
    },
    batch: (stmts) => run(stmts),
    async executeMultiple(sql) {
      if (baseline === undefined) await run([]);
      return inner.executeMultiple(sql);
    },
    rollback: () => inner.rollback(),
    commit: () => inner.commit(),
    close: () => inner.close(),
    get closed() {
      return inner.closed;
    },
    async finish() {
      // nothing ran: nothing can have been written
      if (baseline === undefined) return inner.rollback();
      const before = await baseline;
      const [probe] = await inner.batch([PROBE, "ROLLBACK"]);
      inner.close();
      const after = probeOf(probe);
      if (after.changes !== before.changes || after.schema !== before.schema) {
        throw new LibsqlError(
          "attempt to write in a read unit of work (rolled back): use db.write for changes",
          "SQLITE_READONLY",
          "SQLITE_READONLY",
          8,
        );
      }
    },
  };
}
