/**
 * GET /cache (the edge's token): what this edge holds for an owner name
 * (`?name=`, via the surrogate-key index) or one cache key (`?key=`), as an
 * operator wants to see it: the TTL it was given, what remains, whether it
 * is fresh, the serial, and where it came from (the parent, and the parent's
 * own Cache-Status, RFC 9211). Read-only.
 */
import { normaliseName } from "../core/names.ts";
import { type CacheEntry, currentAge, remainingTtl, usability } from "./policy.ts";
import type { EdgeStorage } from "./storage.ts";

export interface EntryView {
  key: string;
  status: number;
  /** RFC 9111 §4.2.1 freshness_lifetime as stored (s). */
  ttl: number;
  /** RFC 9111 §4.2.3 current_age now (s). */
  age: number;
  /** Freshness left (s), negative once stale. */
  remaining: number;
  /** fresh; stale-while-revalidate (served stale while refreshed); stale (revalidated before use; a soft purge makes this). */
  state: "fresh" | "stale-while-revalidate" | "stale";
  invalidated: boolean;
  serial?: number;
  etag?: string;
  /** When the response arrived (ISO 8601). */
  storedAt: string;
  /** The parent it was fetched from, and the Cache-Status the parent sent. */
  from: { parent: string; cacheStatus?: string };
  surrogateKeys: string[];
}

export type InspectQuery = { name: string } | { key: string };

/** Parses `?name=` or `?key=` (exactly one); a reason on bad input. */
export function inspectQuery(
  params: URLSearchParams,
): InspectQuery | { field: string; reason: string } {
  const name = params.get("name");
  const key = params.get("key");
  if ((name === null) === (key === null)) {
    return { field: "query", reason: "give exactly one of ?name=<owner name> or ?key=<cache key>" };
  }
  if (key !== null) return { key };
  try {
    return { name: normaliseName(name!) };
  } catch (err) {
    return { field: "name", reason: (err as Error).message };
  }
}

export function inspectEdge(
  storage: EdgeStorage,
  parent: string,
  now: number,
  q: InspectQuery,
): EntryView[] {
  const keys = "key" in q ? [q.key] : storage.keysFor(q.name);
  return keys.flatMap((k) => {
    const e = storage.get(k);
    return e ? [view(e, parent, now)] : [];
  });
}

function view(e: CacheEntry, parent: string, now: number): EntryView {
  const use = usability(e, now, {});
  const cacheStatus = e.headers.find(([k]) => k === "cache-status")?.[1];
  return {
    key: e.key,
    status: e.status,
    ttl: e.freshnessLifetime,
    age: Math.floor(currentAge(e, now)),
    remaining: remainingTtl(e, now),
    state: use === "fresh" || use === "stale-while-revalidate" ? use : "stale",
    invalidated: e.invalidated,
    ...(e.serial !== undefined && { serial: e.serial }),
    ...(e.etag !== undefined && { etag: e.etag }),
    storedAt: new Date(e.responseTime).toISOString(),
    from: { parent, ...(cacheStatus !== undefined && { cacheStatus }) },
    surrogateKeys: e.surrogateKeys,
  };
}
