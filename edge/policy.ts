/**
 * The edge's cache policy, pure: what may be stored, how old a stored
 * response is, whether it is fresh, and what a stale one may still be used
 * for. Times are milliseconds from the injected Clock; ages and lifetimes
 * are seconds, as RFC 9111 writes them.
 */
import { type CacheControl, H, parseCacheControl, parseSerialHeader } from "../core/http.ts";
import { serialLt } from "../core/serial.ts";
import { targetedCacheControl } from "./fields.ts";
import { parseHttpDate } from "./http-date.ts";

/** A response as the cache holds it (RFC 9111 §3), with what §4.2.3 needs to age it. */
export interface CacheEntry {
  key: string;
  status: number;
  /** Stored header fields, lower-case names, without Age and hop-by-hop fields. */
  headers: [string, string][];
  body: Uint8Array<ArrayBuffer>;
  /** RFC 9111 §4.2.3 request_time / response_time (ms). */
  requestTime: number;
  responseTime: number;
  /** RFC 9111 §4.2.3 corrected_initial_age (s), fixed when the response arrives. */
  correctedInitialAge: number;
  /** RFC 9111 §4.2.1 freshness_lifetime (s). */
  freshnessLifetime: number;
  cc: CacheControl;
  etag?: string;
  /** X-Serial: the zone serial that produced the response. */
  serial?: number;
  surrogateKeys: string[];
  /** Request header values the response varies on (RFC 9111 §4.1). */
  vary: [string, string][];
  /** Set by a soft purge: treat as stale and revalidate before reuse. */
  invalidated: boolean;
}

/** RFC 9110 §15.1: status codes "heuristically cacheable". */
const HEURISTIC_STATUS = new Set([200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]);

/**
 * RFC 9111 §3: a final status the cache understands. Every final status
 * may be stored with explicit freshness; 206 and 304 need handling this
 * cache does not have (combining partial content, §3.4), so never.
 */
function storableStatus(status: number): boolean {
  return status >= 200 && status !== 206 && status !== 304;
}

/** Final statuses RFC 9110 §15 defines, which must-understand lets this cache store. */
const UNDERSTOOD_STATUS = new Set([
  200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 307, 308, 400, 401, 402, 403, 404, 405, 406,
  407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426, 500, 501, 502, 503, 504,
  505,
]);

function mustUnderstand(response: Pick<CacheEntry, "headers">): boolean {
  const field =
    header(response, CDN_CACHE_CONTROL) !== undefined &&
    targetedCacheControl(header(response, CDN_CACHE_CONTROL)) !== undefined
      ? header(response, CDN_CACHE_CONTROL)
      : header(response, "cache-control");
  return (field ?? "").split(",").some((d) => d.trim().toLowerCase() === "must-understand");
}

/** RFC 9111 §4.2.2: the heuristic is a fraction of the time since Last-Modified, at most a day. */
const HEURISTIC_FRACTION = 0.1;
const HEURISTIC_MAX_S = 86_400;

export function header(entry: Pick<CacheEntry, "headers">, name: string): string | undefined {
  for (const [k, v] of entry.headers) if (k === name) return v;
  return undefined;
}

/**
 * RFC 9111 §5.1: Age is delta-seconds. A list uses its first member; an
 * invalid value is ignored (undefined), which §4.2.3 then treats as 0.
 */
export function parseAge(value: string | null | undefined): number | undefined {
  const first = value?.split(",")[0]?.trim();
  if (!first || !/^\d+$/.test(first)) return undefined;
  return Math.min(Number(first), 2 ** 31);
}

export interface AgeInputs {
  requestTime: number;
  responseTime: number;
  /** The Date header (ms); absent means "now" at receipt (RFC 9110 §6.6.1). */
  dateValue?: number;
  /** The Age header (s), already parsed. */
  ageValue?: number;
}

