/**
 * One zone in memory: its SOA and RRsets, read by the authoritative answerer
 * and the HTTP reads, and mutated only by the store (which bumps the serial
 * and journals every change).
 */
import { isInZone, parentName } from "../core/names.ts";
import type { RRset, RRType, SoaData } from "../core/records.ts";
import { rrsetKey } from "../core/records.ts";

/** What answering needs of a zone; the store's zones implement it. */
export interface ZoneView {
  readonly name: string;
  readonly serial: number;
  readonly soa: RRset<"SOA">;
  get<T extends RRType>(name: string, type: T): RRset<T> | undefined;
  /** RRsets owned by `name`, any type. */
  at(name: string): RRset[];
  /** True when `name` owns records or is an empty non-terminal (RFC 8020 §2: then NODATA, not NXDOMAIN). */
  exists(name: string): boolean;
}

/** Finds the zone that is authoritative for a name (longest suffix match). */
export interface ZoneSource {
  findZone(name: string): ZoneView | undefined;
}

export class Zone implements ZoneView {
  private readonly sets = new Map<string, RRset>();
  /**
   * The same RRsets by owner name, then type, for `at`: without it `at` walks
   * every RRset of the zone, and planning a batch of N names (plan.ts asks
   * `at` for each) costs O(N x zone size).
   */
  private readonly byName = new Map<string, Map<RRType, RRset>>();
  /** Owner names with a count of RRsets at or below them, for empty non-terminals. */
  private readonly below = new Map<string, number>();

  constructor(
    readonly name: string,
    soa: RRset<"SOA">,
  ) {
    this.put(soa);
  }

  get soa(): RRset<"SOA"> {
    return this.sets.get(rrsetKey(this.name, "SOA")) as RRset<"SOA">;
  }

  get soaData(): SoaData {
    return this.soa.data[0]!;
  }

  get serial(): number {
    return this.soaData.serial;
  }

  get<T extends RRType>(name: string, type: T): RRset<T> | undefined {
    return this.sets.get(rrsetKey(name, type)) as RRset<T> | undefined;
  }

  at(name: string): RRset[] {
    const types = this.byName.get(name);
    return types ? [...types.values()] : [];
  }

  exists(name: string): boolean {
    return (this.below.get(name) ?? 0) > 0;
  }

  all(): RRset[] {
    return [...this.sets.values()];
  }

  get size(): number {
    return this.sets.size;
  }

  /** Inserts or replaces an RRset; its name must lie in the zone. */
  put(rrset: RRset): void {
    if (!isInZone(rrset.name, this.name)) {
      throw new Error(`name "${rrset.name}" is outside zone "${this.name}"`);
    }
    const key = rrsetKey(rrset.name, rrset.type);
    if (!this.sets.has(key)) this.count(rrset.name, 1);
    this.sets.set(key, rrset);
    const types = this.byName.get(rrset.name);
    if (types) types.set(rrset.type, rrset);
    else this.byName.set(rrset.name, new Map([[rrset.type, rrset]]));
  }

  /** Removes an RRset; returns whether it existed. */
  delete(name: string, type: RRType): boolean {
    const key = rrsetKey(name, type);
    if (!this.sets.delete(key)) return false;
    const types = this.byName.get(name);
    types?.delete(type);
    if (types?.size === 0) this.byName.delete(name);
    this.count(name, -1);
    return true;
  }

  private count(name: string, delta: number): void {
    for (let n = name; ; n = parentName(n)) {
      const c = (this.below.get(n) ?? 0) + delta;
      if (c > 0) this.below.set(n, c);
      else this.below.delete(n);
      if (n === this.name || n === "") break;
    }
  }
}
