/**
 * The resolver's cache policy, pure: time comes from the injected Clock and
 * answers from the injected upstream function. It decides fresh, prefetch,
 * refresh-or-stale (RFC 8767), coalesces concurrent fetches, and applies
 * purges. Storage is lru-cache bounded by bytes.
 */
import { LRUCache } from "lru-cache";
import type { Clock } from "../core/clock.ts";
import { isInZone, normaliseName, tryNormaliseName } from "../core/names.ts";
import type { PurgeEvent, PurgeMode } from "../core/purge.ts";
import { RR_TYPE_CODES, type RRset } from "../core/records.ts";
import { serialLt } from "../core/serial.ts";
import type { SyncTarget } from "../core/sync.ts";
import {
  answerFromRRset,
  type StoredAnswer,
  storeAnswer,
  type TtlPolicy,
  UpstreamError,
} from "./answer.ts";
import { VersionFloor } from "./floor.ts";
import { readName } from "./message.ts";

/** What an upstream returns: the DNS response and how long it sat in HTTP caches. */
export interface UpstreamResponse {
  message: Buffer;
  /** Seconds, from the HTTP Age header (RFC 8484 §5.1); 0 for plain DNS. */
  age: number;
  /** The origin's zone serial (X-Serial), when the upstream speaks HTTP. */
  serial?: number;
  /**
   * RFC 5861 §3 `stale-while-revalidate` seconds of the response's
   * Cache-Control: how long past its TTL a cache on the path may hand it out
   * while it refreshes in the background, with the origin healthy.
   */
  staleWhileRevalidate?: number;
}

/**
 * Fetches (wire name, qtype); rejects when the upstream fails. `minSerial`
 * asks for an answer at least that new (read-your-writes, `X-Min-Serial`);
 * an upstream without serials (plain DNS to the origin) ignores it.
 */
export type Upstream = (
  name: Buffer,
  qtype: number,
  minSerial?: number,
  /** A prefetch: ask every cache on the path to revalidate (RFC 9111 §5.2.1.4 no-cache). */
  revalidate?: boolean,
) => Promise<UpstreamResponse>;

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

export interface Served {
  answer: StoredAnswer;
  /** Whole seconds since it was stored. */
  elapsed: number;
  stale: boolean;
}

export interface PurgeSelector {
  name?: string;
  zone?: string;
  all?: boolean;
}

interface Flight {
  name: string;
  promise: Promise<Served>;
  /** Set by a purge while in flight: the result is answered but not stored. */
  purged: boolean;
}

interface Fetched {
  answer: StoredAnswer;
  serial: number | undefined;
  staleWhileRevalidate: number;
  /** Older than the version floor even after the retry: answer it, do not store it. */
  belowFloor: boolean;
}

/** Rough per-entry memory beyond the answer bytes (objects, key, index). */
const ENTRY_OVERHEAD = 256;

export class ResolverCache implements SyncTarget {
  readonly metrics = {
    hits: 0,
    misses: 0,
    staleServed: 0,
    prefetches: 0,
    coalesced: 0,
    upstreamQueries: 0,
    upstreamFailures: 0,
    evictions: 0,
    purged: 0,
    /** Upstream answers older than the version floor (not stored). */
    floorRefusals: 0,
    /** Entries rewritten in place by `push` events. */
    pushed: 0,
    /** Upstream answers past their TTL and stale-while-revalidate (stale-if-error copies): failed refreshes. */
    upstreamStale: 0,
  };
  private readonly cache: LRUCache<string, CacheEntry>;
  private readonly inflight = new Map<string, Flight>();
  /** Owner name -> keys of the entries whose answer depends on it (purge by name). */
  private readonly byOwner = new Map<string, Set<string>>();
  private readonly floor: VersionFloor;
  private served: readonly string[];

