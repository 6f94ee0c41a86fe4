/**
 * The origin's counters, rendered by prom-client (GET /metrics, no token).
 * Counters are plain numbers bumped by thin hooks: the store's onCommit, a
 * middleware around the write API and the reads, and the authoritative DNS
 * server's onAnswer; prom-client reads them at scrape time, as it reads the
 * gauges (zones, RRsets, journal).
 */
import type { MiddlewareHandler } from "hono";
import type { Clock } from "../core/clock.ts";
import type { QueryInfo } from "../core/dns-transport.ts";
import {
  APPLY_BUCKETS,
  byLabel,
  type MetricsRegistry,
  type Sample,
  type SampledSpec,
} from "../core/metrics.ts";
import type { AnswerCacheStats } from "./answer-cache.ts";
import type { Receipts } from "./receipts.ts";
import type { Resolution } from "./resolve.ts";
import type { Secondaries } from "./secondaries.ts";
import type { CommittedChange, Store } from "./store.ts";

/** The journal's counters since start (DataDir.stats). */
export interface JournalStats {
  records: number;
  batches: number;
  snapshots: number;
}

/** RFC 1035 §4.1.1 and RFC 6891 §9 names of the RCODEs the origin sends. */
const RCODE_NAMES: Readonly<Record<number, string>> = {
  0: "NOERROR",
  1: "FORMERR",
  2: "SERVFAIL",
  3: "NXDOMAIN",
  4: "NOTIMP",
  5: "REFUSED",
  9: "NOTAUTH",
};

type ReadApi = "doh" | "json";

export class OriginMetrics {
  private readonly commits = new Map<CommittedChange["op"], number>();
  private readonly writeErrors = new Map<string, number>([
    ["4xx", 0],
    ["5xx", 0],
  ]);
  /**
   * Answers by transport, then RCODE name. Two maps keyed by constant strings,
   * not one keyed by a string built per query: this runs for every answer.
   */
  private readonly dns: Record<QueryInfo["transport"], Map<string, number>> = {
    udp: new Map(),
    tcp: new Map(),
  };
  /** "api\tcode" -> count. */
  private readonly reads = new Map<string, number>();
  /** Counters of the primary side (transfers, NOTIFY, TSIG), by name: help and labelled values. */
  private readonly named = new Map<string, { help: string; values: Map<string, number> }>();

  /** Where the named counters are declared once register() has run. */
  private registry: MetricsRegistry | undefined;

  /**
   * Bumps counter `name` for one label set (`k="v",...`); the first call fixes
   * its help text and label names, and declares the family.
   */
  count(name: string, help: string, labels: string): void {
    let c = this.named.get(name);
    if (!c) {
      c = { help, values: new Map<string, number>() };
      this.named.set(name, c);
      if (this.registry) declareNamed(this.registry, name, c, labels);
    }
    bump(c.values, labels);
  }

  /** store.onCommit listener. */
  readonly onCommit = (change: CommittedChange): void => {
    bump(this.commits, change.op);
  };

  /** startAuthoritativeDns's onAnswer hook. */
  readonly onDnsAnswer = (
    info: QueryInfo,
    resolution: Resolution | undefined,
    response: Buffer,
  ): void => {
    const byRcode = this.dns[info.transport];
    const rcode = rcodeOf(resolution, response);
    byRcode.set(rcode, (byRcode.get(rcode) ?? 0) + 1);
  };

  /** Counts the answers to zone writes (PUT, PATCH, DELETE): errors by status class. */
  writeCounter(): MiddlewareHandler {
    return async (c, next) => {
      await next();
      if (c.res.status >= 400) bump(this.writeErrors, `${Math.floor(c.res.status / 100)}xx`);
    };
  }

  /** Counts the answers of one read API by status code (304s are revalidations). */
  readCounter(api: ReadApi): MiddlewareHandler {
    return async (c, next) => {
      await next();
      bump(this.reads, `${api}\t${c.res.status}`);
    };
  }

