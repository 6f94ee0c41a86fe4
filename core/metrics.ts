/**
 * Metrics every node shares, independent of the runtime. A node declares its
 * families once against a `MetricsRegistry`: counters and gauges are *read*
 * at scrape time from the plain numbers the hot paths bump (no label lookup,
 * no allocation per hit), histograms are observed on the slow paths only
 * (upstream fetches, applied changes). Node renders with prom-client
 * (core/prom.ts); the Worker, where prom-client does not run, with
 * `TextRegistry` below: the same names either way.
 *
 * Names follow the Prometheus conventions: `_total` for counters, base units
 * (`_seconds`, `_bytes`), and a `node` label on every sample.
 */
import type { Clock } from "./clock.ts";
import type { PurgeEvent, PurgeTarget } from "./purge.ts";
import type { SyncStats } from "./sync.ts";

export type Labels = Readonly<Record<string, string>>;
export type Sample = readonly [Labels, number];

export interface SampledSpec {
  name: string;
  help: string;
  type: "counter" | "gauge";
  labelNames?: readonly string[];
  /** Read at scrape time: one value, or one per label set. */
  read(): number | readonly Sample[];
}

export interface HistogramSpec {
  name: string;
  help: string;
  /** Upper bounds, ascending; +Inf is implied. */
  buckets: readonly number[];
}

export interface Observer {
  observe(value: number): void;
}

export interface MetricsRegistry {
  readonly node: string;
  readonly contentType: string;
  sampled(spec: SampledSpec): void;
  histogram(spec: HistogramSpec): Observer;
  /** The text exposition format 0.0.4. */
  render(): Promise<string>;
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Upstream and parent round trips: loopback sub-millisecond to a WAN timeout. */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

/** Change to apply: bus delivery (ms) to a `ttl`-mode wait or a partition (minutes). */
export const APPLY_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600,
] as const;

/** A histogram of fixed buckets: observe is a short loop over numbers, nothing allocated. */
export class FixedHistogram implements Observer {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(readonly buckets: readonly number[]) {
    this.counts = new Float64Array(buckets.length);
  }

