/**
 * The resolver's cache policy, pure: time comes from the injected Clock and
 * answers from the injected upstream function. It decides fresh, prefetch,
 * refresh-or-stale (RFC 8767), coalesces concurrent fetches, and applies
 * purges. Storage is lru-cache bounded by bytes.
 */
import { LRUCache } from "lru-cache";
import type { Clock } from "../core/clock.ts";
import { isInZone, normaliseName } from "../core/names.ts";
import type { PurgeEvent, PurgeMode, PurgeTarget } from "../core/purge.ts";
import { type StoredAnswer, storeAnswer, type TtlPolicy } from "./answer.ts";
import { readName } from "./message.ts";

/** What an upstream returns: the DNS response and how long it sat in HTTP caches. */
export interface UpstreamResponse {
  message: Buffer;
  /** Seconds, from the HTTP Age header (RFC 8484 §5.1); 0 for plain DNS. */
  age: number;
  /** The origin's zone serial (X-Serial), when the upstream speaks HTTP. */
  serial?: number;
}

/** Fetches (wire name, qtype); rejects when the upstream fails. */
export type Upstream = (name: Buffer, qtype: number) => Promise<UpstreamResponse>;

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

/** Rough per-entry memory beyond the answer bytes (objects, key, index). */
const ENTRY_OVERHEAD = 256;

export class ResolverCache implements PurgeTarget {
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
  };
  private readonly cache: LRUCache<string, CacheEntry>;
  private readonly inflight = new Map<string, Flight>();
  /** Owner name -> keys of the entries whose answer depends on it (purge by name). */
  private readonly byOwner = new Map<string, Set<string>>();

  constructor(
    readonly id: string,
    private readonly config: CacheConfig,
    private readonly clock: Clock,
    private readonly upstream: Upstream,
    private readonly onUpstreamError: (err: unknown, name: string) => void = () => {},
  ) {
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
    return this.fetch(key, wireName, qtype);
  }

  /** RFC 8767 §5: try the upstream first; answer stale if it fails or the client timer fires first. */
  private expired(e: CacheEntry, now: number): Served | Promise<Served> {
    if (e.failedAt !== undefined && now - e.failedAt < this.config.failureRecheckMs) {
      return this.stale(e);
    }
    const refresh = this.fetch(e.key, e.wireName, e.qtype);
    return new Promise((resolve) => {
      const timer = this.clock.setTimeout(
        () => resolve(this.stale(e)),
        this.config.clientTimeoutMs,
      );
      refresh.then(
        (served) => {
          this.clock.clearTimeout(timer);
          resolve(served);
        },
        () => {
          // fetch() has counted and reported the failure; the stale answer is the fallback.
          this.clock.clearTimeout(timer);
          resolve(this.stale(e));
        },
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
    this.fetch(e.key, e.wireName, e.qtype).catch(() => undefined);
  }

  /** One upstream request per key at a time (coalescing); the result is stored when cacheable. */
  private fetch(key: string, wireName: Buffer, qtype: number): Promise<Served> {
    const running = this.inflight.get(key);
    if (running) {
      this.metrics.coalesced++;
      return running.promise;
    }
    const state = { name: readName(wireName, 0), purged: false };
    const flight: Flight = Object.assign(state, {
      promise: this.fill(state, key, wireName, qtype).finally(() => {
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
  ): Promise<Served> {
    this.metrics.upstreamQueries++;
    let answer: StoredAnswer;
    let serial: number | undefined;
    try {
      const res = await this.upstream(wireName, qtype);
      answer = storeAnswer(res.message, wireName, qtype, res.age, this.config);
      serial = res.serial;
    } catch (err) {
      this.metrics.upstreamFailures++;
      const old = this.cache.peek(key);
      if (old) old.failedAt = this.clock.now();
      this.onUpstreamError(err, flight.name);
      throw err;
    }
    const now = this.clock.now();
    if (answer.ttl > 0 && !flight.purged) {
      const ttlMs = answer.ttl * 1000;
      this.store({
        key,
        name: flight.name,
        wireName,
        qtype,
        answer,
        storedAt: now,
        expiresAt: now + ttlMs,
        prefetchAt: now + ttlMs * (1 - this.config.prefetchFraction),
        serial,
        failedAt: undefined,
      });
    }
    return { answer, elapsed: 0, stale: false };
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
   * Hard purge drops entries; soft purge marks them expired, so the next query
   * refreshes (and may still answer stale within RFC 8767's bounds). Returns how many were hit.
   */
  purge(target: PurgeSelector, mode: PurgeMode): number {
    const now = this.clock.now();
    const matches = (name: string) =>
      target.all === true ||
      (target.zone !== undefined && isInZone(name, target.zone)) ||
      name === target.name;
    for (const flight of this.inflight.values()) if (matches(flight.name)) flight.purged = true;
    const keys =
      target.all || target.zone !== undefined
        ? [...this.cache.values()].filter((e) => matches(e.name)).map((e) => e.key)
        : [...(this.byOwner.get(target.name ?? "") ?? [])];
    for (const key of keys) {
      if (mode === "hard") this.cache.delete(key);
      else {
        const e = this.cache.peek(key);
        if (e) {
          e.expiresAt = Math.min(e.expiresAt, now);
          e.failedAt = undefined;
        }
      }
    }
    this.metrics.purged += keys.length;
    return keys.length;
  }

  /** The purge bus entry point: keys are owner names, "zone:<zone>", or "*". */
  applyPurge(event: PurgeEvent): void {
    // "ttl" caches learn at expiry; "push" is applied as a soft purge until in-place updates exist.
    if (event.mode === "ttl") return;
    const mode: PurgeMode = event.mode === "invalidate" ? "hard" : "soft";
    for (const key of event.keys) {
      if (key === "*") this.purge({ all: true }, mode);
      else if (key.startsWith("zone:")) this.purge({ zone: normaliseName(key.slice(5)) }, mode);
      else this.purge({ name: normaliseName(key) }, mode);
    }
  }
}
