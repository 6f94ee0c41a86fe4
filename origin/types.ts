/**
 * The origin's zone data shapes, shared by the store (store.ts) and the
 * planner (plan.ts): a zone's settings, its state with its change log, and
 * committed changes as the journal, the change feed and listeners see them.
 */
import type { PropagationMode } from "../core/purge.ts";
import type { RRset, RRType } from "../core/records.ts";
import { Zone } from "./zone.ts";

/** Per-zone settings, fixed at create time. */
export interface ZoneConfig {
  /** TTL for RRsets written without one. */
  ttl: number;
  /** RFC 5861 windows advertised on reads. */
  staleWhileRevalidate: number;
  staleIfError: number;
  /** How the zone's changes reach caches; absent: the origin's default (a topology's). */
  mode?: PropagationMode;
}

export interface RRsetChange {
  name: string;
  type: RRType;
  /** The RRset after the change, or null when it was deleted. */
  rrset: RRset | null;
}

/** One committed change, as the change feed and `onCommit` listeners see it. */
export interface CommittedChange {
  changeId: string;
  op: "create" | "update" | "delete";
  zone: string;
  serial: number;
  /** Commit time, ms since the epoch. */
  ts: number;
  /** RRsets written or deleted; a create lists every RRset, a delete none (the whole zone goes). */
  changes: RRsetChange[];
}

/** A zone with its settings and its bounded change log. */
export class ZoneState {
  constructor(
    readonly zone: Zone,
    readonly config: ZoneConfig,
    public base: number,
    readonly changes: CommittedChange[] = [],
  ) {}

  static fromRRsets(
    name: string,
    config: ZoneConfig,
    rrsets: readonly RRset[],
    base: number,
  ): ZoneState {
    const soa = rrsets.find((s) => s.type === "SOA" && s.name === name) as RRset<"SOA">;
    const zone = new Zone(name, soa);
    for (const set of rrsets) zone.put(set);
    return new ZoneState(zone, config, base);
  }

  clone(): ZoneState {
    const copy = ZoneState.fromRRsets(this.zone.name, this.config, this.zone.all(), this.base);
    copy.changes.push(...this.changes);
    return copy;
  }

  remember(change: CommittedChange, limit: number): void {
    this.changes.push(change);
    while (this.changes.length > limit) this.base = this.changes.shift()!.serial;
  }
}
