/**
 * The resolver's cache engine: time comes from the injected Clock, answers
 * from the injected upstream function, and entries live in the injected
 * storage (storage.ts; slabs bounded by bytes by default, storage-lru.ts). It looks up,
 * fills, coalesces concurrent fetches and retries fills below the version
 * floor, by the rules of policy.ts (fresh, prefetch, refresh-or-stale, RFC
 * 8767); purge.ts is its bus side.
 */
import type { Clock } from "../core/clock.ts";
import { VersionFloor } from "../core/floor.ts";
import { InFlight } from "../core/in-flight.ts";
import { isInZone } from "../core/names.ts";
import type { PurgeEvent, PurgeMode } from "../core/purge.ts";
import { olderThan, serialLt } from "../core/serial.ts";
import type { SyncTarget } from "../core/sync.ts";
import { type StoredAnswer, storeAnswer, UpstreamError } from "./answer.ts";
import { HEADER_LEN, nameOfWire } from "./message.ts";
import {
  type CacheConfig,
  type CacheEntry,
  newEntry,
  recheckPending,
  servedOnError,
  upstreamFreshness,
  withinMaxStale,
  zoneOf,
} from "./policy.ts";
import {
  applyPurge,
  dropFlights,
  type FlightMark,
  type PurgeScope,
  type PurgeSelector,
  purge,
  residualMs,
} from "./purge.ts";
import type { ResolverStorage } from "./storage.ts";
import { LruStorage } from "./storage-lru.ts";

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
  /**
   * The response's RFC 9211 Cache-Status field, as it came (null: none):
   * read only for an answer that arrives past its TTL, to tell a cache's
   * stale-if-error copy from a copy that expired on the way (policy.ts
   * `servedOnError`).
   */
  cacheStatus?: string | null;
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

export interface Served {
  answer: StoredAnswer;
  /** Whole seconds since it was stored. */
  elapsed: number;
  stale: boolean;
}

/**
 * One upstream request in flight for a key. A class, its fields all set in
 * the constructor: an object grown by `Object.assign` keeps the added field
 * out of line, a second object per request, and a refresh wave keeps
 * thousands in flight at once (bench/results/simulate.md).
 */
class Flight implements FlightMark {
  purged = false;
  promise: Promise<Served> | undefined;
  constructor(readonly name: string) {}
}

/** No zones configured: one empty list for every cache (it is replaced, never written). */
const NO_ZONES: readonly string[] = Object.freeze([]);

/**
 * Nothing to do: with a prefetch's failure (fill() has counted and reported
 * it), and with an upstream error no one listens to. One function, not a
 * closure per prefetch or per cache.
 */
function ignore(): undefined {
  return undefined;
}

interface Fetched {
  answer: StoredAnswer;
  serial: number | undefined;
  staleWhileRevalidate: number;
  /** The response's Cache-Status field (`UpstreamResponse.cacheStatus`). */
  cacheStatus: string | null | undefined;
  /** Older than the version floor even after the retry: answer it, do not store it. */
  belowFloor: boolean;
}

export class ResolverCache implements SyncTarget {
  private readonly counters = {
    hits: 0,
    misses: 0,
    staleServed: 0,
    prefetches: 0,
    coalesced: 0,
    upstreamQueries: 0,
    upstreamFailures: 0,
    purged: 0,
    /** Upstream answers older than the version floor (not stored). */
    floorRefusals: 0,
    /** Entries rewritten in place by `push` events. */
    pushed: 0,
    /** Upstream answers past their TTL and stale-while-revalidate (stale-if-error copies): failed refreshes. */
    upstreamStale: 0,
  };
  private readonly inflight = new InFlight<Flight>();
  private readonly floor = new VersionFloor();
  /** The zones served and seen in events: a name's floor is its deepest zone's. */
  private readonly zones = new Set<string>();
  private readonly scope: PurgeScope;
  private served: readonly string[];

