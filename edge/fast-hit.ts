/**
 * The Node edge's fast path for fresh hits: a `node:http` request listener in
 * front of the Hono app that answers a plain GET or HEAD of a fresh stored
 * entry straight from the entry, with no Web Request, Response or routing,
 * and hands every other request to the app unchanged. What it writes is, byte
 * for byte, what the engine (`Edge.handle` through @hono/node-server) writes
 * for the same request at the same instant: the stored header fields in the
 * stored order, then Age and this edge's Cache-Status member, then Node's own
 * framing (test/edge/fast-hit.test.ts compares the two on the wire).
 *
 * Node only: the Worker serves everything through the app (edge/worker.ts).
 */
import {
  type IncomingMessage,
  type RequestListener,
  type ServerResponse,
  validateHeaderName,
  validateHeaderValue,
} from "node:http";
import type { Clock } from "../core/clock.ts";
import { H } from "../core/http.ts";
import { memoized } from "../core/memo.ts";
import type { Edge } from "./cache.ts";
import { appendCacheStatus, cacheKey, formatCacheStatus } from "./key.ts";
import { ageHeader, type CacheEntry, currentAge, remainingTtl } from "./policy.ts";

/**
 * Request fields the engine reads on a hit; a request carrying any of them
 * goes to the engine: Authorization (RFC 9111 §3.5), Cache-Control request
 * directives (§5.2.1), the client's serial floor, and the conditionals and
 * Range the engine answers from the stored response (RFC 9110 §13.2.2, §14).
 */
const ENGINE_FIELDS = [
  "authorization",
  "cache-control",
  H.minSerial,
  "if-none-match",
  "if-modified-since",
  "if-range",
  "range",
] as const;

/**
 * Paths the Hono app routes to its own handlers for GET and HEAD
 * (edge/app.ts); never answered from the cache.
 */
const OWN_PATHS = new Set(["/metrics", "/cache"]);

/** Bounds on the memo tables below: past them a table starts over. */
const MAX_TARGETS = 10_000;
const MAX_HOSTS = 64;

/** One entry's response, prepared once: everything but the Age value and Cache-Status's `ttl`. */
interface Prepared {
  /** The fields as writeHead takes them ([name, value, ...]) for a GET, and for a HEAD. */
  get: Fields;
  head: Fields;
  /** The Cache-Status value (the parent's members and this edge's) before and after the ttl. */
  statusHead: string;
  statusTail: string;
}

/** A flat field list, and where in it the values of Age and Cache-Status go. */
interface Fields {
  flat: string[];
  age: number;
  cacheStatus: number;
}

/** Node's own field (`OutgoingMessage._contentLength`) that @hono/node-server sets: see `answer`. */
type Framed = ServerResponse & { _contentLength: number | null };

export interface FastHits {
  listener: RequestListener;
  /** Requests answered here, not by the app (tests check the fast path ran). */
  served(): number;
}

/**
 * Wraps `app` (the @hono/node-server listener of createEdgeApp) with the
 * fast path. `clock` is the engine's clock.
 */
export function fastHits(edge: Edge, clock: Clock, app: RequestListener): FastHits {
  /** Per entry: its prepared response, or null when a field would not pass Node's checks. */
  const prepared = new WeakMap<CacheEntry, Prepared | null>();
  let served = 0;

  /** Raw request target -> cache key; null when the target is not served here. */
  const keyOf = memoized(targetKey, MAX_TARGETS);
  const hostOk = memoized(plainHost, MAX_HOSTS);

  const listener: RequestListener = (req, res) => {
    if (!answer(req, res)) app(req, res);
  };

  function answer(req: IncomingMessage, res: ServerResponse): boolean {
    const method = req.method;
    if (method !== "GET" && method !== "HEAD") return false;
    // Node will not chunk an HTTP/1.0 response, so Hono frames it with a field of its own: left to it.
    if (req.httpVersionMajor !== 1 || req.httpVersionMinor !== 1) return false;
    const headers = req.headers;
    const host = headers.host;
    if (host === undefined || !hostOk(host)) return false;
    for (const name of ENGINE_FIELDS) if (headers[name] !== undefined) return false;
    const key = keyOf(req.url ?? "");
    if (key === null) return false;
    const now = clock.now();
    const entry = edge.freshHit(key, now);
    if (entry === undefined) return false;
    let p = prepared.get(entry);
    if (p === undefined) {
      p = prepare(edge.id, entry);
      prepared.set(entry, p);
    }
    // The engine answers (a 500) what Node refuses to send; so it gets those.
    if (p === null) return false;
    served++;
    edge.countHit();
    const fields = method === "HEAD" ? p.head : p.get;
    fields.flat[fields.age] = ageHeader(currentAge(entry, now));
    fields.flat[fields.cacheStatus] = p.statusHead + remainingTtl(entry, now) + p.statusTail;
    if (method === "HEAD" || entry.status === 204) {
      res.writeHead(entry.status, fields.flat);
      res.end();
    } else {
      // @hono/node-server frames a body it holds whole this way (its
      // trySetContentLength): Content-Length after Node's Connection fields.
      (res as Framed)._contentLength = entry.body.byteLength;
      res.writeHead(entry.status, fields.flat);
      res.end(entry.body);
    }
    return true;
  }

  return { listener, served: () => served };
}

