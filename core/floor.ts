/**
 * The version floor, one for every cache tier: after a purge at serial N, no
 * fill older than N may be stored for the purged keys, so a lagging parent
 * cannot re-poison a cache with the version the purge removed (and a `ttl`
 * receipt, sent once the held entries ran out, stays true). A refetch asks
 * for at least N (`X-Min-Serial`).
 *
 * Keys speak the purge bus's language (core/purge.ts): an owner name or any
 * surrogate key, `zone:<zone>` (core/http.ts `zoneKey`) for a whole zone, and
 * `*` for the whole zone the floor is raised for. Serials count per zone (the
 * zone's SOA serial, RFC 1982), so a key's floor is remembered with the zone
 * it was raised for and only counts for that zone.
 *
 * The rule on eviction: key floors live in an LRU bounded by MAX_KEY_FLOORS;
 * when one falls out, its zone's floor is raised to its serial. Forgetting it
 * instead would reopen the door the purge closed: a parent still holding the
 * old version could refill it. Raising the zone keeps the guarantee, coarser:
 * the zone's other keys then also ask for at least N, which an up-to-date
 * parent meets at once and a lagging one answers with a refused fill (more
 * upstream requests, never older data). Zone floors are never evicted: one
 * number per zone, and a node caches few zones. A key floor raised with no
 * zone at all (an edge's POST /purge naming only a key or a URL) has no zone
 * to fall back on: it is forgotten on eviction, and counts for every zone
 * while it is held.
 */
import { LRUCache } from "lru-cache";
import { zoneKey } from "./http.ts";
import { isInZone } from "./names.ts";
import { maxSerial, serialGt, serialMax } from "./serial.ts";

/** Key floors remembered before the oldest falls back to its zone's floor. */
const MAX_KEY_FLOORS = 100_000;

const ZONE_PREFIX = zoneKey("");

interface KeyFloor {
  zone: string | undefined;
  serial: number;
}

/**
 * Bounded by size (one unit per key), not `max`, which would allocate every
 * slot up front: 1.5 MB per cache, too much for simulating thousands of nodes.
 */
function bounded<V extends {}>(max: number, dispose?: LRUCache.Disposer<string, V>) {
  return new LRUCache<string, V>({ maxSize: max, sizeCalculation: oneUnit, dispose });
}

/**
 * One function for every cache: an arrow written in the options would be a
 * new one per cache, named with defineProperty by the TypeScript loader
 * (tsx, esbuild keepNames), which makes each a dictionary-mode object.
 */
function oneUnit(): number {
  return 1;
}

/** The zone a `zone:<zone>` key names, if it is one. */
function zoneOfKey(key: string): string | undefined {
  return key.startsWith(ZONE_PREFIX) ? key.slice(ZONE_PREFIX.length) : undefined;
}

export class VersionFloor {
  /**
   * Made with the first zone floor, as `keys` with the first key floor: a
   * cache that follows no purges never raises one, and every fill asks its
   * floor (an empty map was two more dependent loads per fill).
   */
  private zones: Map<string, number> | undefined;
  /**
   * Made with the first key floor: most caches never hold one (a resolver
   * that follows no purges, a node whose purges are all zone-wide), and an
   * LRU is a dozen objects and closures; a simulator holds one floor per
   * resolver.
   */
  private keys: LRUCache<string, KeyFloor> | undefined;

  constructor(private readonly maxKeys = MAX_KEY_FLOORS) {}

  private keyFloors(): LRUCache<string, KeyFloor> {
    this.keys ??= bounded<KeyFloor>(this.maxKeys, (f, _key, reason) => {
      if (reason === "evict" && f.zone !== undefined) this.raiseZone(f.zone, f.serial);
    });
    return this.keys;
  }

  /** Raises `zone`'s floor, which every key of the zone is held to. Never lowers it. */
  raiseZone(zone: string, serial: number): void {
    this.zones ??= new Map();
    this.zones.set(zone, maxSerial(this.zones.get(zone), serial)!);
  }

  /**
   * Raises the floor of each key to `serial` (never lowers it). `*` and
   * `zone:<zone>` keys raise a zone's floor; other keys are remembered with
   * `zone`, or with the zone of a `zone:` key among them when none is given.
   */
  raise(keys: readonly string[], serial: number, zone?: string): void {
    const owner = zone ?? firstZone(keys);
    for (const key of keys) {
      const z = key === "*" ? zone : zoneOfKey(key);
      if (z !== undefined) {
        this.raiseZone(z, serial);
        continue;
      }
      if (key === "*") continue;
      const keys = this.keyFloors();
      const old = keys.get(key);
      const keep = old !== undefined && old.zone === owner ? serialMax(old.serial, serial) : serial;
      keys.set(key, { zone: owner, serial: keep });
    }
  }

  /**
   * The serial a fill for `keys` must reach, if any purge set one: the floor
   * of `zone` (or of the zone of a `zone:` key among them) and of each key
   * raised for that zone or for none. Without any zone, every key's floor counts.
   */
  floorOf(keys: readonly string[], zone?: string): number | undefined {
    if (this.empty) return undefined;
    const owner = zone ?? firstZone(keys);
    let floor = owner === undefined ? undefined : this.zones?.get(owner);
    for (const key of keys) {
      const z = zoneOfKey(key);
      if (z !== undefined) {
        floor = maxSerial(floor, this.zones?.get(z));
        continue;
      }
      const f = this.keys?.get(key);
      if (f === undefined) continue;
      if (owner === undefined || f.zone === undefined || f.zone === owner) {
        floor = maxSerial(floor, f.serial);
      }
    }
    return floor;
  }

  /**
   * Forgets every floor of `zone` (its zone floor and its keys'): the only way a
   * floor goes down, for a node whose floor is above the serial the origin says
   * exists (core/sync.ts resetZone).
   */
  forgetZone(zone: string): void {
    this.zones?.delete(zone);
    const keys = this.keys;
    if (keys === undefined) return;
    const mine = [...keys.entries()].filter(([k, f]) => f.zone === zone || isInZone(k, zone));
    for (const [key] of mine) keys.delete(key);
  }

  /** Key floors plus zone floors held. */
  get size(): number {
    return (this.keys?.size ?? 0) + (this.zones?.size ?? 0);
  }

  /** No floor was ever raised: every fill is welcome (checked without a map's table). */
  get empty(): boolean {
    return this.zones === undefined && this.keys === undefined;
  }
}

function firstZone(keys: readonly string[]): string | undefined {
  for (const key of keys) {
    const z = zoneOfKey(key);
    if (z !== undefined) return z;
  }
  return undefined;
}

/**
 * The highest serial seen per zone, in responses and purge events: what read
 * repair compares against. Bounded like the key floors; a forgotten zone only
 * means its next newer response repairs again.
 */
export class ZoneSerials {
  private readonly seen = bounded<number>(MAX_KEY_FLOORS);

  forget(zone: string): void {
    this.seen.delete(zone);
  }

  /** Records `serial` for `zone`; true when it is newer than every serial seen before. */
  advance(zone: string, serial: number): boolean {
    const old = this.seen.get(zone);
    if (old !== undefined && !serialGt(serial, old)) return false;
    this.seen.set(zone, serial);
    return true;
  }
}