  /**
   * Declares the origin's families on `registry`: counters read from the
   * maps above at scrape time, gauges from the store and the journal.
   */
  register(registry: MetricsRegistry, store: Store, journal: () => JournalStats): void {
    this.registry = registry;
    for (const [name, c] of this.named)
      declareNamed(registry, name, c, [...c.values.keys()][0] ?? "");
    const counter = (
      name: string,
      help: string,
      read: SampledSpec["read"],
      labelNames?: string[],
    ) => registry.sampled({ name, help, type: "counter", read, ...(labelNames && { labelNames }) });
    const gauge = (name: string, help: string, read: () => number) =>
      registry.sampled({ name, help, type: "gauge", read });
    counter(
      "origin_writes_committed_total",
      "changes made durable, by operation",
      () => byLabel(this.commits, "op"),
      ["op"],
    );
    counter(
      "origin_write_errors_total",
      "zone writes answered 4xx or 5xx",
      () => byLabel(this.writeErrors, "class"),
      ["class"],
    );
    counter("origin_journal_records_total", "journal records fsynced", () => journal().records);
    counter(
      "origin_journal_fsyncs_total",
      "journal fsyncs (group-commit batches)",
      () => journal().batches,
    );
    counter("origin_snapshots_total", "snapshots written", () => journal().snapshots);
    counter(
      "origin_dns_queries_total",
      "DNS queries by transport and rcode",
      () =>
        Object.entries(this.dns).flatMap(([transport, byRcode]) =>
          [...byRcode].map(([rcode, n]): Sample => [{ transport, rcode }, n]),
        ),
      ["transport", "rcode"],
    );
    counter(
      "origin_http_reads_total",
      "DoH and DNS JSON reads by status code",
      () => labelled(this.reads, ["api", "code"]),
      ["api", "code"],
    );
    gauge("origin_zones", "zones served", () => store.zones().length);
    gauge("origin_rrsets", "RRsets in every zone", () =>
      store.zones().reduce((n, s) => n + s.zone.size, 0),
    );
  }
}

/** `a="x",b="y"` as label names and values. */
function parseLabels(labels: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of labels.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) out[m[1]!] = m[2]!;
  return out;
}

/** A named counter of the primary side (transfers, NOTIFY, TSIG) as a family read at scrape time. */
function declareNamed(
  registry: MetricsRegistry,
  name: string,
  c: { help: string; values: Map<string, number> },
  firstLabels: string,
): void {
  registry.sampled({
    name,
    help: c.help,
    type: "counter",
    labelNames: Object.keys(parseLabels(firstLabels)),
    read: () => [...c.values].map(([k, n]): Sample => [parseLabels(k), n]),
  });
}

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

/** A two-label table ("a\tb" -> count) as label sets. */
function labelled(map: Map<string, number>, [first, second]: [string, string]): Sample[] {
  return [...map].map(([key, n]) => {
    const [a, b] = key.split("\t") as [string, string];
    return [{ [first]: a, [second]: b }, n];
  });
}

/**
 * The RCODE sent, read from the response's header (the bytes were just
 * written, so this reads no other object on a cache hit). "none" when nothing
 * was sent (a response or a runt). RFC 6891 §6.1.3: BADVERS (16) is the one
 * extended RCODE the origin sends, and it leaves 0 in the header's four bits:
 * a 0 there is NOERROR for an answer (one with a resolution), BADVERS for an
 * error reply.
 */
function rcodeOf(resolution: Resolution | undefined, response: Buffer): string {
  if (response.length < 4) return "none";
  const low = response[3]! & 0x0f;
  if (low === 0) return resolution ? "NOERROR" : "BADVERS";
  return RCODE_NAMES[low] ?? String(low);
}

/**
 * Receipts as the origin sees them: acks taken, and the time from a
 * change's commit to each node's first receipt of it (the propagation time,
 * per node). Wraps the registry's public methods on this instance.
 */
