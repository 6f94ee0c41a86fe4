/**
 * The edge cache engine: an RFC 9111 shared cache in front of one parent
 * (the origin or another edge). Clock, parent fetch and storage are
 * injected; only Web-standard APIs are used, so it runs in Node and workerd.
 */
import type { Clock } from "../core/clock.ts";
import { VersionFloor, ZoneSerials } from "../core/floor.ts";
import {
  bodyBytes,
  type CacheControl,
  H,
  parseCacheControl,
  parseSerialHeader,
  zoneKey,
} from "../core/http.ts";
import { InFlight } from "../core/in-flight.ts";
import { extend } from "../core/objects.ts";
import type { PurgeEvent } from "../core/purge.ts";
import { maxSerial, olderThan } from "../core/serial.ts";
import type { SyncTarget } from "../core/sync.ts";
import { DEFAULT_MAX_BODY, readBody, tooLarge } from "./body.ts";
import { type Exchange, entryFromResponse, freshen, selectedBy304 } from "./entry.ts";
import { fillRequestHeaders, passRequestHeaders, storedHeaders } from "./fields.ts";
import {
  appendCacheStatus,
  type CacheStatus,
  cacheKey,
  cacheKeyOf,
  type Fwd,
  formatCacheStatus,
  invalidCacheId,
  sameStatus,
} from "./key.ts";
import {
  ageHeader,
  type CacheEntry,
  currentAge,
  header,
  mayServeOnError,
  noneMatch,
  notModifiedSince,
  notStorableReason,
  remainingTtl,
  sharesAuthorized,
  usability,
  varyMatches,
} from "./policy.ts";
import {
  applyPurge,
  mark,
  type PurgeRequest,
  type PurgeState,
  purgeRequest,
  residualMs,
} from "./purge.ts";
import { byteRange, ifRangeHolds } from "./range.ts";
import type { EdgeStorage } from "./storage.ts";

export type ParentFetch = (req: Request) => Promise<Response>;

export interface EdgeOptions {
  /** Names this cache in Cache-Status. */
  id: string;
  /** Base URL of the parent: the origin or another edge. */
  parent: string;
  /** Base URL of the origin, asked directly when the parent keeps answering below the version floor. */
  origin?: string;
  fetch: ParentFetch;
  clock: Clock;
  storage: EdgeStorage;
  /** Give up on the parent after this long (ms). */
  parentTimeoutMs?: number;
  /** Extra parent requests for a fill below the version floor, before the origin bypass. */
  floorRetries?: number;
  /** Read repair: a response with a newer zone serial soft-purges the zone's older entries (default true). */
  readRepair?: boolean;
  /** Largest request body forwarded to the parent, bytes (default 1 MiB); larger ones get 413. */
  maxBodyBytes?: number;
  /** Failures no client sees (a background refresh); default: dropped. */
  log?: (message: string) => void;
}

export const DEFAULT_PARENT_TIMEOUT_MS = 5_000;
export const DEFAULT_FLOOR_RETRIES = 1;

/**
 * What a request asks of the cache, read from its fields once per request:
 * its Cache-Control directives and whether it carries Authorization (RFC
 * 9111 §3, §3.5), which the lookup, the fill and the store all consult.
 */
interface Asked {
  cc: CacheControl;
  authorized: boolean;
}

export interface HandleOptions {
  /** Keeps background refreshes alive after the response (Workers' ctx.waitUntil). */
  waitUntil?: (work: Promise<unknown>) => void;
}

/**
 * What a fill produced: the response to serve, and how it was obtained;
 * no status for a response this edge generated itself (RFC 9211 §2: such a
 * response gets no Cache-Status member).
 */
interface Fill {
  entry: CacheEntry;
  status?: CacheStatus;
}

