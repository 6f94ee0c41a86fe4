/**
 * The resolver's cache rules, pure: no state, no I/O, time passed in. When an
 * entry is fresh, due for prefetch, servable stale (RFC 8767), what an
 * upstream's answer may be used for, and what a soft purge does to an entry.
 * The engine (cache.ts) and the bus side (purge.ts) apply them.
 */
import { parentName } from "../core/names.ts";
import type { StoredAnswer, TtlPolicy } from "./answer.ts";

export interface CacheConfig extends TtlPolicy {
  /** Bound on the cache's size in bytes (stored answers plus a per-entry overhead). */
  maxBytes: number;
  /** RFC 8767 §4 client response timer: how long an expired answer waits for the upstream. */
  clientTimeoutMs: number;
  /** RFC 8767 §4: TTL of a stale answer. */
  staleTtl: number;
  /** RFC 8767 §4 failure recheck timer: after a failed refresh, serve stale this long without asking. */
  failureRecheckMs: number;
  /** RFC 8767 §4 maximum stale timer: an expired answer is not served after this. */
  maxStaleMs: number;
  /** A hit with less than this fraction of its TTL left refreshes in the background. */
  prefetchFraction: number;
  /** The zones served: a version floor applies to the names of its own zone only. */
  zones?: readonly string[];
}

export const DEFAULT_CACHE: CacheConfig = {
  maxBytes: 64 * 1024 * 1024,
  minTtl: 0,
  maxTtl: 86_400,
  maxNegativeTtl: 3_600,
  clientTimeoutMs: 1_800,
  staleTtl: 30,
  failureRecheckMs: 30_000,
  maxStaleMs: 86_400_000,
  prefetchFraction: 0.1,
};

/** One cached answer: the stored item. */
export interface CacheEntry {
  readonly key: string;
  /** The question name, lower-case presentation form. */
  readonly name: string;
  readonly wireName: Buffer;
  readonly qtype: number;
  readonly answer: StoredAnswer;
  readonly storedAt: number;
  /** When it stops being fresh; a soft purge moves this to the purge time. */
  expiresAt: number;
  /** Background refresh starts at or after this. */
  readonly prefetchAt: number;
  readonly serial: number | undefined;
  /** Time of the last failed refresh, for the failure recheck timer. */
  failedAt: number | undefined;
}

/** An entry for `answer` stored at `now`: fresh for its TTL, prefetched in the last `prefetchFraction` of it. */
export function newEntry(
  question: Pick<CacheEntry, "key" | "name" | "wireName" | "qtype">,
  answer: StoredAnswer,
  serial: number | undefined,
  now: number,
  config: Pick<CacheConfig, "prefetchFraction">,
): CacheEntry {
  const ttlMs = answer.ttl * 1000;
  return {
    key: question.key,
    name: question.name,
    wireName: question.wireName,
    qtype: question.qtype,
    answer,
    storedAt: now,
    expiresAt: now + ttlMs,
    prefetchAt: now + ttlMs * (1 - config.prefetchFraction),
    serial,
    failedAt: undefined,
  };
}

/** Whole seconds since the entry was stored: what the hot path subtracts from each TTL. */
export function elapsedSeconds(e: CacheEntry, now: number): number {
  return Math.floor((now - e.storedAt) / 1000);
}

/** RFC 8767 §4 maximum stale timer: an expired entry may still be served stale until then. */
export function withinMaxStale(e: CacheEntry, now: number, config: CacheConfig): boolean {
  return now < e.expiresAt + config.maxStaleMs;
}

/** RFC 8767 §4 failure recheck timer: a refresh failed so recently that the upstream is not asked again. */
export function recheckPending(e: CacheEntry, now: number, config: CacheConfig): boolean {
  return e.failedAt !== undefined && now - e.failedAt < config.failureRecheckMs;
}