  constructor(
    readonly id: string,
    private readonly config: CacheConfig,
    private readonly clock: Clock,
    private readonly upstream: Upstream,
    private readonly onUpstreamError: (err: unknown, name: string) => void = ignore,
    private readonly storage: ResolverStorage = new LruStorage(config.maxBytes),
  ) {
    // Assigned here, not as a field initializer: the TypeScript loader
    // (tsx, esbuild keepNames) names a field's arrow with defineProperty,
    // which makes it a dictionary-mode object with a property table of its
    // own, per cache; a simulator holds one cache per resolver.
    this.countStale = (s) => {
      if (s.stale) this.counters.staleServed++;
      return s;
    };
    this.served = config.zones ?? NO_ZONES;
    for (const z of this.served) this.zones.add(z);
    this.scope = {
      storage,
      floor: this.floor,
      zones: this.zones,
      inflight: this.inflight,
      clock,
      config,
      metrics: this.counters,
    };
  }

  /** Counters since start, and the storage's evictions. */
  get metrics(): Readonly<typeof this.counters & { evictions: number }> {
    return { ...this.counters, evictions: this.storage.stats().evictions };
  }

  get entries(): number {
    return this.storage.stats().entries;
  }

  get bytes(): number {
    return this.storage.stats().bytes;
  }

  /** The entries whose answer depends on owner `name`, read without touching recency (admin GET /cache). */
  entriesFor(name: string): CacheEntry[] {
    const out: CacheEntry[] = [];
    for (const k of this.storage.keysFor(name)) {
      const e = this.storage.peek(k);
      if (e) out.push(e);
    }
    return out;
  }

  /** The storage, as the hot path renders from it (resolver/wire.ts `renderStored`). */
  get store(): ResolverStorage {
    return this.storage;
  }

  /** Whole seconds since the last `hit` was stored (set by `hit`, so a hit allocates nothing). */
  hitElapsed = 0;

  /**
   * The hot path: the slot of a fresh answer to (`wireName`, `qtype`), the
   * hit counted, the entry marked used and a prefetch started in the last
   * tenth of its TTL; its age in `hitElapsed`. -1 when it is no fresh hit:
   * then `lookup` decides (stale, refresh, miss). No object is made.
   */
  hit(wireName: Buffer, qtype: number, key: string): number {
    const slot = this.storage.find(wireName, qtype);
    const due = slot < 0 ? -1 : this.take(slot);
    if (due > 0) this.prefetch(key, wireName, qtype);
    return due < 0 ? -1 : slot;
  }

  /**
   * `hit` for a question still in the query (`query[12..nameEnd)`, any
   * case): the handler's fast path, which copies no name and builds no key
   * unless a prefetch is due.
   */
  hitInQuery(query: Buffer, nameEnd: number, qtype: number): number {
    const slot = this.storage.findInQuery(query, nameEnd, qtype);
    const due = slot < 0 ? -1 : this.take(slot);
    if (due > 0) {
      const wireName = Buffer.allocUnsafe(nameEnd - HEADER_LEN);
      for (let i = 0, j = HEADER_LEN; j < nameEnd; i++, j++) {
        const b = query[j]!;
        wireName[i] = b >= 0x41 && b <= 0x5a ? b | 0x20 : b;
      }
      // The key resolver/query.ts makes: coalesces with the slow path's fetches.
      this.prefetch(`${wireName.toString("latin1")}/${qtype}`, wireName, qtype);
    }
    return due < 0 ? -1 : slot;
  }

  /** A fresh slot counted and marked used: 0, or 1 when its prefetch is due; -1 when it is not fresh. */
  private take(slot: number): number {
    const s = this.storage;
    const now = this.clock.now();
    if (!(now < s.expiresAt(slot))) return -1;
    s.touch(slot);
    this.counters.hits++;
    this.hitElapsed = Math.floor((now - s.storedAt(slot)) / 1000);
    if (now < s.prefetchAt(slot)) return 0;
    const failedAt = s.failedAt(slot);
    // RFC 8767 §4 failure recheck timer (policy.ts recheckPending, on the slot's fields).
    return !Number.isNaN(failedAt) && now - failedAt < this.config.failureRecheckMs ? 0 : 1;
  }