const COUNTERS = [
  "hits",
  "misses",
  "stale",
  "staleIfError",
  "revalidations",
  "notModified",
  "coalesced",
  "purges",
  "purgedEntries",
  "parentRequests",
  "parentErrors",
  "floorRefusals",
  "passThrough",
  "pushed",
  "readRepairs",
  "readRepairedEntries",
] as const;
type Counter = (typeof COUNTERS)[number];

export type EdgeMetrics = Record<Counter | "entries" | "bytes" | "evictions", number> & {
  id: string;
};

export class Edge implements SyncTarget {
  readonly id: string;
  private readonly parent: string;
  private readonly origin: string | undefined;
  private readonly fetch: ParentFetch;
  private readonly clock: Clock;
  private readonly storage: EdgeStorage;
  private readonly timeoutMs: number;
  private readonly floorRetries: number;
  private readonly readRepair: boolean;
  private readonly floor = new VersionFloor();
  private readonly zoneSerials = new ZoneSerials();
  private readonly maxBodyBytes: number;
  private readonly inflight = new InFlight<Promise<Fill>>();
  /** The last Cache-Status member this edge wrote, and of what (see `statusMember`). */
  private lastMember: { status: CacheStatus; key: string; text: string } | undefined;
  private readonly counters = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<
    Counter,
    number
  >;
  private readonly log: (message: string) => void;
  /** What purge.ts acts on: this engine's storage, floor and counters. */
  private readonly purgeState: PurgeState;

  constructor(o: EdgeOptions) {
    const bad = invalidCacheId(o.id);
    if (bad !== undefined) throw new Error(bad);
    this.id = o.id;
    this.parent = o.parent.replace(/\/+$/, "");
    this.origin = o.origin?.replace(/\/+$/, "");
    this.fetch = o.fetch;
    this.clock = o.clock;
    this.storage = o.storage;
    this.timeoutMs = o.parentTimeoutMs ?? DEFAULT_PARENT_TIMEOUT_MS;
    this.floorRetries = o.floorRetries ?? DEFAULT_FLOOR_RETRIES;
    this.readRepair = o.readRepair ?? true;
    this.maxBodyBytes = o.maxBodyBytes ?? DEFAULT_MAX_BODY;
    this.log = o.log ?? (() => {});
    this.purgeState = {
      storage: this.storage,
      clock: this.clock,
      floor: this.floor,
      zoneSerials: this.zoneSerials,
      counters: this.counters,
    };
  }

  async handle(req: Request, opts: HandleOptions = {}): Promise<Response> {
    if (req.method !== "GET" && req.method !== "HEAD") return this.pass(req, "method");
    const key = cacheKeyOf(req.url);
    const requestCc = parseCacheControl(req.headers.get("cache-control"));
    const minSerial = parseSerialHeader(req.headers.get(H.minSerial));
    const authorized = req.headers.has("authorization");
    const asked: Asked = { cc: requestCc, authorized };
    const now = this.clock.now();
    const stored = this.storage.get(key);
    let prior: CacheEntry | undefined;
    let fwd: Fwd = "uri-miss";
    let detail: string | undefined;
    if (stored && authorized && !sharesAuthorized(stored.cc)) {
      // RFC 9111 §3.5: an authenticated request reuses only what says it may be shared.
      fwd = "request";
      detail = "authorization";
    } else if (stored && !varyMatches(stored, req.headers)) {
      fwd = "vary-miss";
    } else if (stored && olderThan(stored.serial, minSerial)) {
      // Read-your-writes: the client has seen a newer serial than this entry.
      prior = stored;
      fwd = "miss";
      detail = "min-serial";
    } else if (stored) {
      prior = stored;
      const use = usability(stored, now, requestCc);
      if (use === "fresh") {
        this.counters.hits++;
        return this.respond(req, stored, { hit: true, ttl: remainingTtl(stored, now) });
      }
      if (use === "stale-while-revalidate") {
        this.counters.stale++;
        this.refreshInBackground(key, req, asked, stored, opts);
        return this.respond(req, stored, {
          hit: true,
          ttl: remainingTtl(stored, now),
          detail: "stale-while-revalidate",
        });
      }
      fwd = requestCc.noCache || requestCc.maxAge === 0 ? "request" : "stale";
    }
    if (prior && (fwd === "stale" || fwd === "request")) this.counters.revalidations++;
    else this.counters.misses++;
    const fill = await this.fill(key, req, asked, prior, minSerial);
    return this.respond(req, fill.entry, fill.status && { fwd, detail, ...fill.status });
  }

