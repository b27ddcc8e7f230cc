// What the services themselves saw during a run, from their GET /metrics (Prometheus text): the RPC's handling
// time in the middleware chain (a histogram: the difference between a scrape before and one after the run), and
// the event-loop delay of each process (prom-client resets it at every scrape, so the scrape after a run covers
// exactly the run). Next to ghz's latency this tells where a slow request waited: inside the handler (database,
// downstream call), or before the chain started (a busy event loop, the transport).

/** The /metrics text of a service, or undefined if it did not answer (a run never fails because of it). */
export async function scrapeMetrics(connectPort) {
  try {
    const res = await fetch(`http://127.0.0.1:${connectPort}/metrics`, {
      signal: AbortSignal.timeout(5_000),
    });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

/** Samples of one metric: [{ labels, value }]. */
function samples(text, name) {
  const out = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const close = line.lastIndexOf("}");
    const labels = {};
    if (line[name.length] === "{") {
      for (const m of line.slice(name.length + 1, close).matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
        labels[m[1]] = m[2];
    }
    out.push({ labels, value: Number(line.slice((close === -1 ? name.length : close + 1) + 1)) });
  }
  return out;
}

/**
 * The `q` quantile of the RPC's handling time during the run (every outcome: go-grpc-prometheus's histogram
 * has no code label; a load run's calls are OK unless the run reports errors), as the upper bound of its histogram bucket
 * ("≤ 25 ms"), from the scrapes before and after; undefined without both or without calls.
 */
export function handlingQuantileMs(before, after, call, q) {
  if (before === undefined || after === undefined) return undefined;
  const dot = call.lastIndexOf(".");
  const match = (labels) =>
    labels.grpc_service === call.slice(0, dot) && labels.grpc_method === call.slice(dot + 1);
  // summed over protocols (ghz calls the gRPC port: protocol "grpc")
  const counts = (text) => {
    const byLe = new Map();
    for (const s of samples(text, "grpc_server_handling_seconds_bucket")) {
      if (match(s.labels)) byLe.set(s.labels.le, (byLe.get(s.labels.le) ?? 0) + s.value);
    }
    return byLe;
  };
  const was = counts(before);
  const buckets = [...counts(after)]
    .map(([le, n]) => ({
      le: le === "+Inf" ? Number.POSITIVE_INFINITY : Number(le),
      n: n - (was.get(le) ?? 0),
    }))
    .sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.n ?? 0;
  if (total === 0) return undefined;
  const bucket = buckets.find((b) => b.n >= q * total);
  return bucket === undefined || !Number.isFinite(bucket.le) ? Number.POSITIVE_INFINITY : bucket.le * 1000;
}

/** Event-loop delay since the previous scrape: p99 and max in ms (prom-client's nodejs_eventloop_lag_*). */
export function eventLoopDelayMs(text) {
  if (text === undefined) return undefined;
  const gauge = (name) => samples(text, name)[0]?.value;
  const ms = (s) => (s === undefined ? undefined : Math.round(s * 100_000) / 100);
  return {
    p99: ms(gauge("nodejs_eventloop_lag_p99_seconds")),
    max: ms(gauge("nodejs_eventloop_lag_max_seconds")),
  };
}
