/**
 * Admin GET /cache?name=N (the admin token): what the resolver holds whose
 * answer depends on owner name N, as an operator wants to see it: the TTL it
 * was stored with, what remains, fresh or stale (RFC 8767: served stale
 * within max-stale), the serial, and the upstream it came from. Read-only:
 * it does not touch the LRU's recency.
 */
import { RR_TYPE_CODES } from "../core/records.ts";
import type { ResolverCache } from "./cache.ts";
import type { CacheEntry } from "./policy.ts";

export interface ResolverEntryView {
  name: string;
  type: string;
  rcode: number;
  /** NXDOMAIN or NODATA, cached from the SOA minimum (RFC 2308 §5). */
  negative: boolean;
  /** Seconds it was stored fresh for. */
  ttl: number;
  /** Freshness left (s), negative once stale. */
  remaining: number;
  /** fresh; stale (RFC 8767: tried upstream first, then served stale); expired (past max-stale, dropped on next use). */
  state: "fresh" | "stale" | "expired";
  serial?: number;
  storedAt: string;
  /** The upstream it was fetched from. */
  from: string;
}

const TYPE_NAMES = new Map(Object.entries(RR_TYPE_CODES).map(([name, code]) => [code, name]));

export function inspectResolver(
  cache: ResolverCache,
  name: string,
  upstream: string,
  maxStaleMs: number,
  now: number,
): ResolverEntryView[] {
  return cache.entriesFor(name).map((e) => view(e, upstream, maxStaleMs, now));
}

function view(e: CacheEntry, upstream: string, maxStaleMs: number, now: number): ResolverEntryView {
  const state = now < e.expiresAt ? "fresh" : now < e.expiresAt + maxStaleMs ? "stale" : "expired";
  return {
    name: e.name,
    type: TYPE_NAMES.get(e.qtype) ?? `TYPE${e.qtype}`,
    rcode: e.answer.rcode,
    negative: e.answer.negative,
    ttl: e.answer.ttl,
    remaining: Math.floor((e.expiresAt - now) / 1000),
    state,
    ...(e.serial !== undefined && { serial: e.serial }),
    storedAt: new Date(e.storedAt).toISOString(),
    from: upstream,
  };
}
