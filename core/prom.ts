/**
 * `MetricsRegistry` on prom-client, for every node that runs on Node: the
 * node's families plus prom-client's process and runtime metrics, all
 * labelled with the node id. Counters and gauges are collected at scrape
 * time from the node's own numbers, so the hot paths never call prom-client.
 */
import client from "prom-client";
import type { HistogramSpec, MetricsRegistry, Observer, SampledSpec } from "./metrics.ts";

export class PromRegistry implements MetricsRegistry {
  readonly registry = new client.Registry();
  readonly contentType = client.Registry.PROMETHEUS_CONTENT_TYPE;

  constructor(readonly node: string) {
    this.registry.setDefaultLabels({ node });
    client.collectDefaultMetrics({ register: this.registry });
  }

  sampled(spec: SampledSpec): void {
    const base = {
      name: spec.name,
      help: spec.help,
      labelNames: [...(spec.labelNames ?? [])],
      registers: [this.registry],
    };
    const each = (apply: (labels: Record<string, string>, v: number) => void) => {
      const read = spec.read();
      if (typeof read === "number") apply({}, read);
      else for (const [labels, v] of read) apply({ ...labels }, v);
    };
    if (spec.type === "counter") {
      new client.Counter({
        ...base,
        collect() {
          this.reset();
          each((labels, v) => this.inc(labels, v));
        },
      });
    } else {
      new client.Gauge({
        ...base,
        collect() {
          this.reset();
          each((labels, v) => this.set(labels, v));
        },
      });
    }
  }

  histogram(spec: HistogramSpec): Observer {
    return new client.Histogram({
      name: spec.name,
      help: spec.help,
      buckets: [...spec.buckets],
      registers: [this.registry],
    });
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
