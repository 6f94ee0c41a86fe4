/**
 * The HTTP contract between tiers: the paths a cache reads, and the headers
 * every read response carries.
 */
import { memoized } from "./memo.ts";

/** RFC 8484 DoH endpoint (GET ?dns= and POST application/dns-message). */
export const DOH_PATH = "/dns-query";
/** The de-facto DNS JSON API: /resolve?name=&type= */
export const JSON_PATH = "/resolve";
export const DNS_MESSAGE = "application/dns-message";
export const DNS_JSON = "application/dns-json";

export const H = {
  /** Zone serial that produced the response. */
  serial: "x-serial",
  /** Client's floor for read-your-writes: no answer older than this serial. */
  minSerial: "x-min-serial",
  /** Space-separated purge keys: the owner name and "zone:<zone>". */
  surrogateKey: "surrogate-key",
  /** Zone the response belongs to. */
  zone: "x-zone",
} as const;

/** Surrogate key naming a whole zone, alongside the plain owner-name key. */
export function zoneKey(zone: string): string {
  return `zone:${zone}`;
}

export interface CacheControl {
  maxAge?: number;
  sMaxAge?: number;
  staleWhileRevalidate?: number;
  staleIfError?: number;
  noCache?: boolean;
  noStore?: boolean;
  private?: boolean;
  public?: boolean;
  mustRevalidate?: boolean;
  proxyRevalidate?: boolean;
}

const DELTA = /^\d+$/;

/**
 * Parses Cache-Control (RFC 9111 §5.2). Directive names are case-insensitive;
 * a delta-seconds value that is not a non-negative integer makes the directive
 * invalid, and RFC 9111 §4.2.1 says to treat an invalid max-age as stale (0).
 */
export function parseCacheControl(header: string | null | undefined): Readonly<CacheControl> {
  return header ? parsedCacheControl(header) : NO_DIRECTIVES;
}

const NO_DIRECTIVES: Readonly<CacheControl> = Object.freeze({});
/**
 * Every request and response of a cache is parsed, and the values repeat (a
 * handful per deployment): each is parsed once, up to 1,024 values of up to
 * 256 characters (a longer one, a client's most likely, is parsed each time).
 * The results are shared, so frozen.
 */
const parsedCacheControl = memoized((header) => Object.freeze(parseDirectives(header)), 1024, 256);

function parseDirectives(header: string): CacheControl {
  const cc: CacheControl = {};
  for (const part of header.split(",")) {
    const [rawName, ...rest] = part.split("=");
    const name = rawName?.trim().toLowerCase();
    if (!name) continue;
    const raw = rest
      .join("=")
      .trim()
      .replace(/^"(.*)"$/, "$1");
    const seconds = DELTA.test(raw) ? Math.min(Number(raw), 2 ** 31) : 0;
    switch (name) {
      case "max-age":
        cc.maxAge = seconds;
        break;
      case "s-maxage":
        cc.sMaxAge = seconds;
        break;
      case "stale-while-revalidate":
        cc.staleWhileRevalidate = seconds;
        break;
      case "stale-if-error":
        cc.staleIfError = seconds;
        break;
      case "no-cache":
        cc.noCache = true;
        break;
      case "no-store":
        cc.noStore = true;
        break;
      case "private":
        cc.private = true;
        break;
      case "public":
        cc.public = true;
        break;
      case "must-revalidate":
        cc.mustRevalidate = true;
        break;
      case "proxy-revalidate":
        cc.proxyRevalidate = true;
        break;
    }
  }
  return cc;
}

export function formatCacheControl(cc: CacheControl): string {
  const out: string[] = [];
  if (cc.public) out.push("public");
  if (cc.private) out.push("private");
  if (cc.noStore) out.push("no-store");
  if (cc.noCache) out.push("no-cache");
  if (cc.maxAge !== undefined) out.push(`max-age=${cc.maxAge}`);
  if (cc.sMaxAge !== undefined) out.push(`s-maxage=${cc.sMaxAge}`);
  if (cc.mustRevalidate) out.push("must-revalidate");
  if (cc.proxyRevalidate) out.push("proxy-revalidate");
  if (cc.staleWhileRevalidate !== undefined) {
    out.push(`stale-while-revalidate=${cc.staleWhileRevalidate}`);
  }
  if (cc.staleIfError !== undefined) out.push(`stale-if-error=${cc.staleIfError}`);
  return out.join(", ");
}

/** Reads X-Serial / X-Min-Serial style headers: an unsigned 32-bit integer or undefined. */
export function parseSerialHeader(value: string | null | undefined): number | undefined {
  if (!value || !DELTA.test(value.trim())) return undefined;
  const n = Number(value.trim());
  return n < 2 ** 32 ? n : undefined;
}

/**
 * A response's body as bytes: `bytes()` (Fetch; Node 20.20's undici and the
 * simulator's hops have it), else a view of `arrayBuffer()` where a runtime
 * lacks it. `bytes()` lets a reader that makes its own copy (the
 * simulator's hop) hand over bytes without a new ArrayBuffer per answer.
 */
export function bodyBytes(res: Response): Promise<Uint8Array<ArrayBuffer>> {
  const r = res as Response & { bytes?: () => Promise<Uint8Array<ArrayBuffer>> };
  return typeof r.bytes === "function"
    ? r.bytes()
    : res.arrayBuffer().then((b) => new Uint8Array(b));
}