  /** A fresh or stale answer now, or a promise of one; rejects when nothing can be served. */
  lookup(key: string, wireName: Buffer, qtype: number): Served | Promise<Served> {
    const fresh = this.hit(wireName, qtype, key);
    if (fresh >= 0) {
      return { answer: this.storage.answerOf(fresh), elapsed: this.hitElapsed, stale: false };
    }
    const now = this.clock.now();
    const slot = this.storage.find(wireName, qtype);
    if (slot >= 0) {
      this.storage.touch(slot);
      const e = this.storage.at(slot);
      if (withinMaxStale(e, now, this.config)) return this.expired(e, key, wireName, qtype, now);
      this.storage.delete(e.key);
    }
    this.counters.misses++;
    return this.fetch(key, wireName, qtype).then(this.countStale);
  }

  /** The stored entry for the question, recency untouched. */
  private entryOf(wireName: Buffer, qtype: number): CacheEntry | undefined {
    const slot = this.storage.find(wireName, qtype);
    return slot < 0 ? undefined : this.storage.at(slot);
  }

  /** Counts a stale answer once per client, not once per (coalesced) fetch. */
  private readonly countStale: (s: Served) => Served;

  /** RFC 8767 §5: try the upstream first; answer stale if it fails or the client timer fires first. */
  private expired(
    e: CacheEntry,
    key: string,
    wireName: Buffer,
    qtype: number,
    now: number,
  ): Served | Promise<Served> {
    // Read now: by the time the timer fires the slot may hold another entry (the view keeps this).
    const answer = e.answer;
    if (recheckPending(e, now, this.config)) return this.stale(answer);
    const refresh = this.fetch(key, wireName, qtype);
    return new Promise((resolve) => {
      let answered = false;
      // The first of the refresh and the client timer answers; fill() still stores a late refresh.
      const respond = (served: () => Served) => {
        if (answered) return;
        answered = true;
        this.clock.clearTimeout(timer);
        resolve(served());
      };
      const timer = this.clock.setTimeout(
        () => respond(() => this.stale(answer)),
        this.config.clientTimeoutMs,
      );
      refresh.then(
        (served) => respond(() => this.countStale(served)),
        // fetch() has counted and reported the failure; the stale answer is the fallback.
        () => respond(() => this.stale(answer)),
      );
    });
  }

  private stale(answer: StoredAnswer): Served {
    this.counters.staleServed++;
    return { answer, elapsed: 0, stale: true };
  }

  private prefetch(key: string, wireName: Buffer, qtype: number): void {
    if (this.inflight.get(key) !== undefined) return;
    this.counters.prefetches++;
    // fetch() counts and reports failures; the current answer stays served meanwhile.
    // Revalidating through the tiers: an edge's copy expires when ours does, so only a
    // copy revalidated up to the origin gains anything.
    this.fetch(key, wireName, qtype, true).catch(ignore);
  }

  /** One upstream request per key at a time (coalescing); the result is stored when cacheable. */
  private fetch(key: string, wireName: Buffer, qtype: number, revalidate = false): Promise<Served> {
    const running = this.inflight.get(key);
    if (running) {
      this.counters.coalesced++;
      return running.promise!;
    }
    const flight = new Flight(nameOfWire(wireName));
    // fill() settles in a later turn, so the flight is in the map before it leaves it.
    const promise = this.fill(flight, key, wireName, qtype, revalidate);
    flight.promise = promise;
    this.inflight.set(key, flight);
    return promise;
  }

  /**
   * The upstream's answer for `key`, stored when cacheable. A promise chain,
   * not an async function (see `askWith`); the flight leaves the map as the
   * chain settles, not in a `finally` on its promise (two more closures, a
   * context and a promise per request out).
   */
  private fill(
    flight: Flight,
    key: string,
    wireName: Buffer,
    qtype: number,
    revalidate: boolean,
  ): Promise<Served> {
    let asked: Promise<Fetched>;
    try {
      asked = this.ask(flight.name, wireName, qtype, revalidate);
    } catch (err) {
      asked = Promise.reject(err);
    }
    return asked.then(
      (got) => {
        try {
          return this.filled(flight, key, wireName, qtype, got);
        } finally {
          this.landed(key, flight);
        }
      },
      (err: unknown) => {
        try {
          return this.upstreamFailed(flight, wireName, qtype, err);
        } finally {
          this.landed(key, flight);
        }
      },
    );
  }