  constructor(
    readonly id: string,
    private readonly config: CacheConfig,
    private readonly clock: Clock,
    private readonly upstream: Upstream,
    private readonly onUpstreamError: (err: unknown, name: string) => void = () => {},
  ) {
    this.served = config.zones ?? [];
    this.floor = new VersionFloor(this.served);
    this.cache = new LRUCache<string, CacheEntry>({
      maxSize: config.maxBytes,
      sizeCalculation: (e) => e.answer.wire.length + e.key.length + ENTRY_OVERHEAD,
      dispose: (e, _key, reason) => {
        this.unindex(e);
        if (reason === "evict") this.metrics.evictions++;
      },
    });
  }

  get entries(): number {
    return this.cache.size;
  }

  get bytes(): number {
    return this.cache.calculatedSize;
  }

  /** A fresh or stale answer now, or a promise of one; rejects when nothing can be served. */
  lookup(key: string, wireName: Buffer, qtype: number): Served | Promise<Served> {
    const now = this.clock.now();
    const e = this.cache.get(key);
    if (e) {
      if (now < e.expiresAt) {
        this.metrics.hits++;
        if (now >= e.prefetchAt) this.prefetch(e, now);
        return { answer: e.answer, elapsed: Math.floor((now - e.storedAt) / 1000), stale: false };
      }
      if (now < e.expiresAt + this.config.maxStaleMs) return this.expired(e, now);
      this.cache.delete(key);
    }
    this.metrics.misses++;
    return this.fetch(key, wireName, qtype).then(this.countStale);
  }

  /** Counts a stale answer once per client, not once per (coalesced) fetch. */
  private readonly countStale = (s: Served): Served => {
    if (s.stale) this.metrics.staleServed++;
    return s;
  };

  /** RFC 8767 §5: try the upstream first; answer stale if it fails or the client timer fires first. */
  private expired(e: CacheEntry, now: number): Served | Promise<Served> {
    if (e.failedAt !== undefined && now - e.failedAt < this.config.failureRecheckMs) {
      return this.stale(e);
    }
    const refresh = this.fetch(e.key, e.wireName, e.qtype);
    return new Promise((resolve) => {
      let answered = false;
      // The first of the refresh and the client timer answers; fill() still stores a late refresh.
      const answer = (served: () => Served) => {
        if (answered) return;
        answered = true;
        this.clock.clearTimeout(timer);
        resolve(served());
      };
      const timer = this.clock.setTimeout(
        () => answer(() => this.stale(e)),
        this.config.clientTimeoutMs,
      );
      refresh.then(
        (served) => answer(() => this.countStale(served)),
        // fetch() has counted and reported the failure; the stale answer is the fallback.
        () => answer(() => this.stale(e)),
      );
    });
  }

  private stale(e: CacheEntry): Served {
    this.metrics.staleServed++;
    return { answer: e.answer, elapsed: 0, stale: true };
  }

  private prefetch(e: CacheEntry, now: number): void {
    if (this.inflight.has(e.key)) return;
    if (e.failedAt !== undefined && now - e.failedAt < this.config.failureRecheckMs) return;
    this.metrics.prefetches++;
    // fetch() counts and reports failures; the current answer stays served meanwhile.
    // Revalidating through the tiers: an edge's copy expires when ours does, so only a
    // copy revalidated up to the origin gains anything.
    this.fetch(e.key, e.wireName, e.qtype, true).catch(() => undefined);
  }

  /** One upstream request per key at a time (coalescing); the result is stored when cacheable. */
  private fetch(key: string, wireName: Buffer, qtype: number, revalidate = false): Promise<Served> {
    const running = this.inflight.get(key);
    if (running) {
      this.metrics.coalesced++;
      return running.promise;
    }
    const state = { name: readName(wireName, 0), purged: false };
    const flight: Flight = Object.assign(state, {
      promise: this.fill(state, key, wireName, qtype, revalidate).finally(() => {
        if (this.inflight.get(key) === flight) this.inflight.delete(key);
      }),
    });
    this.inflight.set(key, flight);
    return flight.promise;
  }