export function observeReceipts(registry: MetricsRegistry, receipts: Receipts, clock: Clock): void {
  /** Change (zone@serial, or a purge's id) -> commit time and the nodes already timed. */
  const committed = new Map<string, { ts: number; seen: Set<string> }>();
  let acks = 0;
  const toReceipt = registry.histogram({
    name: "propagate_receipt_seconds",
    help: "time from a change's commit to a node's receipt of it, at the origin",
    buckets: APPLY_BUCKETS,
  });
  registry.sampled({
    name: "propagate_receipts_total",
    help: "acks the origin took from cache nodes",
    type: "counter",
    read: () => acks,
  });
  registry.sampled({
    name: "propagate_nodes",
    help: "cache nodes registered",
    type: "gauge",
    read: () => receipts.nodes().length,
  });
  const keyOf = (zone: string, serial: number) => `${zone}\t${serial}`;
  const track = receipts.track.bind(receipts);
  receipts.track = (change) => {
    const key = change.explicit ? change.changeId : keyOf(change.zone, change.serial);
    committed.set(key, { ts: change.ts, seen: new Set() });
    // Bounded like the registry: the oldest commit times go first.
    if (committed.size > 10_000) committed.delete(committed.keys().next().value!);
    track(change);
  };
  const received = (nodeId: string, key: string, at: number) => {
    acks++;
    const c = committed.get(key);
    if (!c || c.seen.has(nodeId)) return;
    c.seen.add(nodeId);
    toReceipt.observe(Math.max(0, at - c.ts) / 1000);
  };
  const ack = receipts.ack.bind(receipts);
  receipts.ack = (nodeId, zone, serial, at = clock.now()) => {
    const ok = ack(nodeId, zone, serial, at);
    if (ok) received(nodeId, keyOf(zone, serial), at);
    return ok;
  };
  const ackChange = receipts.ackChange.bind(receipts);
  receipts.ackChange = (nodeId, changeId, at = clock.now()) => {
    const ok = ackChange(nodeId, changeId, at);
    if (ok) received(nodeId, changeId, at);
    return ok;
  };
}

/**
 * Real secondaries (issue 13): how far each one's served serial is behind
 * the zone's, read at scrape time, and how long each took from a change's
 * NOTIFY to serving it (the SOA check that found it in sync).
 */
export function observeSecondaries(registry: MetricsRegistry, secondaries: Secondaries): void {
  registry.sampled({
    name: "origin_secondary_serial_lag",
    help: "zone serial minus the serial the secondary served at its last SOA check (RFC 1982 distance)",
    type: "gauge",
    labelNames: ["secondary", "zone"],
    read: () =>
      secondaries
        .serialLags()
        .map(({ secondary, zone, lag }): Sample => [{ secondary, zone }, lag]),
  });
  const insync = registry.histogram({
    name: "origin_secondary_insync_seconds",
    help: "time from a change's first NOTIFY to a secondary serving its serial",
    buckets: APPLY_BUCKETS,
  });
  secondaries.onInsync = (seconds) => insync.observe(seconds);
}

/**
 * The authoritative DNS answer cache (answer-cache.ts), read at scrape time:
 * lookups that hit and missed, and what it holds. A write that leaves an
 * answer untouched leaves it cached (per-RRset invalidation), so hits keep
 * rising across unrelated writes.
 */
export function observeAnswerCache(registry: MetricsRegistry, stats: () => AnswerCacheStats): void {
  const read = (key: keyof AnswerCacheStats) => () => stats()[key];
  registry.sampled({
    name: "origin_answer_cache_hits_total",
    help: "DNS queries answered from the answer cache",
    type: "counter",
    read: read("hits"),
  });
  registry.sampled({
    name: "origin_answer_cache_misses_total",
    help: "cacheable DNS queries the answer cache did not hold (then built and stored)",
    type: "counter",
    read: read("misses"),
  });
  registry.sampled({
    name: "origin_answer_cache_entries",
    help: "answers held by the answer cache",
    type: "gauge",
    read: read("entries"),
  });
  registry.sampled({
    name: "origin_answer_cache_bytes",
    help: "bytes the answer cache counts against its bound",
    type: "gauge",
    read: read("bytes"),
  });
}