  observe(value: number): void {
    this.count++;
    this.sum += value;
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= this.buckets[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

/** The exposition format by hand, for runtimes without prom-client (workerd). */
export class TextRegistry implements MetricsRegistry {
  readonly contentType = PROMETHEUS_CONTENT_TYPE;
  private readonly families: (() => string[])[] = [];

  constructor(readonly node: string) {}

  sampled(spec: SampledSpec): void {
    this.families.push(() => {
      const read = spec.read();
      const samples: readonly Sample[] = typeof read === "number" ? [[{}, read]] : read;
      return [
        ...header(spec.name, spec.help, spec.type),
        ...samples.map(([labels, v]) => `${spec.name}${this.labels(labels)} ${num(v)}`),
      ];
    });
  }

  histogram(spec: HistogramSpec): Observer {
    const h = new FixedHistogram(spec.buckets);
    this.families.push(() => {
      const lines = header(spec.name, spec.help, "histogram");
      let cumulative = 0;
      spec.buckets.forEach((le, i) => {
        cumulative += h.counts[i]!;
        lines.push(`${spec.name}_bucket${this.labels({ le: num(le) })} ${cumulative}`);
      });
      lines.push(`${spec.name}_bucket${this.labels({ le: "+Inf" })} ${h.count}`);
      lines.push(`${spec.name}_sum${this.labels({})} ${num(h.sum)}`);
      lines.push(`${spec.name}_count${this.labels({})} ${h.count}`);
      return lines;
    });
    return h;
  }

  async render(): Promise<string> {
    return `${this.families.flatMap((f) => f()).join("\n")}\n`;
  }

  private labels(labels: Labels): string {
    const all = { ...labels, node: this.node };
    return `{${Object.entries(all)
      .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
      .join(",")}}`;
  }
}

function header(name: string, help: string, type: string): string[] {
  return [
    `# HELP ${name} ${help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`,
    `# TYPE ${name} ${type}`,
  ];
}

/** Exposition format: label values escape backslash, double quote and newline. */
function escapeLabel(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function num(v: number): string {
  if (v === Number.POSITIVE_INFINITY) return "+Inf";
  if (v === Number.NEGATIVE_INFINITY) return "-Inf";
  return String(v);
}

/** A label-keyed counter table, read at scrape time. */
export function byLabel(counts: ReadonlyMap<string, number>, label: string): readonly Sample[] {
  return [...counts].map(([value, n]) => [{ [label]: value }, n] as const);
}

/**
 * The fabric's view of a cache node, the same on every tier: changes applied
 * by mode, the time from the origin's commit to the apply here, and the bus
 * lag (how old the last event was when the bus delivered it).
 */
export class FabricMetrics {
  private readonly applied = new Map<string, number>();
  private readonly toApply: Observer;
  private busLagSeconds = 0;

  constructor(
    private readonly registry: MetricsRegistry,
    private readonly clock: Clock,
  ) {
    registry.sampled({
      name: "propagate_purges_applied_total",
      help: "changes and purges applied by this node, by mode",
      type: "counter",
      labelNames: ["mode"],
      read: () => byLabel(this.applied, "mode"),
    });
    this.toApply = registry.histogram({
      name: "propagate_change_apply_seconds",
      help: "time from the origin's commit of a change to its apply on this node",
      buckets: APPLY_BUCKETS,
    });
    registry.sampled({
      name: "propagate_bus_lag_seconds",
      help: "age of the last purge event when the bus delivered it to this node",
      type: "gauge",
      read: () => this.busLagSeconds,
    });
  }

  /** Wraps `target.applyPurge` (on this instance) so every apply is counted and timed. */
  observe<T extends PurgeTarget>(target: T): T {
    const apply = target.applyPurge.bind(target);
    target.applyPurge = (event: PurgeEvent) => {
      const done = apply(event);
      if (done instanceof Promise) return done.then(() => this.onApplied(event));
      this.onApplied(event);
      return done;
    };
    return target;
  }

  /** A purge that did not come as a change (the node's own POST /purge): counted by mode. */
  purged(mode: string): void {
    this.applied.set(mode, (this.applied.get(mode) ?? 0) + 1);
  }

  /** The bus delivered `event` to this node (after its link's delay). */
  readonly busEvent = (event: PurgeEvent): void => {
    this.busLagSeconds = Math.max(0, this.clock.now() - event.ts) / 1000;
  };

  /** The node's sync counters (bus events, feed changes, resyncs, polls), once it joined. */
  sync(stats: () => SyncStats): void {
    const families: [keyof SyncStats, string, string][] = [
      ["busEvents", "propagate_bus_events_total", "purge events the bus delivered"],
      ["feedChanges", "propagate_feed_changes_total", "changes read from the change feed"],
      ["resyncs", "propagate_resyncs_total", "zones dropped and re-read from the feed"],
      ["gaps", "propagate_bus_gaps_total", "bus events after a gap the feed filled"],
      ["polls", "propagate_polls_total", "anti-entropy rounds"],
      ["pollErrors", "propagate_poll_errors_total", "failed change-feed reads"],
      ["ackErrors", "propagate_ack_errors_total", "receipts the origin did not take"],
    ];
    for (const [key, name, help] of families) {
      this.registry.sampled({ name, help, type: "counter", read: () => stats()[key] });
    }
  }

  private onApplied(event: PurgeEvent): void {
    this.purged(event.mode);
    this.toApply.observe(Math.max(0, this.clock.now() - event.ts) / 1000);
  }
}

/** Times each call of an async upstream function into `histogram` (seconds, on `clock`). */
export function timed<A extends unknown[], R>(
  fn: (...args: A) => Promise<R>,
  histogram: Observer,
  clock: Clock,
): (...args: A) => Promise<R> {
  return async (...args) => {
    const start = clock.now();
    try {
      return await fn(...args);
    } finally {
      histogram.observe((clock.now() - start) / 1000);
    }
  };
}