  private async fill(
    flight: Omit<Flight, "promise">,
    key: string,
    wireName: Buffer,
    qtype: number,
    revalidate: boolean,
  ): Promise<Served> {
    let got: Fetched;
    try {
      got = await this.ask(flight.name, key, wireName, qtype, revalidate);
      const { staleness } = got.answer;
      if (staleness !== undefined && staleness * 1000 >= this.config.maxStaleMs) {
        throw new UpstreamError(
          `upstream answered with data that expired ${staleness} s ago, beyond max-stale`,
        );
      }
    } catch (err) {
      this.metrics.upstreamFailures++;
      const old = this.cache.peek(key);
      if (old) old.failedAt = this.clock.now();
      this.onUpstreamError(err, flight.name);
      throw err;
    }
    const { staleness } = got.answer;
    if (staleness !== undefined && staleness > got.staleWhileRevalidate) {
      return this.staleFromUpstream(flight, key, wireName, qtype, got, staleness);
    }
    const { answer, serial, belowFloor } = got;
    // Within stale-while-revalidate the path is refreshing: answer it, keep nothing, ask again next time.
    if (answer.ttl > 0 && staleness === undefined && !flight.purged && !belowFloor) {
      this.store(this.entry(key, flight.name, wireName, qtype, answer, serial, this.clock.now()));
    }
    return { answer, elapsed: 0, stale: false };
  }

  /**
   * RFC 8767 §4-5: an answer that arrives expired beyond its
   * stale-while-revalidate window is a cache's RFC 5861 §4 stale-if-error
   * copy: the path could not refresh, so this refresh failed. The client
   * gets a stale answer (TTL 30, EDE 3): our own entry, or the upstream's
   * copy when we have none or it carries a newer X-Serial; the failure
   * recheck timer starts, so the name is not asked again for 30 s. The kept
   * copy counts its max-stale from when it expired upstream, not from its
   * arrival.
   */
  private staleFromUpstream(
    flight: Omit<Flight, "promise">,
    key: string,
    wireName: Buffer,
    qtype: number,
    got: Fetched,
    staleness: number,
  ): Served {
    this.metrics.upstreamStale++;
    this.onUpstreamError(
      new UpstreamError(`upstream answered with data ${staleness} s past its TTL (stale)`),
      flight.name,
    );
    const now = this.clock.now();
    const old = this.cache.peek(key);
    const newer =
      old?.serial !== undefined && got.serial !== undefined && serialLt(old.serial, got.serial);
    if (old && !newer) {
      old.failedAt = now;
      return { answer: old.answer, elapsed: 0, stale: true };
    }
    const e = this.entry(key, flight.name, wireName, qtype, got.answer, got.serial, now);
    e.expiresAt = now - staleness * 1000;
    e.failedAt = now;
    if (!flight.purged && !got.belowFloor) this.store(e);
    return { answer: got.answer, elapsed: 0, stale: true };
  }

  /**
   * Asks the upstream for an answer at least as new as the version floor of
   * the name (and of the names its cached answer depends on). An older answer
   * (an upstream cache that has not applied the purge yet) is asked for once
   * more with the floor; if it is still old it is answered but never stored.
   */
  private async ask(
    name: string,
    key: string,
    wireName: Buffer,
    qtype: number,
    revalidate: boolean,
  ): Promise<Fetched> {
    let required = this.floor.of(name, this.cache.peek(key)?.answer.owners);
    for (let attempt = 0; ; attempt++) {
      this.metrics.upstreamQueries++;
      const res = await this.upstream(wireName, qtype, required, revalidate);
      const answer = storeAnswer(res.message, wireName, qtype, res.age, this.config);
      // Read after the answer: a purge may have raised the floor while the request was out.
      required = this.floor.of(name, answer.owners);
      const belowFloor =
        res.serial !== undefined && required !== undefined && serialLt(res.serial, required);
      if (belowFloor) this.metrics.floorRefusals++;
      if (!belowFloor || attempt > 0) {
        const swr = res.staleWhileRevalidate ?? 0;
        return { answer, serial: res.serial, belowFloor, staleWhileRevalidate: swr };
      }
    }
  }

