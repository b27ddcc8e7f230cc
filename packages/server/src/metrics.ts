import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code } from "@connectrpc/connect";
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

/** What the chain reports of each call (see `createRpcMetrics`). */
export interface RpcObservation {
  readonly service: DescService;
  readonly method: DescMethod;
  /** "grpc", "grpc-web" or "connect". */
  readonly protocol: string;
}

export interface RpcMetrics {
  /** The call passed admission to the chain (before auth). */
  started(call: RpcObservation): void;
  /** The request message was read and decoded. */
  received(call: RpcObservation): void;
  /** One response message was handed to the transport. */
  sent(call: RpcObservation): void;
  /** The call ended with `code` (0 = OK) after `seconds`. */
  handled(call: RpcObservation, code: Code | 0, seconds: number): void;
}

const grpcTypes: Record<DescMethod["methodKind"], string> = {
  unary: "unary",
  client_streaming: "client_stream",
  server_streaming: "server_stream",
  bidi_streaming: "bidi_stream",
};

/** A status code as grpc-go spells it, which is what go-grpc-prometheus dashboards match: `OK`, `NotFound`. */
export function grpcCodeLabel(code: Code | 0): string {
  return code === 0 ? "OK" : (Code[code] ?? String(code));
}

/**
 * The server metrics of go-grpc-prometheus (grpc-ecosystem), under its names and labels, so its dashboards
 * and alerts work unchanged — plus `protocol` (grpc, grpc-web, connect), since one method is served on both
 * ports and three protocols:
 * - `grpc_server_started_total{grpc_type, grpc_service, grpc_method, protocol}`
 * - `grpc_server_handled_total{grpc_type, grpc_service, grpc_method, grpc_code, protocol}` — the code the
 *   caller got (a response over the size limit is RESOURCE_EXHAUSTED, not OK)
 * - `grpc_server_handling_seconds{grpc_type, grpc_service, grpc_method, protocol}` (histogram)
 * - `grpc_server_msg_received_total` / `grpc_server_msg_sent_total{grpc_type, grpc_service, grpc_method, protocol}`
 *
 * `grpc_type` is unary / client_stream / server_stream / bidi_stream, `grpc_service` the full name
 * (`autoforge.prompt.v1.PromptService`), `grpc_code` grpc-go's name of the code (`OK`, `NotFound`,
 * `ResourceExhausted`).
 */
export function createRpcMetrics(registry: Registry): RpcMetrics {
  const base = ["grpc_type", "grpc_service", "grpc_method", "protocol"] as const;
  const started = new Counter({
    name: "grpc_server_started_total",
    help: "Total number of RPCs started on the server.",
    labelNames: base,
    registers: [registry],
  });
  const handled = new Counter({
    name: "grpc_server_handled_total",
    help: "Total number of RPCs completed on the server, regardless of success or failure.",
    labelNames: [...base, "grpc_code"] as const,
    registers: [registry],
  });
  const handling = new Histogram({
    name: "grpc_server_handling_seconds",
    help: "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
    labelNames: base,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const received = new Counter({
    name: "grpc_server_msg_received_total",
    help: "Total number of RPC stream messages received on the server.",
    labelNames: base,
    registers: [registry],
  });
  const sent = new Counter({
    name: "grpc_server_msg_sent_total",
    help: "Total number of gRPC stream messages sent by the server.",
    labelNames: base,
    registers: [registry],
  });
  // one label object per method and protocol, built once
  const byMethod = new WeakMap<DescMethod, Map<string, Record<(typeof base)[number], string>>>();
  const labels = (call: RpcObservation) => {
    let byProtocol = byMethod.get(call.method);
    if (byProtocol === undefined) {
      byProtocol = new Map();
      byMethod.set(call.method, byProtocol);
    }
    let l = byProtocol.get(call.protocol);
    if (l === undefined) {
      l = {
        grpc_type: grpcTypes[call.method.methodKind],
        grpc_service: call.service.typeName,
        grpc_method: call.method.name,
        protocol: call.protocol,
      };
      byProtocol.set(call.protocol, l);
    }
    return l;
  };
  return {
    started: (call) => started.inc(labels(call)),
    received: (call) => received.inc(labels(call)),
    sent: (call) => sent.inc(labels(call)),
    handled(call, code, seconds) {
      const l = labels(call);
      handled.inc({ ...l, grpc_code: grpcCodeLabel(code) });
      handling.observe(l, seconds);
    },
  };
}
