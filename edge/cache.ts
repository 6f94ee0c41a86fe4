/**
 * The edge cache engine: an RFC 9111 shared cache in front of one parent
 * (the origin or another edge). Clock, parent fetch and storage are
 * injected; only Web-standard APIs are used, so it runs in Node and workerd.
 */
import type { Clock } from "../core/clock.ts";
import {
  type CacheControl,
  H,
  parseCacheControl,
  parseSerialHeader,
  zoneKey,
} from "../core/http.ts";
import type { PurgeEvent, PurgeMode } from "../core/purge.ts";
import type { RRset } from "../core/records.ts";
import type { SyncTarget } from "../core/sync.ts";
import { DEFAULT_MAX_BODY, readBody, tooLarge } from "./body.ts";
import { type Exchange, entryFromResponse, freshen } from "./entry.ts";
import { maxSerial, olderThan, VersionFloor, ZoneSerials } from "./floor.ts";
import {
  appendCacheStatus,
  type CacheStatus,
  cacheKey,
  type Fwd,
  formatCacheStatus,
  invalidCacheId,
} from "./key.ts";
import {
  ageHeader,
  type CacheEntry,
  currentAge,
  header,
  mayServeOnError,
  noneMatch,
  notStorableReason,
  remainingTtl,
  servableFor,
  storedHeaders,
  usability,
  varyMatches,
} from "./policy.ts";
import { pushedEntry, questionOf, wellFormed } from "./push.ts";
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
}

export const DEFAULT_PARENT_TIMEOUT_MS = 5_000;
export const DEFAULT_FLOOR_RETRIES = 1;