/**
 * RFC 9111 §4.2.3, in seconds:
 *   apparent_age = max(0, response_time - date_value)
 *   response_delay = response_time - request_time
 *   corrected_age_value = age_value + response_delay
 *   corrected_initial_age = max(apparent_age, corrected_age_value)
 * Clock skew can only make the result larger (a parent clock behind ours
 * inflates apparent_age), never smaller than the upstream's own Age plus the
 * time on the wire, which is what keeps a chain of caches from extending a TTL.
 */
export function correctedInitialAge(a: AgeInputs): number {
  const dateValue = a.dateValue ?? a.responseTime;
  const apparentAge = Math.max(0, a.responseTime - dateValue) / 1000;
  const responseDelay = Math.max(0, a.responseTime - a.requestTime) / 1000;
  const correctedAgeValue = (a.ageValue ?? 0) + responseDelay;
  return Math.max(apparentAge, correctedAgeValue);
}

/** RFC 9111 §4.2.3: current_age = corrected_initial_age + resident_time. */
export function currentAge(
  entry: Pick<CacheEntry, "correctedInitialAge" | "responseTime">,
  now: number,
): number {
  const residentTime = Math.max(0, now - entry.responseTime) / 1000;
  return entry.correctedInitialAge + residentTime;
}

/**
 * The Age a cache sends (RFC 9111 §5.1): rounded up, so a downstream cache
 * never believes the response younger than it is; rounding down would let
 * every tier add up to a second of freshness.
 */
export function ageHeader(age: number): string {
  return String(Math.ceil(age - 1e-9));
}

/**
 * RFC 9111 §4.2.1 for a shared cache: s-maxage, then max-age, then
 * Expires - Date; when CDN-Cache-Control is present and valid (RFC 9213
 * §2.2) only its directives count and Expires is ignored. An invalid
 * Expires (e.g. "0", RFC 9111 §5.3) means already expired. Without any of
 * them, §4.2.2 heuristic freshness for a heuristically cacheable status or
 * a `public` response: 10 % of the time since Last-Modified, at most a day
 * (DNS answers always state their TTL, so this never applies to them).
 */
export function freshnessLifetime(
  cc: CacheControl,
  response: Pick<CacheEntry, "headers"> & { status?: number },
): number {
  if (cc.sMaxAge !== undefined) return cc.sMaxAge;
  if (cc.maxAge !== undefined) return cc.maxAge;
  const targeted = targetedCacheControl(header(response, CDN_CACHE_CONTROL)) !== undefined;
  const expiresRaw = targeted ? undefined : header(response, "expires");
  const date = parseHttpDate(header(response, "date"));
  if (expiresRaw !== undefined) {
    const expires = parseHttpDate(expiresRaw);
    if (expires === undefined || date === undefined) return 0;
    return Math.max(0, (expires - date) / 1000);
  }
  return heuristicLifetime(cc, response, date);
}

function heuristicLifetime(
  cc: CacheControl,
  response: Pick<CacheEntry, "headers"> & { status?: number },
  date: number | undefined,
): number {
  if (response.status === undefined) return 0;
  if (!HEURISTIC_STATUS.has(response.status) && !cc.public) return 0;
  const lastModified = parseHttpDate(header(response, "last-modified"));
  if (lastModified === undefined || date === undefined || lastModified > date) return 0;
  return Math.min(HEURISTIC_MAX_S, Math.floor(((date - lastModified) / 1000) * HEURISTIC_FRACTION));
}

/** RFC 9213: the field a CDN obeys before Cache-Control. */
export const CDN_CACHE_CONTROL = "cdn-cache-control";

/**
 * RFC 9111 §3.5: a response to a request with Authorization may be stored
 * and reused by a shared cache only when it says so (public,
 * must-revalidate or s-maxage).
 */
export function sharesAuthorized(cc: CacheControl): boolean {
  return cc.public === true || cc.mustRevalidate === true || cc.sMaxAge !== undefined;
}