  /** The flight for `key` has settled: it leaves the map unless a purge dropped it already. */
  private landed(key: string, flight: Flight): void {
    if (this.inflight.get(key) === flight) this.inflight.delete(key);
  }

  /** What `fill` answers with the upstream's answer `got`. */
  private filled(
    flight: FlightMark,
    key: string,
    wireName: Buffer,
    qtype: number,
    got: Fetched,
  ): Served {
    const { staleness } = got.answer;
    const use = upstreamFreshness(
      staleness,
      got.staleWhileRevalidate,
      this.config,
      // Read only past stale-while-revalidate, where it decides.
      staleness !== undefined && staleness > got.staleWhileRevalidate
        ? servedOnError(got.cacheStatus)
        : undefined,
    );
    if (use === "too-stale") {
      const err = new UpstreamError(
        `upstream answered with data that expired ${got.answer.staleness} s ago, beyond max-stale`,
      );
      return this.upstreamFailed(flight, wireName, qtype, err);
    }
    const question = { key, name: flight.name, wireName, qtype };
    if (use === "failed") return this.staleFromUpstream(flight, question, got);
    const { answer, serial, belowFloor } = got;
    // Within stale-while-revalidate the path is refreshing, or the copy expired on the way
    // (`expired`): answer it, keep nothing, ask again next time.
    if (answer.ttl > 0 && use === "fresh" && !flight.purged && !belowFloor) {
      this.storage.set(newEntry(question, answer, serial, this.clock.now(), this.config));
    }
    // Below the floor even after the retry: this node has acked a newer
    // serial (its receipt says so) and the path cannot supply it yet. The
    // data is answered rather than refused, but as what it is: stale (RFC
    // 8914 §4.4 EDE 3, the stale TTL of RFC 8767 §4), not as the current
    // version, which would make the receipt false.
    return { answer, elapsed: 0, stale: belowFloor };
  }

  /** The upstream failed (or answered beyond max-stale): counted, reported, the entry's recheck timer started. */
  private upstreamFailed(flight: FlightMark, wireName: Buffer, qtype: number, err: unknown): never {
    this.counters.upstreamFailures++;
    const old = this.entryOf(wireName, qtype);
    if (old) old.failedAt = this.clock.now();
    this.onUpstreamError(err, flight.name);
    throw err;
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
    flight: FlightMark,
    question: Pick<CacheEntry, "key" | "name" | "wireName" | "qtype">,
    got: Fetched,
  ): Served {
    const staleness = got.answer.staleness ?? 0;
    this.counters.upstreamStale++;
    this.onUpstreamError(
      new UpstreamError(`upstream answered with data ${staleness} s past its TTL (stale)`),
      flight.name,
    );
    const now = this.clock.now();
    const old = this.entryOf(question.wireName, question.qtype);
    const newer =
      old?.serial !== undefined && got.serial !== undefined && serialLt(old.serial, got.serial);
    if (old && !newer) {
      old.failedAt = now;
      return { answer: old.answer, elapsed: 0, stale: true };
    }
    const e = newEntry(question, got.answer, got.serial, now, this.config);
    e.expiresAt = now - staleness * 1000;
    e.failedAt = now;
    if (!flight.purged && !got.belowFloor) this.storage.set(e);
    return { answer: got.answer, elapsed: 0, stale: true };
  }