  /**
   * What `handle` serves as a fresh hit to a GET or HEAD that carries none of
   * the fields it reads (Authorization, Cache-Control, X-Min-Serial,
   * conditionals, Range): the stored entry for `key` when it is fresh at
   * `now` and varies on nothing (RFC 9111 §4.1: a Vary'd entry needs the
   * request's fields); else undefined. Counts nothing: whoever serves it
   * calls `countHit`. The Node fast path's lookup (edge/fast-hit.ts).
   */
  freshHit(key: string, now: number): CacheEntry | undefined {
    const stored = this.storage.get(key);
    if (stored === undefined || stored.vary.length > 0) return undefined;
    return usability(stored, now, NO_DIRECTIVES) === "fresh" ? stored : undefined;
  }

  /** Counts a fresh hit served outside `handle` (edge/fast-hit.ts). */
  countHit(): void {
    this.counters.hits++;
  }

  /** The purge bus's entry (a SyncTarget, core/sync.ts): see purge.ts. */
  applyPurge(event: PurgeEvent): void {
    applyPurge(this.purgeState, event);
  }

  /**
   * The origin's feed says the zone is below this edge's floor (a floor raised
   * by an event the origin never published): forget the zone's floors and
   * serials and drop its entries, so it is served again (core/sync.ts).
   */
  resetZone(zone: string): void {
    this.floor.forgetZone(zone);
    this.zoneSerials.forget(zone);
    this.purge({ zone, mode: "hard" });
  }

  /**
   * `ttl` receipts: how long (ms from now) this edge may still serve, fresh
   * or within stale-while-revalidate, an entry the event touches that was
   * filled before the event's serial; 0 when none.
   */
  /** `ttl` receipts: see purge.ts. */
  residualMs(event: PurgeEvent): number {
    return residualMs(this.purgeState, event);
  }

  /** POST /purge: by URL, surrogate key, zone or all; returns how many entries it touched. */
  purge(p: PurgeRequest): number {
    return purgeRequest(this.purgeState, p);
  }

  metrics(): EdgeMetrics {
    return { id: this.id, ...this.counters, ...this.storage.stats() };
  }

  /**
   * Read repair (anti-entropy, infra/README.md "The fabric"): a response carrying a newer
   * serial for its zone than any seen here soft-purges the zone's entries
   * filled from older serials. The edge cannot tell which names changed, so
   * it marks them all; revalidation with If-None-Match makes that cheap (the
   * ETag is the RRset's version: unchanged RRsets come back 304). Once per
   * new serial, so a burst of responses cannot start a revalidation storm.
   */
  private repair(entry: CacheEntry): void {
    const zone =
      header(entry, H.zone) ??
      entry.surrogateKeys.find((k) => k.startsWith(ZONE_KEY))?.slice(ZONE_KEY.length);
    const serial = entry.serial;
    if (!this.readRepair || zone === undefined || serial === undefined) return;
    if (!this.zoneSerials.advance(zone, serial)) return;
    const older = this.storage.keysFor(zoneKey(zone)).filter((k) => {
      const e = k === entry.key ? undefined : this.storage.get(k);
      return e !== undefined && !e.invalidated && olderThan(e.serial, serial);
    });
    if (older.length === 0) return;
    this.counters.readRepairs++;
    this.counters.readRepairedEntries += mark(this.storage, older, "soft");
  }

