import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

/**
 * A service process's one registry (served at GET /metrics), with Node's own process metrics: CPU, memory,
 * event-loop delay (`nodejs_eventloop_lag_*_seconds`, over the time since the previous scrape), GC pauses,
 * handles. Event-loop delay is what tells "the process was busy" from "the request waited elsewhere".
 */
export function createProcessMetricsRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}

/** What `createDatabaseMetrics` needs from `@autoforge/db`'s `Database` (structurally). */
export interface MeteredDatabase {
  /** Write units of work waiting for the writer. */
  readonly writeQueueDepth: number;
  /** Read units of work waiting for a connection. */
  readonly readQueueDepth: number;
  /** The raw client, for the one cheap size query at scrape time (outside any unit of work). */
  readonly client: {
    execute(sql: string): Promise<{ rows: ArrayLike<Record<string, unknown>> }>;
  };
}

/** The `onRetry` / `onUnitOfWork` events of `@autoforge/db` (the fields used here). */
export interface RetryObservation {
  readonly kind: string;
  readonly error: { readonly reason?: string; readonly code?: string };
}
export interface UnitOfWorkObservation {
  readonly kind: string;
  readonly outcome: string;
  readonly durationMs: number;
}

export interface DatabaseMetrics {
  /** Spread into `createDatabase({ ... })`: transaction durations and retries. */
  readonly hooks: {
    readonly onRetry: (event: RetryObservation) => void;
    readonly onUnitOfWork: (event: UnitOfWorkObservation) => void;
  };
  /** Queue depths and the file size of this database, read at each scrape. Call once, after createDatabase. */
  collectFrom(db: MeteredDatabase): void;
}

/**
 * The database metrics every service exports, in one place:
 * - `db_transaction_duration_seconds{kind=read|write, outcome=commit|rollback}` — each attempt, BEGIN to end;
 * - `db_transaction_retries_total{kind, reason=busy|locked|network|replica_sync}` — from the db kit's `onRetry`;
 * - `db_write_queue_depth`, `db_read_queue_depth` — units of work waiting, read at scrape;
 * - `db_size_bytes` — `page_count * page_size`, one PRAGMA query at scrape (no table scan).
 *
 * Created before the database (its hooks go into `createDatabase`); the gauges are bound afterwards with
 * `collectFrom(db)`, so the database kit needs no prom-client.
 */
export function createDatabaseMetrics(registry: Registry): DatabaseMetrics {
  const duration = new Histogram({
    name: "db_transaction_duration_seconds",
    help: "Duration of each unit-of-work attempt (BEGIN to COMMIT/ROLLBACK), by kind and outcome",
    labelNames: ["kind", "outcome"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const retries = new Counter({
    name: "db_transaction_retries_total",
    help: "Units of work retried after a transient database error, by kind and reason",
    labelNames: ["kind", "reason"] as const,
    registers: [registry],
  });
  let source: MeteredDatabase | undefined;
  new Gauge({
    name: "db_write_queue_depth",
    help: "Write units of work waiting for the single writer",
    registers: [registry],
    collect() {
      if (source !== undefined) this.set(source.writeQueueDepth);
    },
  });
  new Gauge({
    name: "db_read_queue_depth",
    help: "Read units of work waiting for a pooled connection",
    registers: [registry],
    collect() {
      if (source !== undefined) this.set(source.readQueueDepth);
    },
  });
  new Gauge({
    name: "db_size_bytes",
    help: "Database size: page_count * page_size (free pages included)",
    registers: [registry],
    async collect() {
      if (source === undefined) return;
      try {
        const rs = await source.client.execute(
          "SELECT p.page_count * s.page_size AS bytes FROM pragma_page_count() AS p, pragma_page_size() AS s",
        );
        const bytes = Number(rs.rows[0]?.bytes);
        if (Number.isFinite(bytes)) this.set(bytes);
      } catch {
        // a scrape must not fail because the database is busy or closing: keep the last value
      }
    },
  });
  return {
    hooks: {
      onRetry(event) {
        retries.inc({ kind: event.kind, reason: event.error.reason ?? event.error.code ?? "unknown" });
      },
      onUnitOfWork(event) {
        duration.observe({ kind: event.kind, outcome: event.outcome }, event.durationMs / 1000);
      },
    },
    collectFrom(db) {
      source = db;
    },
  };
}