/** A purge by URL, surrogate key, zone or everything, as POST /purge takes it. */
export interface PurgeRequest {
  url?: string;
  key?: string;
  zone?: string;
  all?: boolean;
  mode: PurgeMode;
  /** The serial the purge is for: raises the version floor of the purged keys. */
  serial?: number;
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

/** Request headers passed to the parent on a fill; the cache sets its own conditionals. */
// cache-control too: a child's no-cache (a resolver's prefetch) revalidates every tier up
// to the origin, or the parent would answer 304 from a copy that expires with the child's.
const FORWARDED = ["accept", "accept-language", "cache-control"];

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
  private readonly inflight = new Map<string, Promise<Fill>>();
  private readonly counters = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<
    Counter,
    number
  >;

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
  }

  async handle(req: Request, opts: HandleOptions = {}): Promise<Response> {
    if (req.method !== "GET" && req.method !== "HEAD") return this.pass(req, "method");
    // RFC 9111 §3.5: a shared cache does not reuse responses to authenticated requests.
    if (req.headers.has("authorization")) return this.pass(req, "bypass");
    const url = new URL(req.url);
    const key = cacheKey(url);
    const requestCc = parseCacheControl(req.headers.get("cache-control"));
    const minSerial = parseSerialHeader(req.headers.get(H.minSerial));
    const now = this.clock.now();
    const stored = this.storage.get(key);
    let prior: CacheEntry | undefined;
    let fwd: Fwd = "uri-miss";
    let detail: string | undefined;
    if (stored && !varyMatches(stored, req.headers)) {
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
        this.refreshInBackground(key, req, stored, opts);
        return this.respond(req, stored, {
          hit: true,
          ttl: remainingTtl(stored, now),
          detail: "stale-while-revalidate",
        });
      }
      fwd = requestCc.noCache || requestCc.maxAge === 0 ? "request" : "stale";
    }
    if (fwd === "stale" || fwd === "request") this.counters.revalidations++;
    else this.counters.misses++;
    const fill = await this.fill(key, req, prior, minSerial);
    return this.respond(req, fill.entry, fill.status && { fwd, detail, ...fill.status });
  }

  /**
   * Applies a purge-bus event (core/purge.ts): `invalidate` drops, `soft`
   * marks stale, `push` rewrites what its RRsets answer and soft-purges the
   * rest, `ttl` leaves held entries to run out (see residualMs). Every mode
   * raises the version floor, so no fill older than the event is stored
   * afterwards: in `ttl` mode that is what makes the receipt true once the
   * held entries have expired, whatever a lagging parent still holds.
   */
  applyPurge(event: PurgeEvent): void {
    this.zoneSerials.advance(event.zone, event.serial);
    this.floor.raise(event.keys.includes("*") ? [zoneKey(event.zone)] : event.keys, event.serial);
    if (event.mode === "ttl") return;
    this.counters.purges++;
    const keys = this.affected(event);
    this.counters.purgedEntries +=
      event.mode === "push" && event.rrsets
        ? this.push(keys, event.rrsets, event.serial)
        : this.mark(keys, event.mode === "invalidate" ? "hard" : "soft");
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
  residualMs(event: PurgeEvent): number {
    const now = this.clock.now();
    let seconds = 0;
    for (const key of this.affected(event)) {
      const entry = this.storage.get(key);
      if (entry && filledBefore(entry, event.serial)) {
        seconds = Math.max(seconds, servableFor(entry, now));
      }
    }
    return Math.ceil(seconds * 1000);
  }

  /** Purges by URL, surrogate key, zone or all; returns how many entries it touched. */
  purge(p: PurgeRequest): number {
    const surrogate = [
      ...(p.key !== undefined ? [p.key] : []),
      ...(p.zone !== undefined ? [zoneKey(zoneOf(p.zone))] : []),
    ];
    const keys = new Set<string>(p.all ? this.storage.keys() : []);
    for (const sk of surrogate) for (const k of this.storage.keysFor(sk)) keys.add(k);
    const urlKey =
      p.url !== undefined ? cacheKey(new URL(p.url, "http://edge.invalid")) : undefined;
    if (urlKey !== undefined) keys.add(urlKey);
    this.counters.purges++;
    if (p.serial !== undefined) {
      if (p.zone !== undefined) this.zoneSerials.advance(zoneOf(p.zone), p.serial);
      // A URL purge floors the entry's owner-name keys, not its whole zone.
      const urlEntry = urlKey !== undefined ? this.storage.get(urlKey) : undefined;
      const named = urlEntry?.surrogateKeys.filter((k) => !k.startsWith("zone:")) ?? [];
      this.floor.raise([...surrogate, ...named], p.serial);
    }
    const n = this.mark([...keys], p.mode);
    this.counters.purgedEntries += n;
    return n;
  }

  metrics(): EdgeMetrics {
    return { id: this.id, ...this.counters, ...this.storage.stats() };
  }

  /** Cache keys an event touches: its surrogate keys, or everything for "*". */
  private affected(event: PurgeEvent): string[] {
    if (event.keys.includes("*")) return this.storage.keys();
    return [...new Set(event.keys.flatMap((k) => this.storage.keysFor(k)))];
  }

  /** Drops (hard) or marks stale (soft) the entries; returns how many it touched. */
  private mark(keys: readonly string[], mode: PurgeMode): number {
    let n = 0;
    for (const k of keys) {
      if (mode === "hard") {
        if (this.storage.delete(k)) n++;
      } else {
        const entry = this.storage.get(k);
        if (entry) {
          entry.invalidated = true;
          n++;
        }
      }
    }
    return n;
  }

  /**
   * `push`: an entry answered by a pushed RRset is rewritten in place (or
   * dropped when the RRset was deleted); any other entry the event touches
   * is soft-purged. Entries already at or past the event's serial are left
   * alone. Returns how many entries were dropped or marked.
   */
  private push(keys: readonly string[], rrsets: readonly RRset[], serial: number): number {
    const now = this.clock.now();
    const soft: string[] = [];
    const hard: string[] = [];
    for (const key of keys) {
      const entry = this.storage.get(key);
      if (!entry || !filledBefore(entry, serial)) continue;
      const q = questionOf(key);
      const rrset = q && rrsets.find((r) => r.name === q.name && r.type === q.type);
      if (rrset?.data.length === 0) {
        hard.push(key);
        continue;
      }
      const updated = rrset && wellFormed(rrset) && pushedEntry(entry, q, rrset, serial, now);
      if (updated && this.storage.set(updated)) this.counters.pushed++;
      else soft.push(key);
    }
    return this.mark(hard, "hard") + this.mark(soft, "soft");
  }

  /**
   * Read repair (DESIGN.md "Anti-entropy"): a response carrying a newer
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
    this.counters.readRepairedEntries += this.mark(older, "soft");
  }

  /** RFC 5861 §3: one background refresh per key; later requests keep getting the stale entry. */
  private refreshInBackground(
    key: string,
    req: Request,
    prior: CacheEntry,
    opts: HandleOptions,
  ): void {
    const work = this.fill(key, req, prior, undefined).catch((err: unknown) => {
      console.error(`${this.id}: background refresh of ${key} failed: ${String(err)}`);
    });
    opts.waitUntil?.(work);
  }

  /** Request coalescing: concurrent fills of one key (and floor) share one parent request. */
  private fill(
    key: string,
    req: Request,
    prior: CacheEntry | undefined,
    minSerial: number | undefined,
  ): Promise<Fill> {
    const id = minSerial === undefined ? key : `${key}|${minSerial}`;
    const running = this.inflight.get(id);
    if (running) {
      this.counters.coalesced++;
      return running.then((f) => ({ ...f, status: f.status && { ...f.status, collapsed: true } }));
    }
    const work = this.fillFromParent(key, req, prior, minSerial).finally(() =>
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
    prior: CacheEntry | undefined,
    minSerial: number | undefined,
  ): Promise<Fill> {
    let floor = maxSerial(prior?.serial, prior && this.floor.floorOf(prior.surrogateKeys));
    const requestCc = parseCacheControl(req.headers.get("cache-control"));
    const bases = Array<string>(1 + this.floorRetries).fill(this.parent);
    if (this.origin !== undefined && this.origin !== this.parent) bases.push(this.origin);
    let last: Fill | undefined;
    for (const [attempt, base] of bases.entries()) {
      // A retry asks unconditionally: a lagging parent's 304 would only confirm the old entry.
      const validating = attempt === 0 ? prior : undefined;
      const x = await this.exchange(base, key, req, validating, maxSerial(minSerial, floor));
      if (x instanceof Error || x.response.status >= 500) return this.onParentError(key, prior, x);
      const candidate =
        x.response.status === 304 && validating
          ? this.freshened(validating, x)
          : entryFromResponse(key, req.headers, x);
      this.repair(candidate);
      floor = maxSerial(floor, this.floor.floorOf(candidate.surrogateKeys));
      const status: CacheStatus = { fwdStatus: x.response.status };
      if (!olderThan(candidate.serial, floor)) return this.store(candidate, status, requestCc);
      this.counters.floorRefusals++;
      last = { entry: candidate, status: { ...status, detail: "serial-below-floor" } };
    }
    // Still old after every retry: serve it, but do not let it into the cache.
    return last!;
  }

  private freshened(prior: CacheEntry, x: Exchange): CacheEntry {
    this.counters.notModified++;
    return freshen(prior, x);
  }

  private store(entry: CacheEntry, status: CacheStatus, requestCc: CacheControl): Fill {
    const reason = notStorableReason(entry, requestCc);
    if (reason !== undefined) return { entry, status: { ...status, detail: reason } };
    const stored = this.storage.set(entry);
    const now = this.clock.now();
    return {
      entry,
      status: stored
        ? { ...status, stored: true, ttl: remainingTtl(entry, now) }
        : { ...status, detail: "too-large" },
    };
  }

  /**
   * RFC 5861 §4 stale-if-error, else the parent's 5xx, else 502/504 of our
   * own. RFC 9211 §2: an intermediary SHOULD NOT add a Cache-Status member
   * to a response it generates locally unless it is based on a stored one,
   * so the stale answer and the relayed 5xx carry this edge's member and
   * the made-up 502/504 carries none: its JSON body says which edge and why.
   */
  private onParentError(key: string, prior: CacheEntry | undefined, x: Exchange | Error): Fill {
    this.counters.parentErrors++;
    const now = this.clock.now();
    const fwdStatus = x instanceof Error ? undefined : x.response.status;
    if (prior && mayServeOnError(prior, now)) {
      this.counters.stale++;
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
      return { entry: entryFromResponse(key, new Headers(), x), status: { fwdStatus } };
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
    const headers = new Headers();
    for (const name of FORWARDED) {
      const v = req.headers.get(name);
      if (v !== null) headers.set(name, v);
    }
    if (prior?.etag !== undefined && prior.status === 200) headers.set("if-none-match", prior.etag);
    if (required !== undefined) headers.set(H.minSerial, String(required));
    const controller = new AbortController();
    let timer = 0;
    const timedOut = new Promise<never>((_, reject) => {
      timer = this.clock.setTimeout(() => {
        const err = new Error(`did not answer within ${this.timeoutMs} ms`);
        err.name = "TimeoutError";
        controller.abort(err);
        reject(err);
      }, this.timeoutMs);
    });
    this.counters.parentRequests++;
    const requestTime = this.clock.now();
    try {
      const parentReq = new Request(base + key, { headers, signal: controller.signal });
      const response = await Promise.race([this.fetch(parentReq), timedOut]);
      const responseTime = this.clock.now();
      const body = new Uint8Array(await Promise.race([response.arrayBuffer(), timedOut]));
      return { requestTime, responseTime, response, body };
    } catch (err) {
      if (err instanceof Error && err.name === "TimeoutError") return err;
      return new Error(`unreachable: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  /** Forwards a request the cache does not serve (writes, POST DoH, authenticated reads). */
  private async pass(req: Request, fwd: Fwd): Promise<Response> {
    this.counters.passThrough++;
    const url = new URL(req.url);
    const headers = new Headers(req.headers);
    // The body is re-sent whole: fetch frames it itself.
    for (const h of ["host", "connection", "content-length", "transfer-encoding"])
      headers.delete(h);
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
    // RFC 9111 §4.4: a successful unsafe request invalidates the stored target.
    if (hasBody && response.status < 400) this.storage.delete(cacheKey(url));
    const out = new Headers(storedHeaders(response.headers));
    out.set(
      "cache-status",
      appendCacheStatus(out.get("cache-status") ?? undefined, formatCacheStatus(this.id, { fwd })),
    );
    return new Response(response.body, { status: response.status, headers: out });
  }

  /** Serves `entry`, with this edge's Cache-Status member unless it generated the response. */
  private respond(req: Request, entry: CacheEntry, status: CacheStatus | undefined): Response {
    // A plain object, not Headers: @hono/node-server writes it without copying.
    const headers: Record<string, string> = {};
    for (const [k, v] of entry.headers) headers[k] = k in headers ? `${headers[k]}, ${v}` : v;
    headers.age = ageHeader(currentAge(entry, this.clock.now()));
    if (status) {
      const own = formatCacheStatus(this.id, { ...status, key: entry.key });
      headers["cache-status"] = appendCacheStatus(headers["cache-status"], own);
    }
    // RFC 9110 §13.1.2: the cache answers the client's own If-None-Match.
    const notModified =
      entry.status === 200 && noneMatch(req.headers.get("if-none-match"), entry.etag);
    const status_ = notModified ? 304 : entry.status;
    const noBody = req.method === "HEAD" || status_ === 304 || status_ === 204;
    return new Response(noBody ? null : entry.body, { status: status_, headers });
  }
}

const ZONE_KEY = zoneKey("");

/** Whether an entry may hold data from before `serial` (one without X-Serial may). */
function filledBefore(entry: CacheEntry, serial: number): boolean {
  return entry.serial === undefined || olderThan(entry.serial, serial);
}

/** A zone name as given in POST /purge, in the form surrogate keys use. */
function zoneOf(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

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