  private entry(
    key: string,
    name: string,
    wireName: Buffer,
    qtype: number,
    answer: StoredAnswer,
    serial: number | undefined,
    now: number,
  ): CacheEntry {
    const ttlMs = answer.ttl * 1000;
    return {
      key,
      name,
      wireName,
      qtype,
      answer,
      storedAt: now,
      expiresAt: now + ttlMs,
      prefetchAt: now + ttlMs * (1 - this.config.prefetchFraction),
      serial,
      failedAt: undefined,
    };
  }

  private store(e: CacheEntry): void {
    this.cache.set(e.key, e);
    // set() disposed any previous entry (and its index) synchronously; index the new one if kept.
    if (!this.cache.has(e.key)) return;
    for (const owner of e.answer.owners) {
      const keys = this.byOwner.get(owner) ?? new Set<string>();
      this.byOwner.set(owner, keys.add(e.key));
    }
  }

  private unindex(e: CacheEntry): void {
    for (const owner of e.answer.owners) {
      const keys = this.byOwner.get(owner);
      keys?.delete(e.key);
      if (keys?.size === 0) this.byOwner.delete(owner);
    }
  }

  /**
   * Replaces the zones served (normalised names), e.g. when the origin
   * creates or deletes one. A new zone's names are judged by their own zone
   * (version floors). Entries and fetches no served zone covers any more are
   * dropped: the handler refuses those names now, and a zone created again
   * later must not bring back answers from before.
   */
  setZones(zones: readonly string[]): void {
    for (const z of zones) this.floor.addZone(z);
    const removed = this.served.some((z) => !zones.includes(z));
    this.served = [...zones];
    if (!removed) return;
    const covered = (name: string) => zones.some((z) => isInZone(name, z));
    for (const e of [...this.cache.values()]) if (!covered(e.name)) this.cache.delete(e.key);
    for (const [key, flight] of this.inflight) {
      if (covered(flight.name)) continue;
      flight.purged = true;
      this.inflight.delete(key);
    }
  }

  /**
   * Hard purge drops entries; soft purge marks them expired, so the next query
   * refreshes (and may still answer stale within RFC 8767's bounds). Returns how many were hit.
   */
  /**
   * The origin's feed says the zone is below our floor (a floor raised by an
   * event the origin never published): forget the zone's floors and drop its
   * answers, so it is served again (core/sync.ts resets it, then resyncs).
   */
  resetZone(zone: string): void {
    this.floor.forgetZone(zone);
    this.purge({ zone }, "hard");
  }

  purge(target: PurgeSelector, mode: PurgeMode): number {
    const now = this.clock.now();
    this.dropFlights(target);
    const keys = this.matching(target);
    for (const key of keys) {
      if (mode === "hard") this.cache.delete(key);
      else this.expire(key, now);
    }
    this.metrics.purged += keys.length;
    return keys.length;
  }

  /**
   * The purge bus entry point: keys are owner names, "zone:<zone>", or "*".
   * Every mode raises the version floor of its keys to the event's serial,
   * `ttl` included: entries still run to expiry, but no refetch may bring
   * back a version older than the change (that is what makes the ttl receipt,
   * sent after `residualMs`, true).
   */
  applyPurge(event: PurgeEvent): void {
    const targets = event.keys.map(selectorOf);
    for (const t of targets) {
      if (t.name !== undefined) this.floor.raiseName(t.name, event.zone, event.serial);
      else this.floor.raiseZone(t.zone ?? event.zone, event.serial);
    }
    if (event.mode === "ttl") return;
    if (event.mode === "push") {
      this.push(event, targets);
      return;
    }
    const mode: PurgeMode = event.mode === "invalidate" ? "hard" : "soft";
    for (const t of targets) this.purge(t, mode);
  }

  /**
   * How long (ms from now) this cache may still answer, fresh, with data of
   * `event`'s keys older than its serial. Entries without a serial, or whose
   * serial belongs to another zone (a CNAME into the changed zone), count as
   * old. Serve-stale is not counted: RFC 8767 answers stale only while the
   * upstream fails, marked with EDE 3, and a refresh asks for the new serial.
   */
  residualMs(event: PurgeEvent): number {
    const now = this.clock.now();
    let until = now;
    for (const key of new Set(event.keys.map(selectorOf).flatMap((t) => this.matching(t)))) {
      const e = this.cache.peek(key);
      if (e && this.predates(e, event)) until = Math.max(until, e.expiresAt);
    }
    return until - now;
  }

