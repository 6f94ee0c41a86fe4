/**
 * The resolver's Prometheus families: read at scrape time from the query
 * handler's and the cache's plain counters, plus the upstream latency
 * histogram and the fabric's apply metrics. GET /metrics on the admin
 * endpoint renders them without a token.
 */
import type { Clock } from "../core/clock.ts";
import {
  FabricMetrics,
  LATENCY_BUCKETS,
  type MetricsRegistry,
  type Sample,
  timed,
} from "../core/metrics.ts";
import type { ResolverCache, Upstream } from "./cache.ts";
import type { HandlerMetrics } from "./handler.ts";

type CacheCounter = keyof ResolverCache["metrics"];

const CACHE_COUNTERS: [string, string, CacheCounter][] = [
  ["resolver_cache_hits_total", "answers from a fresh entry", "hits"],
  ["resolver_cache_misses_total", "lookups with no servable entry", "misses"],
  [
    "resolver_stale_answers_total",
    "stale answers served (RFC 8767 serve-stale: client timer or upstream failure)",
    "staleServed",
  ],
  ["resolver_prefetches_total", "refreshes started before expiry", "prefetches"],
  ["resolver_coalesced_total", "lookups that joined an upstream query in flight", "coalesced"],
  ["resolver_upstream_queries_total", "queries sent upstream", "upstreamQueries"],
  ["resolver_upstream_failures_total", "upstream queries that failed", "upstreamFailures"],
  [
    "resolver_upstream_stale_total",
    "upstream answers past their TTL (an edge's stale-if-error copy)",
    "upstreamStale",
  ],
  ["resolver_cache_evictions_total", "entries evicted for space", "evictions"],
  ["resolver_purged_total", "entries dropped or marked stale by purges", "purged"],
  ["resolver_floor_refusals_total", "upstream answers below the version floor", "floorRefusals"],
  ["resolver_pushed_total", "entries rewritten in place by push events", "pushed"],
];

/** Times the upstream into resolver_upstream_latency_seconds; declare before building the cache. */
export function timedUpstream(
  registry: MetricsRegistry,
  upstream: Upstream,
  clock: Clock,
): Upstream {
  const latency = registry.histogram({
    name: "resolver_upstream_latency_seconds",
    help: "upstream round trips (DoH to the parent edge, or DNS to the origin)",
    buckets: LATENCY_BUCKETS,
  });
  return timed(upstream, latency, clock);
}

/**
 * Declares the cache and handler families; counts and times every applied
 * change. The admin endpoint counts its own purges (`fabric.purged`): the
 * cache's applyPurge purges through the same method.
 */
export function observeResolver(
  registry: MetricsRegistry,
  cache: ResolverCache,
  handler: HandlerMetrics,
  clock: Clock,
): FabricMetrics {
  registry.sampled({
    name: "resolver_queries_total",
    help: "DNS queries received",
    type: "counter",
    read: () => handler.queries,
  });
  registry.sampled({
    name: "resolver_dropped_total",
    help: "queries dropped unanswered (not a DNS query)",
    type: "counter",
    read: () => handler.dropped,
  });
  registry.sampled({
    name: "resolver_responses_total",
    help: "answers sent, by RCODE",
    type: "counter",
    labelNames: ["rcode"],
    read: () =>
      handler.rcodes.flatMap((n, rc): Sample[] => (n ? [[{ rcode: String(rc) }, n]] : [])),
  });
  for (const [name, help, key] of CACHE_COUNTERS) {
    registry.sampled({ name, help, type: "counter", read: () => cache.metrics[key] });
  }
  registry.sampled({
    name: "resolver_cache_entries",
    help: "entries held",
    type: "gauge",
    read: () => cache.entries,
  });
  registry.sampled({
    name: "resolver_cache_bytes",
    help: "bytes held (answers and overhead)",
    type: "gauge",
    read: () => cache.bytes,
  });
  const fabric = new FabricMetrics(registry, clock);
  fabric.observe(cache);
  return fabric;
}