/**
 * Why a response may not be stored by a shared cache (RFC 9111 §3, §3.5,
 * §5.2.2), or undefined when it may. It needs a freshness lifetime
 * (explicit or heuristic) or no-cache: an entry that could never be used
 * fresh and cannot be validated only takes room.
 */
export function notStorableReason(
  response: Pick<CacheEntry, "status" | "cc" | "headers" | "freshnessLifetime">,
  requestCc: CacheControl,
  authorized = false,
): string | undefined {
  const { status, cc } = response;
  if (requestCc.noStore) return "request-no-store";
  const understood = UNDERSTOOD_STATUS.has(status);
  // RFC 9111 §5.2.2.3: must-understand stores only statuses whose semantics
  // the cache knows, and then overrides the no-store that comes with it.
  if (mustUnderstand(response)) {
    if (!understood) return "must-understand";
  } else if (cc.noStore) return "no-store";
  if (cc.private) return "private";
  if (authorized && !sharesAuthorized(cc)) return "authorization";
  if (!storableStatus(status)) return "status";
  if (
    header(response, "vary")
      ?.split(",")
      .some((v) => v.trim() === "*")
  )
    return "vary-star";
  const explicit =
    cc.sMaxAge !== undefined ||
    cc.maxAge !== undefined ||
    (header(response, "expires") !== undefined &&
      targetedCacheControl(header(response, CDN_CACHE_CONTROL)) === undefined);
  if (explicit) return undefined;
  // RFC 9111 §3: without explicit freshness, only heuristically cacheable statuses (or public).
  if (!HEURISTIC_STATUS.has(status) && !cc.public) return "status";
  if (response.freshnessLifetime === 0 && !cc.noCache) return "no-explicit-freshness";
  return undefined;
}

/** The request header values named by Vary, lower-cased names, in Vary's order. */
export function varyValues(vary: string | undefined, request: Headers): [string, string][] {
  if (!vary) return [];
  return vary
    .split(",")
    .map((v) => v.trim().toLowerCase())
    .filter((v) => v.length > 0)
    .map((name) => [name, request.get(name) ?? ""]);
}

/** RFC 9111 §4.1: a stored response matches when every Vary'd request header is the same. */
export function varyMatches(entry: Pick<CacheEntry, "vary">, request: Headers): boolean {
  return entry.vary.every(([name, value]) => (request.get(name) ?? "") === value);
}

/** How a stored response may be used now. */
export type Usability =
  /** Fresh: serve without contacting the parent. */
  | "fresh"
  /** Stale within stale-while-revalidate (RFC 5861 §3): serve, refresh in the background. */
  | "stale-while-revalidate"
  /** Must be validated before reuse (stale, no-cache, or soft-purged). */
  | "revalidate";

/**
 * RFC 9111 §4.2 and RFC 5861. Response no-cache (§5.2.2.4) and a soft purge
 * always need validation; must-revalidate, proxy-revalidate and s-maxage
 * (§5.2.2.2, §5.2.2.8, §5.2.2.10) forbid serving stale.
 */
export function usability(entry: CacheEntry, now: number, requestCc: CacheControl): Usability {
  if (entry.cc.noCache || entry.invalidated) return "revalidate";
  if (requestCc.noCache || requestCc.maxAge === 0) return "revalidate";
  const age = currentAge(entry, now);
  if (age < entry.freshnessLifetime) {
    return requestCc.maxAge !== undefined && age > requestCc.maxAge ? "revalidate" : "fresh";
  }
  const swr = entry.cc.staleWhileRevalidate ?? 0;
  if (mayServeStale(entry) && age < entry.freshnessLifetime + swr) return "stale-while-revalidate";
  return "revalidate";
}

/** Whether any stale serving is allowed at all (RFC 9111 §4.2.4). */
export function mayServeStale(entry: Pick<CacheEntry, "cc">): boolean {
  const cc = entry.cc;
  return !cc.mustRevalidate && !cc.proxyRevalidate && cc.sMaxAge === undefined;
}