  /**
   * Asks the upstream for an answer at least as new as the version floor of
   * the name (and of the names its cached answer depends on). An older answer
   * (an upstream cache that has not applied the purge yet) is asked for once
   * more with the floor; if it is still old it is answered but never stored.
   */
  private ask(
    name: string,
    wireName: Buffer,
    qtype: number,
    revalidate: boolean,
  ): Promise<Fetched> {
    // The held answer's owners only: not its view (key and name strings) nor a copy of its wire.
    const held = this.storage.find(wireName, qtype);
    const required = this.floorOf(name, held < 0 ? undefined : this.storage.ownersOf(held));
    return this.askWith(name, wireName, qtype, revalidate, required, 0);
  }

  /**
   * One request of `ask`, with the floor `required`. A promise chain, not an
   * async function's loop: a suspended async function holds a generator, its
   * registers, its promise and its await's closures for as long as the
   * request is out, and a refresh wave keeps thousands out at once
   * (bench/results/simulate.md). The answer is settled in the same turn.
   */
  private askWith(
    name: string,
    wireName: Buffer,
    qtype: number,
    revalidate: boolean,
    required: number | undefined,
    attempt: number,
  ): Promise<Fetched> {
    this.counters.upstreamQueries++;
    return this.upstream(wireName, qtype, required, revalidate).then(
      (res): Fetched | Promise<Fetched> => {
        const answer = storeAnswer(res.message, wireName, qtype, res.age, this.config);
        // Read after the answer: a purge may have raised the floor while the request was out.
        const floor = this.floorOf(name, answer.owners);
        const belowFloor = olderThan(res.serial, floor);
        if (belowFloor) this.counters.floorRefusals++;
        if (!belowFloor || attempt > 0) {
          const swr = res.staleWhileRevalidate ?? 0;
          return {
            answer,
            serial: res.serial,
            belowFloor,
            staleWhileRevalidate: swr,
            cacheStatus: res.cacheStatus,
          };
        }
        return this.askWith(name, wireName, qtype, revalidate, floor, attempt + 1);
      },
    );
  }

  /**
   * The serial an answer for `name` must reach: the floor of its zone, of
   * `name` and of `owners` (its CNAME chain) raised for that zone. Floors of
   * other zones count other serials and are not comparable.
   */
  private floorOf(name: string, owners: readonly string[] = []): number | undefined {
    // No floor raised (a resolver that follows no purges): no zone to find, no list of keys made.
    if (this.floor.empty) return undefined;
    const zone = zoneOf(name, this.zones);
    return zone === undefined ? undefined : this.floor.floorOf([name, ...owners], zone);
  }

  /**
   * Replaces the zones served (normalised names), e.g. when the origin
   * creates or deletes one. A new zone's names are judged by their own zone
   * (version floors). Entries and fetches no served zone covers any more are
   * dropped: the handler refuses those names now, and a zone created again
   * later must not bring back answers from before.
   */
  setZones(zones: readonly string[]): void {
    for (const z of zones) this.zones.add(z);
    const removed = this.served.some((z) => !zones.includes(z));
    this.served = [...zones];
    if (!removed) return;
    const covered = (name: string) => zones.some((z) => isInZone(name, z));
    for (const key of this.storage.keys()) {
      const e = this.storage.peek(key);
      if (e && !covered(e.name)) this.storage.delete(key);
    }
    dropFlights(this.scope, (name) => !covered(name));
  }

  /**
   * The origin's feed says the zone is below our floor (a floor raised by an
   * event the origin never published): forget the zone's floors and drop its
   * answers, so it is served again (core/sync.ts resets it, then resyncs).
   */
  resetZone(zone: string): void {
    this.floor.forgetZone(zone);
    this.purge({ zone }, "hard");
  }

  /** Hard purge drops entries, soft purge marks them expired (purge.ts). Returns how many were hit. */
  purge(target: PurgeSelector, mode: PurgeMode): number {
    return purge(this.scope, target, mode);
  }

  /** The purge bus entry point (purge.ts): every mode raises the version floor first. */
  applyPurge(event: PurgeEvent): void {
    applyPurge(this.scope, event);
  }

  /** How long (ms from now) this cache may still answer, fresh, data older than `event` (purge.ts). */
  residualMs(event: PurgeEvent): number {
    return residualMs(this.scope, event);
  }
}
