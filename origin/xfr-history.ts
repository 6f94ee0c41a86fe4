/**
 * The differences IXFR sends (RFC 1995 §4): for each committed change, the
 * records it deleted and the records it added. The store's change log holds
 * each touched RRset's new state only, so this keeps a reference to every
 * zone's current RRsets and turns each commit into a record-level difference
 * as it happens. `xfr-history-log.ts` keeps the differences on disk, so they
 * survive a restart; a client older than the oldest difference kept gets the
 * whole zone in IXFR form (RFC 1995 §4 allows it).
 */
import type { RRset } from "../core/records.ts";
import { rrsetKey } from "../core/records.ts";
import type { CommittedChange } from "./store.ts";
import { recordIdentity, type WireRecord, wireRecords } from "./xfr-wire.ts";

export interface ZoneDiff {
  /** The SOA before and after the change. */
  from: RRset<"SOA">;
  to: RRset<"SOA">;
  deleted: WireRecord[];
  added: WireRecord[];
}

interface ZoneHistory {
  current: Map<string, RRset>;
  diffs: ZoneDiff[];
}

/** What each commit did to the history: a difference, or a zone's history started over. */
export type HistoryEvent = { zone: string; diff: ZoneDiff } | { zone: string; reset: true };

export class IxfrHistory {
  private readonly zones = new Map<string, ZoneHistory>();
  /** Told of every difference and reset, in commit order (the on-disk log). */
  onEvent: ((e: HistoryEvent) => void) | undefined;

  /** `limit`: differences kept per zone (the origin's --change-log). */
  constructor(private readonly limit: number) {}

  /** Starts following a zone from its current RRsets. */
  seed(zone: string, rrsets: readonly RRset[]): void {
    this.zones.set(zone, {
      current: new Map(rrsets.map((s) => [rrsetKey(s.name, s.type), s])),
      diffs: [],
    });
  }

  /** Differences kept from before (the on-disk log); the zone must be seeded. */
  restore(zone: string, diffs: readonly ZoneDiff[]): void {
    const h = this.zones.get(zone);
    if (h) h.diffs = diffs.slice(-this.limit);
  }

  /** Every zone's kept differences, oldest first. */
  kept(): Array<{ zone: string; diffs: readonly ZoneDiff[] }> {
    return [...this.zones].map(([zone, h]) => ({ zone, diffs: h.diffs }));
  }

  /** Called with every committed change, in commit order (store.onCommit). */
  apply(change: CommittedChange): void {
    if (change.op === "delete" || change.op === "create") {
      if (change.op === "delete") this.zones.delete(change.zone);
      else
        this.seed(
          change.zone,
          change.changes.map((c) => c.rrset).filter((s): s is RRset => s !== null),
        );
      this.onEvent?.({ zone: change.zone, reset: true });
      return;
    }
    const h = this.zones.get(change.zone);
    if (!h) return;
    const soaKey = rrsetKey(change.zone, "SOA");
    const from = h.current.get(soaKey) as RRset<"SOA">;
    const deleted: WireRecord[] = [];
    const added: WireRecord[] = [];
    for (const c of change.changes) {
      const key = rrsetKey(c.name, c.type);
      const before = h.current.get(key);
      if (c.rrset) h.current.set(key, c.rrset);
      else h.current.delete(key);
      if (c.type === "SOA") continue;
      difference(before, c.rrset ?? undefined, deleted, added);
    }
    const to = h.current.get(soaKey) as RRset<"SOA">;
    const diff = { from, to, deleted, added };
    h.diffs.push(diff);
    while (h.diffs.length > this.limit) h.diffs.shift();
    this.onEvent?.({ zone: change.zone, diff });
  }

  /** The differences from `serial` to now, or undefined when they are not all kept. */
  diffsSince(zone: string, serial: number): ZoneDiff[] | undefined {
    const diffs = this.zones.get(zone)?.diffs ?? [];
    const i = diffs.findIndex((d) => d.from.data[0]!.serial === serial);
    return i < 0 ? undefined : diffs.slice(i);
  }
}

/** Record-level difference of one RRset; a TTL change replaces every record. */
function difference(
  before: RRset | undefined,
  after: RRset | undefined,
  deleted: WireRecord[],
  added: WireRecord[],
): void {
  const old = before ? wireRecords(before) : [];
  const now = after ? wireRecords(after) : [];
  if (before && after && before.ttl !== after.ttl) {
    deleted.push(...old);
    added.push(...now);
    return;
  }
  const oldIds = new Set(old.map(recordIdentity));
  const newIds = new Set(now.map(recordIdentity));
  deleted.push(...old.filter((r) => !newIds.has(recordIdentity(r))));
  added.push(...now.filter((r) => !oldIds.has(recordIdentity(r))));
}
