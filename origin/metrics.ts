/**
 * The origin's counters and their Prometheus text exposition (GET /metrics).
 * Counters are plain numbers bumped by thin hooks: the store's onCommit, a
 * middleware around the write API and the reads, and the authoritative DNS
 * server's onAnswer. Gauges (zones, RRsets, journal) are read at scrape time.
 */
import type { MiddlewareHandler } from "hono";
import type { QueryInfo } from "../core/dns-transport.ts";
import type { Resolution } from "./resolve.ts";
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
  private readonly dns = new Map<string, number>();
  private readonly reads = new Map<string, number>();
  /** Counters of the primary side (transfers, NOTIFY, TSIG), by name: help and labelled values. */
  private readonly named = new Map<string, { help: string; values: Map<string, number> }>();

  /** Bumps counter `name` for one label set (`k="v",...`); the first call fixes its help text. */
  count(name: string, help: string, labels: string): void {
    const c = this.named.get(name) ?? { help, values: new Map<string, number>() };
    this.named.set(name, c);
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
    bump(this.dns, `transport="${info.transport}",rcode="${rcodeOf(resolution, response)}"`);
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
      bump(this.reads, `api="${api}",code="${c.res.status}"`);
    };
  }

  /** Prometheus text exposition format 0.0.4. */
  text(store: Store, journal: JournalStats): string {
    const zones = store.zones();
    const rrsets = zones.reduce((n, s) => n + s.zone.size, 0);
    const lines = [
      ...family("origin_writes_committed_total", "counter", "changes made durable, by operation"),
      ...[...this.commits].map(([op, n]) => `origin_writes_committed_total{op="${op}"} ${n}`),
      ...family("origin_write_errors_total", "counter", "zone writes answered 4xx or 5xx"),
      ...[...this.writeErrors].map(([k, n]) => `origin_write_errors_total{class="${k}"} ${n}`),
      ...family("origin_journal_records_total", "counter", "journal records fsynced"),
      `origin_journal_records_total ${journal.records}`,
      ...family("origin_journal_fsyncs_total", "counter", "journal fsyncs (group-commit batches)"),
      `origin_journal_fsyncs_total ${journal.batches}`,
      ...family("origin_snapshots_total", "counter", "snapshots written"),
      `origin_snapshots_total ${journal.snapshots}`,
      ...family("origin_dns_queries_total", "counter", "DNS queries by transport and rcode"),
      ...[...this.dns].map(([k, n]) => `origin_dns_queries_total{${k}} ${n}`),
      ...family("origin_http_reads_total", "counter", "DoH and DNS JSON reads by status code"),
      ...[...this.reads].map(([k, n]) => `origin_http_reads_total{${k}} ${n}`),
      ...[...this.named].flatMap(([name, c]) => [
        ...family(name, "counter", c.help),
        ...[...c.values].map(([k, n]) => `${name}{${k}} ${n}`),
      ]),
      ...family("origin_zones", "gauge", "zones served"),
      `origin_zones ${zones.length}`,
      ...family("origin_rrsets", "gauge", "RRsets in every zone"),
      `origin_rrsets ${rrsets}`,
    ];
    return `${lines.join("\n")}\n`;
  }
}

function bump<K>(map: Map<K, number>, key: K): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function family(name: string, type: "counter" | "gauge", help: string): string[] {
  return [`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`];
}

/**
 * The RCODE sent: the resolution's, or for error replies (FORMERR, NOTIMP,
 * REFUSED for a class, BADVERS) the header's. "none" when nothing was sent
 * (a response or a runt). RFC 6891 §6.1.3: BADVERS (16) is the one extended
 * RCODE the origin sends, and it leaves 0 in the header's four bits.
 */
function rcodeOf(resolution: Resolution | undefined, response: Buffer): string {
  if (resolution) return resolution.rcode;
  if (response.length < 4) return "none";
  const low = response.readUInt8(3) & 0x0f;
  if (low === 0) return "BADVERS";
  return RCODE_NAMES[low] ?? String(low);
}