  /** RFC 5861 §3: one background refresh per key; later requests keep getting the stale entry. */
  private refreshInBackground(
    key: string,
    req: Request,
    asked: Asked,
    prior: CacheEntry,
    opts: HandleOptions,
  ): void {
    const work = this.fill(key, req, asked, prior, undefined).catch((err: unknown) => {
      this.log(`${this.id}: background refresh of ${key} failed: ${String(err)}`);
    });
    opts.waitUntil?.(work);
  }

  /**
   * Request coalescing: concurrent fills of one key (and floor) share one
   * parent request. A follower whose request the shared response does not
   * match on Vary (RFC 9111 §4.1) asks for its own; a request with
   * Authorization never shares, its answer may be for that user alone.
   */
  private fill(
    key: string,
    req: Request,
    asked: Asked,
    prior: CacheEntry | undefined,
    minSerial: number | undefined,
  ): Promise<Fill> {
    if (asked.authorized) return this.fillFromParent(key, req, asked, prior, minSerial);
    const id = minSerial === undefined ? key : `${key}|${minSerial}`;
    const running = this.inflight.get(id);
    if (running) {
      this.counters.coalesced++;
      return running.then((f) =>
        varyMatches(f.entry, req.headers)
          ? { ...f, status: f.status && extend(f.status, { collapsed: true }) }
          : this.fillFromParent(key, req, asked, prior, minSerial),
      );
    }
    const work = this.fillFromParent(key, req, asked, prior, minSerial).finally(() =>
      this.inflight.delete(id),
    );
    this.inflight.set(id, work);
    return work;
  }

  /**
   * Fetches from the parent and stores the answer. The client's X-Min-Serial
   * is forwarded on every request, so each tier misses its older entries and
   * the origin answers 412 to a serial it has not reached; it is never
   * retried, or a made-up serial would multiply origin requests. Retries are
   * for the version floor only (the purge serials of the keys, and the
   * stored entry's own serial: monotonic reads): an answer below it is asked
   * again with X-Min-Serial, then of the origin, and is never stored.
   */
  private async fillFromParent(
    key: string,
    req: Request,
    asked: Asked,
    prior: CacheEntry | undefined,
    minSerial: number | undefined,
  ): Promise<Fill> {
    let floor = maxSerial(prior?.serial, prior && this.floor.floorOf(prior.surrogateKeys));
    const bases = Array<string>(1 + this.floorRetries).fill(this.parent);
    if (this.origin !== undefined && this.origin !== this.parent) bases.push(this.origin);
    let last: Fill | undefined;
    for (const [attempt, base] of bases.entries()) {
      // A retry asks unconditionally: a lagging parent's 304 would only confirm the old entry.
      const validating = attempt === 0 ? prior : undefined;
      const x = await this.exchange(base, key, req, validating, maxSerial(minSerial, floor));
      if (x instanceof Error || x.response.status >= 500) {
        return this.onParentError(key, req, asked, prior, x);
      }
      if (x.response.status === 304 && validating && !selectedBy304(validating, x.response)) {
        // RFC 9111 §4.3.4: a 304 naming another strong validator updates nothing.
        return { entry: validating, status: { fwdStatus: 304, detail: "validator-mismatch" } };
      }
      const candidate =
        x.response.status === 304 && validating
          ? this.freshened(validating, x)
          : entryFromResponse(key, req.headers, x);
      this.repair(candidate);
      floor = maxSerial(floor, this.floor.floorOf(candidate.surrogateKeys));
      const status: CacheStatus = { fwdStatus: x.response.status };
      if (!olderThan(candidate.serial, floor)) return this.store(candidate, status, asked);
      this.counters.floorRefusals++;
      last = { entry: candidate, status: extend(status, { detail: "serial-below-floor" }) };
    }
    // Still old after every retry: serve it, but do not let it into the cache.
    return last!;
  }

  private freshened(prior: CacheEntry, x: Exchange): CacheEntry {
    this.counters.notModified++;
    return freshen(prior, x);
  }

