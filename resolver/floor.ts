/**
 * The resolver's version floor: after a purge at serial N, no answer older
 * than N may be cached for the purged names, and refetches ask for at least N
 * (`X-Min-Serial`), so an edge that has not yet applied the purge cannot hand
 * the old version back. Serials are per zone (the zone's SOA serial), so a
 * floor only ever applies to names of the zone it came from.
 */
import { LRUCache } from "lru-cache";
import { serialMax } from "../core/serial.ts";

/** Per-name floors remembered; an evicted one raises its zone's floor instead. */
export const MAX_NAME_FLOORS = 100_000;

interface NameFloor {
  zone: string;
  serial: number;
}

export class VersionFloor {
  private readonly zones = new Set<string>();
  private readonly zoneFloors = new Map<string, number>();
  private readonly names: LRUCache<string, NameFloor>;

  /** `zones`: the zones served, so a name is judged by its own (deepest) zone. */
  constructor(zones: readonly string[], maxNames = MAX_NAME_FLOORS) {
    for (const z of zones) this.zones.add(z);
    this.names = new LRUCache<string, NameFloor>({
      // Bounded by size (one unit per name), not `max`, which would allocate every
      // slot up front: 1.5 MB per resolver, too much for simulating thousands.
      maxSize: maxNames,
      sizeCalculation: () => 1,
      // Forgetting a name's floor must not forget the guarantee: the zone-wide floor keeps it, coarser.
      dispose: (f, _name, reason) => {
        if (reason === "evict") this.raiseZone(f.zone, f.serial);
      },
    });
  }

  /** The deepest known zone containing `name` (names are normalised, no trailing dot). */
  zoneOf(name: string): string | undefined {
    for (let n = name; ; ) {
      if (this.zones.has(n)) return n;
      if (n === "") return undefined;
      const dot = n.indexOf(".");
      n = dot < 0 ? "" : n.slice(dot + 1);
    }
  }

  /** A zone served from now on: its names are judged by it (no floor yet). */
  addZone(zone: string): void {
    this.zones.add(zone);
  }

  /**
   * Forgets every floor of `zone`: the only way a floor goes down. For a node
   * whose floor is above the serial the origin says exists (core/sync.ts).
   */
  forgetZone(zone: string): void {
    this.zoneFloors.delete(zone);
    for (const [name, f] of this.names.entries()) {
      if (f.zone === zone) this.names.delete(name);
    }
  }

  raiseZone(zone: string, serial: number): void {
    this.zones.add(zone);
    const old = this.zoneFloors.get(zone);
    this.zoneFloors.set(zone, old === undefined ? serial : serialMax(old, serial));
  }

  /** Raises the floor of `name`, whose answers carry `zone`'s serial. */
  raiseName(name: string, zone: string, serial: number): void {
    this.zones.add(zone);
    const old = this.names.get(name);
    const keep = old !== undefined && old.zone === zone ? serialMax(old.serial, serial) : serial;
    this.names.set(name, { zone, serial: keep });
  }

  /**
   * The serial an answer for `name` must reach, if any purge set one: its
   * zone's floor and the floors of `name` and of `owners` (the CNAME chain of
   * its answer) that belong to the same zone. Floors of other zones count
   * other serials and are not comparable.
   */
  of(name: string, owners: readonly string[] = []): number | undefined {
    const zone = this.zoneOf(name);
    if (zone === undefined) return undefined;
    let floor = this.zoneFloors.get(zone);
    for (const n of [name, ...owners]) {
      const f = this.names.get(n);
      if (f === undefined || f.zone !== zone) continue;
      floor = floor === undefined ? f.serial : serialMax(floor, f.serial);
    }
    return floor;
  }

  get size(): number {
    return this.names.size + this.zoneFloors.size;
  }
}
