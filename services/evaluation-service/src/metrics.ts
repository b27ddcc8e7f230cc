import { Gauge, type Registry } from "prom-client";
import type { ConsumerStatus } from "./consumer.js";

/**
 * `event_consumer_lag{consumer}`: newest prompt event sequence seen in the feed - last one applied here, read
 * from the running consumer at each scrape (in memory: no query). Also the two sequences, to tell a stalled
 * consumer (applied stops moving) from a busy feed.
 */
export function registerConsumerMetrics(
  registry: Registry,
  consumer: { readonly status: ConsumerStatus },
  name: string,
): void {
  const labels = { consumer: name };
  new Gauge({
    name: "event_consumer_lag",
    help: "Prompt events seen in the feed but not applied yet (last seen - last applied sequence)",
    labelNames: ["consumer"] as const,
    registers: [registry],
    collect() {
      this.set(labels, consumer.status.lag);
    },
  });
  new Gauge({
    name: "event_consumer_last_applied_sequence",
    help: "Sequence of the last prompt event applied",
    labelNames: ["consumer"] as const,
    registers: [registry],
    collect() {
      this.set(labels, consumer.status.lastAppliedSequence);
    },
  });
}