/**
 * What an upstream answer that arrived `staleness` seconds past its TTL (its
 * HTTP Age beyond it; undefined when fresh) is good for:
 * - `fresh`: stored and answered;
 * - `revalidating`: within RFC 5861 §3 `stale-while-revalidate` (`swr`): a
 *   cache on the path refreshes in the background, so it is answered as it
 *   is and not stored, and the next query asks again;
 * - `expired`: past that, on a path whose Cache-Status shows that no cache
 *   served it for an error (`servedOnError` false): every cache refreshed,
 *   and the Age each rounds up (RFC 9111 §5.1, edge/policy.ts `ageHeader`)
 *   put a copy asked at the end of its parent's lifetime past its TTL on
 *   the way. Answered as it is (its TTLs less the Age, RFC 8484 §5.1: 0)
 *   and not stored; the next query asks again;
 * - `failed`: past `swr` otherwise: only RFC 5861 §4 `stale-if-error` serves
 *   it, so the path could not refresh: a failed refresh (RFC 8767 §4-5);
 * - `too-stale`: past the maximum stale timer, not even served stale.
 */
export type UpstreamFreshness = "fresh" | "revalidating" | "expired" | "failed" | "too-stale";

export function upstreamFreshness(
  staleness: number | undefined,
  swr: number,
  config: CacheConfig,
  servedOnError?: boolean,
): UpstreamFreshness {
  if (staleness === undefined) return "fresh";
  if (staleness * 1000 >= config.maxStaleMs) return "too-stale";
  if (staleness <= swr) return "revalidating";
  return servedOnError === false ? "expired" : "failed";
}

/**
 * Whether an RFC 9211 Cache-Status field says a cache on the path served its
 * stored copy because it could not refresh it: a member whose `detail` is
 * stale-if-error (RFC 5861 §4, as edge/key.ts `formatCacheStatus` writes
 * it), or that forwarded the request (`fwd`) and got a 5xx (`fwd-status`).
 * Undefined without the field: nothing is known of the path. Members and
 * parameters are split outside sf-strings (RFC 8941 §3.1, §3.3.3), so a
 * quoted key holding either is no member's parameter.
 */
export function servedOnError(field: string | null | undefined): boolean | undefined {
  if (field === null || field === undefined || field.trim() === "") return undefined;
  let item = true; // the segment being read is the member's item (the cache's name), not a parameter
  let fwd = false;
  let fwdStatus = Number.NaN;
  let segment = "";
  let quoted = false;
  /** Ends the segment read; true when it says stale-if-error. */
  const endSegment = (): boolean => {
    const text = segment.trim();
    segment = "";
    if (item) {
      item = false;
      return false;
    }
    const eq = text.indexOf("=");
    const name = eq < 0 ? text : text.slice(0, eq);
    const value = eq < 0 ? "" : text.slice(eq + 1).replace(/^"(.*)"$/, "$1");
    if (name === "fwd") fwd = true;
    else if (name === "fwd-status") fwdStatus = Number(value);
    return name === "detail" && value === "stale-if-error";
  };
  /** Ends the member read; true when it forwarded and got a 5xx. */
  const endMember = (): boolean => {
    const failed = fwd && fwdStatus >= 500;
    item = true;
    fwd = false;
    fwdStatus = Number.NaN;
    return failed;
  };
  for (let i = 0; i < field.length; i++) {
    const ch = field[i]!;
    if (quoted) {
      segment += ch;
      if (ch === "\\") segment += field[++i] ?? "";
      else if (ch === '"') quoted = false;
    } else if (ch === ";" || ch === ",") {
      if (endSegment() || (ch === "," && endMember())) return true;
    } else {
      if (ch === '"') quoted = true;
      segment += ch;
    }
  }
  return endSegment() || endMember();
}

/** A soft purge: the entry expires now (if not already), and the failure recheck timer is reset, so the next query refreshes. */
export function expire(e: CacheEntry, now: number): void {
  e.expiresAt = Math.min(e.expiresAt, now);
  e.failedAt = undefined;
}

/** The deepest of `zones` containing `name` (names are normalised, no trailing dot). */
export function zoneOf(name: string, zones: ReadonlySet<string>): string | undefined {
  for (let n = name; ; n = parentName(n)) {
    if (zones.has(n)) return n;
    if (n === "") return undefined;
  }
}