  private store(entry: CacheEntry, status: CacheStatus, asked: Asked): Fill {
    const reason = notStorableReason(entry, asked.cc, asked.authorized);
    if (reason !== undefined) return { entry, status: extend(status, { detail: reason }) };
    const stored = this.storage.set(entry);
    const now = this.clock.now();
    return {
      entry,
      status: stored
        ? extend(status, { stored: true, ttl: remainingTtl(entry, now) })
        : extend(status, { detail: "too-large" }),
    };
  }

  /**
   * RFC 5861 §4 stale-if-error, else the parent's 5xx, else 502/504 of our
   * own. RFC 9211 §2: an intermediary SHOULD NOT add a Cache-Status member
   * to a response it generates locally unless it is based on a stored one,
   * so the stale answer and the relayed 5xx carry this edge's member and
   * the made-up 502/504 carries none: its JSON body says which edge and why.
   */
  private onParentError(
    key: string,
    req: Request,
    asked: Asked,
    prior: CacheEntry | undefined,
    x: Exchange | Error,
  ): Fill {
    this.counters.parentErrors++;
    const now = this.clock.now();
    const fwdStatus = x instanceof Error ? undefined : x.response.status;
    if (prior && mayServeOnError(prior, now)) {
      this.counters.stale++;
      this.counters.staleIfError++;
      return {
        entry: prior,
        status: {
          fwd: "stale",
          fwdStatus,
          ttl: remainingTtl(prior, now),
          detail: "stale-if-error",
        },
      };
    }
    if (!(x instanceof Error)) {
      const entry = entryFromResponse(key, req.headers, x);
      // RFC 9111 §3: a 5xx with explicit freshness is stored like any final status.
      const reason = notStorableReason(entry, {}, asked.authorized);
      return reason === undefined
        ? this.store(entry, { fwdStatus }, asked)
        : { entry, status: { fwdStatus } };
    }
    const timeout = x.name === "TimeoutError";
    const body = new TextEncoder().encode(
      JSON.stringify({
        error: timeout ? "parent timeout" : "parent unreachable",
        reason: `${this.id}: parent ${this.parent} ${x.message}`,
      }),
    );
    return { entry: { ...errorEntry(key, timeout ? 504 : 502, now), body } };
  }