  private predates(e: CacheEntry, event: PurgeEvent): boolean {
    return (
      e.serial === undefined ||
      this.floor.zoneOf(e.name) !== event.zone ||
      serialLt(e.serial, event.serial)
    );
  }

  /**
   * `push`: an entry answered directly by a pushed RRset (same name and type,
   * no CNAME chain) is rewritten in place with the new data, TTL and serial;
   * a deleted RRset (empty data) drops it. Every other entry the event
   * touches is soft-purged, so it refreshes on next use.
   */
  private push(event: PurgeEvent, targets: PurgeSelector[]): void {
    const now = this.clock.now();
    const sets = new Map<string, RRset>();
    const touched = [...targets];
    for (const r of event.rrsets ?? []) {
      const name = normaliseName(r.name);
      sets.set(`${name}/${RR_TYPE_CODES[r.type]}`, { ...r, name });
      touched.push({ name });
    }
    const keys = new Set<string>();
    for (const t of touched) {
      this.dropFlights(t);
      for (const key of this.matching(t)) keys.add(key);
    }
    for (const key of keys) {
      const e = this.cache.peek(key);
      if (!e) continue;
      const rrset = sets.get(`${e.name}/${e.qtype}`);
      if (rrset === undefined || !e.answer.direct) {
        this.expire(key, now);
        this.metrics.purged++;
      } else if (!this.rewrite(e, rrset, event.serial, now)) {
        this.cache.delete(key);
        this.metrics.purged++;
      }
    }
  }

  /** Replaces `e` with the answer `rrset` gives; false when there is nothing to keep (deleted, TTL 0). */
  private rewrite(e: CacheEntry, rrset: RRset, serial: number, now: number): boolean {
    if (rrset.data.length === 0) return false;
    const answer = answerFromRRset(rrset, e.wireName, e.qtype, this.config);
    if (answer.ttl === 0) return false;
    this.store(this.entry(e.key, e.name, e.wireName, e.qtype, answer, serial, now));
    this.metrics.pushed++;
    return true;
  }

  /** Keys of the cached entries a selector hits (by name: every answer that has it as an owner). */
  private matching(target: PurgeSelector): string[] {
    if (target.name !== undefined) return [...(this.byOwner.get(target.name) ?? [])];
    return [...this.cache.values()].filter((e) => matches(target, e.name)).map((e) => e.key);
  }

  /**
   * Fetches in flight for purged names are answered but not stored, and
   * leave the coalescing map: a query after the purge starts its own fetch
   * instead of joining one that may bring the old version.
   */
  private dropFlights(target: PurgeSelector): void {
    for (const [key, flight] of this.inflight) {
      if (!matches(target, flight.name)) continue;
      flight.purged = true;
      this.inflight.delete(key);
    }
  }

  private expire(key: string, now: number): void {
    const e = this.cache.peek(key);
    if (!e) return;
    e.expiresAt = Math.min(e.expiresAt, now);
    e.failedAt = undefined;
  }
}

/** A purge-bus key as a selector: "*", "zone:<zone>", or an owner name. */
/**
 * The entries a purge key names. A key that is no valid name (a cache tag from
 * elsewhere) names no entry here: it is kept as is, so it matches nothing,
 * rather than failing the whole event.
 */
function selectorOf(key: string): PurgeSelector {
  if (key === "*") return { all: true };
  if (key.startsWith("zone:")) return { zone: tryNormaliseName(key.slice(5)) ?? key };
  return { name: tryNormaliseName(key) ?? key };
}

function matches(target: PurgeSelector, name: string): boolean {
  return (
    target.all === true ||
    (target.zone !== undefined && isInZone(name, target.zone)) ||
    name === target.name
  );
}
