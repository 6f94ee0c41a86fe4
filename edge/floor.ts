/**
 * The version floor: after a purge at serial N, no fill older than N may be
 * stored under the purged surrogate keys, so a lagging parent cannot
 * re-poison this cache with the version the purge removed.
 */
import { LRUCache } from "lru-cache";
import { zoneKey } from "../core/http.ts";
import { isInZone } from "../core/names.ts";
import { serialGt, serialLt, serialMax } from "../core/serial.ts";

/**
 * Purged keys remembered; the oldest are forgotten first. Bounded by maxSize
 * (one unit per key) rather than `max`, which would allocate every slot up
 * front: 1.5 MB per edge, too much for a simulation of thousands of edges.
 */
const MAX_FLOORS = 100_000;
const bounded = () => ({ maxSize: MAX_FLOORS, sizeCalculation: () => 1 });

export class VersionFloor {
  private readonly floors = new LRUCache<string, number>(bounded());

  /** Raises the floor of each surrogate key to `serial` (never lowers it). */
  raise(keys: readonly string[], serial: number): void {
    for (const k of keys) {
      const old = this.floors.get(k);
      this.floors.set(k, old === undefined ? serial : serialMax(old, serial));
    }
  }

  /** Forgets the floors of `zone`'s keys ("zone:<zone>" and names in it): the only way down. */
  forgetZone(zone: string): void {
    for (const k of [...this.floors.keys()]) {
      if (k === zoneKey(zone) || isInZone(k, zone)) this.floors.delete(k);
    }
  }

  /** The highest floor among the keys, if any key has one. */
  floorOf(keys: readonly string[]): number | undefined {
    let floor: number | undefined;
    for (const k of keys) {
      const f = this.floors.get(k);
      if (f !== undefined && (floor === undefined || serialGt(f, floor))) floor = f;
    }
    return floor;
  }
}

/** The highest serial seen per zone, in responses and purge events: what read repair compares against. */
export class ZoneSerials {
  private readonly seen = new LRUCache<string, number>(bounded());

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

/** The larger of optional serials. */
export function maxSerial(...serials: (number | undefined)[]): number | undefined {
  let out: number | undefined;
  for (const s of serials) {
    if (s !== undefined && (out === undefined || serialLt(out, s))) out = s;
  }
  return out;
}

/** True when a response's serial is known to be older than the required one. */
export function olderThan(serial: number | undefined, required: number | undefined): boolean {
  return serial !== undefined && required !== undefined && serialLt(serial, required);
}