  /** One request to `base`, bounded by the parent timeout on the injected clock. */
  private async exchange(
    base: string,
    key: string,
    req: Request,
    prior: CacheEntry | undefined,
    required: number | undefined,
  ): Promise<Exchange | Error> {
    const headers = this.fillHeaders(req.headers);
    if (prior?.status === 200) {
      // RFC 9111 §4.3.1: validate with every validator the stored response has.
      if (prior.etag !== undefined) headers.set("if-none-match", prior.etag);
      const lastModified = header(prior, "last-modified");
      if (lastModified !== undefined) headers.set("if-modified-since", lastModified);
    }
    if (required !== undefined) headers.set(H.minSerial, String(required));
    // Made when the request asks for its signal: one that never reads it
    // (the simulator's hops, infra/sim/hop.ts) costs no controller and signal.
    let controller: AbortController | undefined;
    let timer = 0;
    const timedOut = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => {
        const err = new Error(`did not answer within ${this.timeoutMs} ms`);
        err.name = "TimeoutError";
        // Aborted even if nobody has read the signal yet: a later reader sees it aborted.
        controller ??= new AbortController();
        controller.abort(err);
        reject(err);
      }, this.timeoutMs);
    });
    this.counters.parentRequests++;
    const requestTime = this.clock.now();
    try {
      const parentReq = this.parentRequest(base, key, headers, () => {
        controller ??= new AbortController();
        return controller.signal;
      });
      const response = await raced(this.fetch(parentReq), timedOut);
      if (!finalStatus(response.status)) {
        await response.body?.cancel();
        return new Error(`answered with status ${response.status}, not a final HTTP status`);
      }
      const responseTime = this.clock.now();
      const body = await raced(bodyBytes(response), timedOut);
      return { requestTime, responseTime, response, body };
    } catch (err) {
      if (err instanceof Error && err.name === "TimeoutError") return err;
      return new Error(`unreachable: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  /** The fields of a fill's GET (fields.ts `fillRequestHeaders`); apart as `parentRequest` is. */
  protected fillHeaders(request: Headers): Headers {
    return fillRequestHeaders(request);
  }

  /**
   * The GET a fill sends to the parent, for the URL `base + key`. Apart so
   * the simulator's edges (infra/sim/hop.ts) can send it between simulated
   * nodes without a Web Request; the two parts given apart, so they can
   * find the URL they made before without joining and hashing a new string.
   */
  protected parentRequest(
    base: string,
    key: string,
    headers: Headers,
    signal: () => AbortSignal,
  ): Request {
    return new Request(base + key, { headers, signal: signal() });
  }

  /** Forwards a request the cache does not serve (writes, POST DoH, authenticated reads). */
  private async pass(req: Request, fwd: Fwd): Promise<Response> {
    this.counters.passThrough++;
    const url = new URL(req.url);
    const headers = passRequestHeaders(req.headers);
    const hasBody = req.method !== "GET" && req.method !== "HEAD";
    // Buffered, so bounded: a body over the limit is refused before it fills memory.
    const body = hasBody ? await readBody(req, this.maxBodyBytes) : undefined;
    // RFC 9211 §2: the 413 and 502 below are generated here, not served from
    // or through the cache, so they carry no Cache-Status member.
    if (hasBody && body === undefined) return tooLarge(this.id, this.maxBodyBytes);
    let response: Response;
    try {
      response = await this.fetch(
        new Request(this.parent + url.pathname + url.search, { method: req.method, headers, body }),
      );
      if (!finalStatus(response.status)) {
        await response.body?.cancel();
        throw new Error(`answered with status ${response.status}, not a final HTTP status`);
      }
    } catch (err) {
      this.counters.parentErrors++;
      return Response.json(
        {
          error: "parent unreachable",
          reason: `${this.id}: parent ${this.parent} unreachable: ${String(err)}`,
        },
        { status: 502 },
      );
    }
    if (!SAFE_METHODS.has(req.method) && response.status >= 200 && response.status < 400) {
      for (const key of this.invalidated(url, response.headers)) this.storage.delete(key);
    }
    const out = new Headers(storedHeaders(response.headers));
    out.set(
      "cache-status",
      appendCacheStatus(out.get("cache-status") ?? undefined, formatCacheStatus(this.id, { fwd })),
    );
    return new Response(response.body, { status: response.status, headers: out });
  }

  /**
   * RFC 9111 §4.4: a non-error response to an unsafe method invalidates the
   * target URI, and the Location and Content-Location URIs when they are of
   * the same origin (as the client or as the parent names it).
   */
  private invalidated(target: URL, headers: Headers): string[] {
    const keys = [cacheKey(target)];
    const asParent = new URL(target.pathname + target.search, `${this.parent}/`);
    for (const name of ["location", "content-location"]) {
      const value = headers.get(name);
      if (value === null) continue;
      let url: URL;
      try {
        url = new URL(value, asParent);
      } catch {
        continue;
      }
      if (url.origin === asParent.origin || url.origin === target.origin) keys.push(cacheKey(url));
    }
    return keys;
  }

  /** Serves `entry`, with this edge's Cache-Status member unless it generated the response. */
  protected respond(req: Request, entry: CacheEntry, status: CacheStatus | undefined): Response {
    const r = this.reply(req, entry, status);
    return new Response(r.body, { status: r.status, headers: r.headers });
  }

  /**
   * This edge's Cache-Status member (RFC 9211 §2) for `status` and the
   * entry's key. Answers in a row mostly repeat the last one (every
   * revalidation of an entry, every hit with the same TTL left), so it is
   * written again only when one of its parameters differs.
   */
  private statusMember(status: CacheStatus, key: string): string {
    const last = this.lastMember;
    if (last !== undefined && last.key === key && sameStatus(last.status, status)) return last.text;
    const text = formatCacheStatus(this.id, extend(status, { key }));
    // A copy: the caller's status object is not ours to keep.
    this.lastMember = { status: { ...status }, key, text };
    return text;
  }

  /**
   * What `respond` serves, before it is a Web Response: status, header
   * fields, body. Apart so the simulator (infra/sim/hop.ts) can carry it
   * between simulated nodes without building a Response and its body stream.
   */
  protected reply(req: Request, entry: CacheEntry, status: CacheStatus | undefined): Reply {
    // A plain object, not Headers: @hono/node-server writes it without copying.
    const headers: Record<string, string> = {};
    for (const [k, v] of entry.headers) headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
    headers.age = ageHeader(currentAge(entry, this.clock.now()));
    if (status) {
      const own = this.statusMember(status, entry.key);
      headers["cache-status"] = appendCacheStatus(headers["cache-status"], own);
    }
    let code = entry.status;
    let body: Uint8Array<ArrayBuffer> | null = entry.body;
    if (entry.status === 200) {
      // RFC 9110 §13.2.2: If-None-Match, else If-Modified-Since, then Range.
      const inm = req.headers.get("if-none-match");
      if (
        inm !== null
          ? noneMatch(inm, entry.etag)
          : notModifiedSince(req.headers.get("if-modified-since"), entry)
      ) {
        code = 304;
      } else if (
        req.method === "GET" &&
        ifRangeHolds(req.headers.get("if-range"), entry.etag, headers["last-modified"])
      ) {
        const size = entry.body.byteLength;
        const range = byteRange(req.headers.get("range"), size);
        if (range === "unsatisfiable") {
          code = 416;
          body = null;
          headers["content-range"] = `bytes */${size}`;
        } else if (range !== undefined) {
          code = 206;
          body = entry.body.slice(range.start, range.end + 1);
          headers["content-range"] = `bytes ${range.start}-${range.end}/${size}`;
        }
      }
    }
    const noBody = req.method === "HEAD" || code === 304 || code === 204;
    return { status: code, headers, body: noBody ? null : body };
  }
}

/** A response as `Edge.reply` makes it: header fields with lower-case names, joined. */
export interface Reply {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array<ArrayBuffer> | null;
}

const ZONE_KEY = zoneKey("");

/** A request without Cache-Control (RFC 9111 §5.2.1: no request directives). */
const NO_DIRECTIVES: CacheControl = {};

/**
 * RFC 9110 §15: a final status is 200..599. fetch has already consumed any
 * interim 1xx; anything else (a 999 from a broken origin) cannot be relayed
 * by a Response, so it is a parent failure.
 */
function finalStatus(status: number): boolean {
  return status >= 200 && status <= 599;
}

/** RFC 9110 §9.2.1: methods that do not invalidate anything. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS", "TRACE"]);

/** A response the edge makes up itself when the parent cannot answer; never stored. */
function errorEntry(key: string, status: number, now: number): CacheEntry {
  return {
    key,
    status,
    headers: [["content-type", "application/json"]],
    body: new Uint8Array(),
    requestTime: now,
    responseTime: now,
    correctedInitialAge: 0,
    freshnessLifetime: 0,
    cc: {},
    surrogateKeys: [],
    vary: [],
    invalidated: false,
  };
}

/**
 * `Promise.race([work, timedOut])` in the same promise turns (the simulator
 * orders one instant's chains by them), without the array, its iterator and
 * the iterator's results: twice per parent request (bench/sim-revalidate.ts,
 * ~4 %).
 */
export function raced<T>(work: Promise<T>, timedOut: Promise<never>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    work.then(resolve, reject);
    timedOut.then(resolve, reject);
  });
}
