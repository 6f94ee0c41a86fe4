/**
 * The edge's Prometheus families, declared once for Node (prom-client) and
 * the Worker (TextRegistry): read at scrape time from the engine's plain
 * counters (`Edge.metrics()`), plus the parent latency histogram and the
 * fabric's apply metrics. Pure: no prom-client import, so the Worker bundle
 * stays free of it.
 */
import type { Clock } from "../core/clock.ts";
import {
  FabricMetrics,
  LATENCY_BUCKETS,
  type MetricsRegistry,
  type Sample,
  timed,
} from "../core/metrics.ts";
import type { Edge, EdgeMetrics, ParentFetch } from "./cache.ts";

type Counter = Exclude<keyof EdgeMetrics, "id">;

/** [name, help, read] of every plain counter. */
const COUNTERS: [string, string, (m: EdgeMetrics) => number][] = [
  [
    "edge_requests_total",
    "requests through the cache (hits, stale, misses, revalidations, pass-through)",
    (m) => m.hits + m.stale - m.staleIfError + m.misses + m.revalidations + m.passThrough,
  ],
  ["edge_cache_hits_total", "fresh hits", (m) => m.hits],
  ["edge_cache_misses_total", "misses (uri, vary, min-serial)", (m) => m.misses],
  ["edge_revalidations_total", "stale entries revalidated with the parent", (m) => m.revalidations],
  ["edge_not_modified_total", "revalidations the parent answered 304", (m) => m.notModified],
  ["edge_coalesced_total", "requests that joined a fill in flight", (m) => m.coalesced],
  ["edge_cache_evictions_total", "entries evicted for space", (m) => m.evictions],
  ["edge_purges_total", "purges run (bus events and POST /purge)", (m) => m.purges],
  [
    "edge_purged_entries_total",
    "entries dropped or marked stale by purges",
    (m) => m.purgedEntries,
  ],
  ["edge_upstream_requests_total", "requests to the parent", (m) => m.parentRequests],
  [
    "edge_upstream_errors_total",
    "parent requests that failed or answered 5xx",
    (m) => m.parentErrors,
  ],
  [
    "edge_floor_refusals_total",
    "fills below the version floor, not stored",
    (m) => m.floorRefusals,
  ],
  ["edge_pass_through_total", "requests forwarded uncached", (m) => m.passThrough],
  ["edge_pushed_total", "entries rewritten in place by push events", (m) => m.pushed],
  [
    "edge_read_repairs_total",
    "newer serials seen that soft-purged older entries",
    (m) => m.readRepairs,
  ],
];

const GAUGES: [string, string, Counter][] = [
  ["edge_cache_entries", "entries held", "entries"],
  ["edge_cache_bytes", "bytes held (bodies and headers)", "bytes"],
];

export interface EdgeInstruments {
  registry: MetricsRegistry;
  fabric: FabricMetrics;
  /** The parent fetch, timed into edge_upstream_latency_seconds. */
  fetch: ParentFetch;
}

/**
 * Declares the edge's families on `registry` and times `fetch`. Call before
 * building the Edge (it needs the timed fetch), then `observeEdge` after.
 */
export function edgeInstruments(
  registry: MetricsRegistry,
  fetch: ParentFetch,
  clock: Clock,
): EdgeInstruments {
  const latency = registry.histogram({
    name: "edge_upstream_latency_seconds",
    help: "parent round trips, to the response headers",
    buckets: LATENCY_BUCKETS,
  });
  return {
    registry,
    fabric: new FabricMetrics(registry, clock),
    fetch: timed(fetch, latency, clock),
  };
}

/** Reads the engine's counters at scrape time; counts every applied change and purge. */
export function observeEdge(edge: Edge, m: EdgeInstruments): void {
  for (const [name, help, read] of COUNTERS) {
    m.registry.sampled({ name, help, type: "counter", read: () => read(edge.metrics()) });
  }
  m.registry.sampled({
    name: "edge_stale_served_total",
    help: "stale answers served, by RFC 5861 reason",
    type: "counter",
    labelNames: ["reason"],
    read: (): readonly Sample[] => {
      const s = edge.metrics();
      return [
        [{ reason: "stale-while-revalidate" }, s.stale - s.staleIfError],
        [{ reason: "stale-if-error" }, s.staleIfError],
      ];
    },
  });
  for (const [name, help, key] of GAUGES) {
    m.registry.sampled({ name, help, type: "gauge", read: () => edge.metrics()[key] });
  }
  m.fabric.observe(edge);
  const purge = edge.purge.bind(edge);
  edge.purge = (p) => {
    m.fabric.purged(p.mode);
    return purge(p);
  };
}