/**
 * RFC 5861 §4: a stale response may answer when the parent fails with a 5xx
 * or is unreachable, within stale-if-error seconds of going stale. A soft
 * purge counts as going stale at the moment of the purge, so staleness
 * there is clamped at 0.
 */
export function mayServeOnError(entry: CacheEntry, now: number): boolean {
  if (!mayServeStale(entry) || entry.cc.noCache) return false;
  const sie = entry.cc.staleIfError;
  if (sie === undefined) return false;
  const staleness = Math.max(0, currentAge(entry, now) - entry.freshnessLifetime);
  return staleness < sie;
}

/**
 * Seconds this entry may still be served without the parent's say: while
 * fresh, then inside stale-while-revalidate (RFC 5861 §3). stale-if-error is
 * left out: it applies only while the parent fails, when no cache can learn
 * of a change anyway. A soft-purged or no-cache entry is never served unasked.
 */
export function servableFor(entry: CacheEntry, now: number): number {
  if (entry.invalidated || entry.cc.noCache) return 0;
  const swr = mayServeStale(entry) ? (entry.cc.staleWhileRevalidate ?? 0) : 0;
  return Math.max(0, entry.freshnessLifetime + swr - currentAge(entry, now));
}

/**
 * Whether an entry may hold data from before `serial`, so a purge at
 * `serial` applies to it (an entry without X-Serial may).
 */
export function filledBefore(entry: Pick<CacheEntry, "serial">, serial: number): boolean {
  return entry.serial === undefined || serialLt(entry.serial, serial);
}

/** Remaining freshness in whole seconds, negative once stale (RFC 9211 §2.6 `ttl`). */
export function remainingTtl(entry: CacheEntry, now: number): number {
  if (entry.invalidated)
    return Math.min(0, Math.floor(entry.freshnessLifetime - currentAge(entry, now)));
  return Math.floor(entry.freshnessLifetime - currentAge(entry, now));
}

/**
 * RFC 9110 §13.1.3 If-Modified-Since on a stored response: not modified
 * when its Last-Modified (else its Date, RFC 9111 §4.3.2) is no later than
 * the client's date. An invalid date is ignored.
 */
export function notModifiedSince(
  ifModifiedSince: string | null,
  entry: Pick<CacheEntry, "headers">,
): boolean {
  const since = parseHttpDate(ifModifiedSince);
  if (since === undefined) return false;
  const modified = parseHttpDate(header(entry, "last-modified") ?? header(entry, "date"));
  return modified !== undefined && modified <= since;
}

/** Entity-tag comparison for If-None-Match: weak comparison (RFC 9110 §13.1.2). */
export function noneMatch(ifNoneMatch: string | null, etag: string | undefined): boolean {
  if (!ifNoneMatch || etag === undefined) return false;
  if (ifNoneMatch.trim() === "*") return true;
  const tag = opaque(etag);
  return ifNoneMatch.split(",").some((t) => opaque(t) === tag);
}

/** An entity-tag without its weakness indicator, for weak comparison (RFC 9110 §8.8.3.2). */
function opaque(tag: string): string {
  return tag.trim().replace(/^W\//, "");
}

/** Reads what the edge needs from a stored header list. */
export function describe(headers: [string, string][]): {
  cc: CacheControl;
  etag?: string;
  serial?: number;
  surrogateKeys: string[];
} {
  const h = { headers };
  const keys = header(h, H.surrogateKey);
  return {
    // RFC 9213 §2.2: a valid CDN-Cache-Control replaces Cache-Control for this cache.
    cc:
      targetedCacheControl(header(h, CDN_CACHE_CONTROL)) ??
      parseCacheControl(header(h, "cache-control")),
    etag: header(h, "etag"),
    serial: parseSerialHeader(header(h, H.serial)),
    surrogateKeys: keys ? keys.split(/\s+/).filter((k) => k.length > 0) : [],
  };
}