/**
 * The cache key of an origin-form request target, or null when the fast
 * path leaves it to the app: a target the URL parser would rewrite (dot
 * segments, a fragment, characters it escapes), one with percent-escapes
 * (Hono decodes them to route), or a path the app routes elsewhere. So the
 * key is the one the engine computes from Hono's URL for the same target.
 */
function targetKey(target: string): string | null {
  if (target[0] !== "/" || target.includes("%")) return null;
  let url: URL;
  try {
    url = new URL(`http://h${target}`);
  } catch {
    return null;
  }
  if (url.pathname + url.search !== target || OWN_PATHS.has(url.pathname)) return null;
  return cacheKey(url);
}

/**
 * A Host field the app takes as it is (a lower-case name or address, an
 * optional port the URL parser keeps): anything else is left to the app,
 * which may refuse it.
 */
function plainHost(host: string): boolean {
  if (!/^[a-z0-9.-]+(:[0-9]{1,5})?$/.test(host)) return false;
  try {
    return new URL(`http://${host}/`).host === host;
  } catch {
    return false;
  }
}

/**
 * The fields of `entry` as the engine's `respond` lays them out for a hit:
 * the stored fields in order, a repeated one joined; Age and Cache-Status
 * where the stored list has them, else after it in that order.
 * A HEAD leaves through Hono's HEAD handling, which copies the response into
 * a Web Headers, so its fields go out sorted by name (Fetch "sort and combine"),
 * Set-Cookie last (@hono/node-server gathers it apart).
 */
function prepare(id: string, entry: CacheEntry): Prepared | null {
  const merged = new Map<string, string>();
  for (const [k, v] of entry.headers) {
    const had = merged.get(k);
    merged.set(k, had === undefined ? v : `${had}, ${v}`);
  }
  const upstream = merged.get("cache-status");
  if (!merged.has("age")) merged.set("age", "");
  if (upstream === undefined) merged.set("cache-status", "");
  const names = [...merged.keys()];
  const values = [...merged.values()];
  try {
    for (const [k, v] of merged) {
      validateHeaderName(k);
      validateHeaderValue(k, v);
    }
  } catch {
    return null;
  }
  const order = names.map((_, i) => i);
  const fields = (o: number[]): Fields => ({
    flat: o.flatMap((i) => [names[i]!, values[i]!]),
    age: 2 * o.indexOf(names.indexOf("age")) + 1,
    cacheStatus: 2 * o.indexOf(names.indexOf("cache-status")) + 1,
  });
  // The engine's member, formatted with ttl 0 and 1: they differ at the ttl alone.
  const [zero, one] = [0, 1].map((ttl) =>
    appendCacheStatus(upstream, formatCacheStatus(id, { hit: true, ttl, key: entry.key })),
  ) as [string, string];
  let at = 0;
  while (zero[at] === one[at]) at++;
  return {
    get: fields(order),
    head: fields([...order].sort((a, b) => headRank(names[a]!, names[b]!))),
    statusHead: zero.slice(0, at),
    statusTail: zero.slice(at + 1),
  };
}

function headRank(a: string, b: string): number {
  if (a === "set-cookie" || b === "set-cookie") return a === "set-cookie" ? 1 : -1;
  return a < b ? -1 : 1;
}
