/**
 * Cache keys (RFC 9111 §2: the target URI) and RFC 9211 Cache-Status values.
 */
import { JSON_PATH } from "../core/http.ts";
import { memoized } from "../core/memo.ts";

/**
 * The cache key: path and query. For the DNS JSON API, equivalent queries
 * share one entry: parameter names lower-cased and sorted, the name
 * lower-cased without its trailing dot, the type upper-cased.
 */
export function cacheKey(url: URL): string {
  if (url.pathname !== JSON_PATH) return url.pathname + url.search;
  const params = [...url.searchParams].map(([k, v]): [string, string] => {
    const name = k.toLowerCase();
    if (name === "name") return [name, v.toLowerCase().replace(/\.$/, "")];
    if (name === "type") return [name, v.toUpperCase()];
    return [name, v];
  });
  params.sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0));
  const query = new URLSearchParams(params).toString();
  return query ? `${url.pathname}?${query}` : url.pathname;
}

/**
 * `cacheKey` of an absolute URL string (a Request's `url`), computed once
 * per URL: an edge is asked the same few URLs over and over, and parsing
 * each was a URL object per request. Up to 4,096 URLs of up to 512
 * characters are kept (a longer one, a client's most likely, is parsed each
 * time).
 */
export const cacheKeyOf = memoized((href) => cacheKey(new URL(href)), 4096, 512);

/** RFC 9211 §2.2 forward reasons. */
export type Fwd = "uri-miss" | "miss" | "vary-miss" | "stale" | "request" | "bypass" | "method";

export interface CacheStatus {
  hit?: boolean;
  fwd?: Fwd;
  fwdStatus?: number;
  ttl?: number;
  stored?: boolean;
  collapsed?: boolean;
  key?: string;
  detail?: string;
}

/** RFC 8941 §3.3.4 sf-token. */
const SF_TOKEN = /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/;
/** RFC 8941 §3.3.3: an sf-string holds printable ASCII only. */
const PRINTABLE = /^[\x20-\x7e]+$/;

/** Why `id` cannot name a cache in Cache-Status, or undefined when it can. */
export function invalidCacheId(id: string): string | undefined {
  if (PRINTABLE.test(id)) return undefined;
  return `cache id ${JSON.stringify(id)} cannot name the cache in Cache-Status (RFC 9211 §2): use printable ASCII such as edge-1`;
}

/** RFC 8941 §3.3.3 sf-string: quoted, with " and \ escaped. */
function sfString(s: string): string {
  // Most keys have nothing to escape: no regular expression for those.
  if (!s.includes('"') && !s.includes("\\")) return `"${s}"`;
  return `"${s.replace(/[\\"]/g, "\\$&")}"`;
}

/**
 * RFC 9211 §2: the cache is named by an sf-token or an sf-string, so an id
 * that is not a token (a leading digit, a space, a comma) is quoted rather
 * than breaking the field for every parser downstream.
 */
export function cacheIdentifier(id: string): string {
  return SF_TOKEN.test(id) ? id : sfString(id);
}

/** Whether two statuses make the same member, `key` aside (each parameter `formatCacheStatus` writes). */
export function sameStatus(a: CacheStatus, b: CacheStatus): boolean {
  return (
    a.hit === b.hit &&
    a.fwd === b.fwd &&
    a.fwdStatus === b.fwdStatus &&
    a.ttl === b.ttl &&
    a.stored === b.stored &&
    a.collapsed === b.collapsed &&
    a.detail === b.detail
  );
}

/** The `key` parameter of a stored entry's key, quoted once per key (bounded like cacheKeyOf). */
const keyParameter = memoized((key: string) => `; key=${sfString(key)}`, 4_096, 512);

/** An edge's name in Cache-Status, made once per id (every answer carries it). */
const identifierOf = memoized(cacheIdentifier, 4_096);

/** One Cache-Status list member (RFC 9211 §2), naming this cache. */
export function formatCacheStatus(id: string, s: CacheStatus): string {
  // Parameters in a fixed order, joined as they come: no list per answer.
  let out = identifierOf(id);
  if (s.hit) out += "; hit";
  if (s.fwd) out += `; fwd=${s.fwd}`;
  if (s.fwdStatus !== undefined) out += `; fwd-status=${s.fwdStatus}`;
  if (s.ttl !== undefined) out += `; ttl=${s.ttl}`;
  if (s.stored) out += "; stored";
  if (s.collapsed) out += "; collapsed";
  if (s.key !== undefined) out += keyParameter(s.key);
  if (s.detail !== undefined) out += `; detail=${s.detail}`;
  return out;
}

/**
 * RFC 9211 §2: the first member is the cache closest to the origin and the
 * last the one closest to the user, and a cache SHOULD preserve the field it
 * received; so this edge's member goes after its parent's.
 */
export function appendCacheStatus(upstream: string | undefined, own: string): string {
  return upstream ? `${upstream}, ${own}` : own;
}
