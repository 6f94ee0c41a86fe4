/**
 * The edge's bus side: what a purge does to the stored entries and to the
 * version floor, for the four propagation modes of a bus event
 * (core/purge.ts) and for POST /purge. The engine (cache.ts) serves; this
 * file only marks, drops and rewrites what it stored.
 */
import type { Clock } from "../core/clock.ts";
import type { VersionFloor, ZoneSerials } from "../core/floor.ts";
import { zoneKey } from "../core/http.ts";
import { type PurgeEvent, type PurgeMode, sparesCurrent } from "../core/purge.ts";
import type { RRset } from "../core/records.ts";
import { cacheKey } from "./key.ts";
import { filledBefore, servableFor } from "./policy.ts";
import { pushedEntry, questionOf, wellFormed } from "./push.ts";
import type { EdgeStorage } from "./storage.ts";

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

/** The engine's state a purge acts on, shared with it (not copied). */
export interface PurgeState {
  storage: EdgeStorage;
  clock: Clock;
  floor: VersionFloor;
  zoneSerials: ZoneSerials;
  counters: Record<"purges" | "purgedEntries" | "pushed", number>;
}

/**
 * Applies a purge-bus event: `invalidate` drops, `soft` marks stale, `push`
 * rewrites what its RRsets answer and soft-purges the rest (each only what was
 * filled before the event's serial, see `current`), `ttl` leaves
 * held entries to run out (see residualMs). Every mode raises the version
 * floor, so no fill older than the event is stored afterwards: in `ttl`
 * mode that is what makes the receipt true once the held entries have
 * expired, whatever a lagging parent still holds.
 */
export function applyPurge(s: PurgeState, event: PurgeEvent): void {
  // Read repair runs once per new serial (Edge.repair); a purge that acts on
  // the entries takes its place. A `ttl` event leaves them alone, so the
  // first response at its serial must still repair: recorded here, it would
  // leave an older representation of a name (a JSON entry beside a newer DoH
  // one) to be served after the newer, which no-bus runs repair.
  if (event.mode !== "ttl") s.zoneSerials.advance(event.zone, event.serial);
  s.floor.raise(event.keys, event.serial, event.zone);
  if (event.mode === "ttl") return;
  s.counters.purges++;
  const keys = current(s.storage, affected(s.storage, event), event);
  s.counters.purgedEntries +=
    event.mode === "push" && event.rrsets
      ? push(s, keys, event.rrsets, event.serial)
      : mark(s.storage, keys, event.mode === "invalidate" ? "hard" : "soft");
}

/**
 * `ttl` receipts: how long (ms from now) this edge may still serve, fresh
 * or within stale-while-revalidate, an entry the event touches that was
 * filled before the event's serial; 0 when none.
 */
export function residualMs(s: PurgeState, event: PurgeEvent): number {
  const now = s.clock.now();
  let seconds = 0;
  for (const key of affected(s.storage, event)) {
    const entry = s.storage.get(key);
    if (entry && filledBefore(entry, event.serial)) {
      seconds = Math.max(seconds, servableFor(entry, now));
    }
  }
  return Math.ceil(seconds * 1000);
}

/** POST /purge: by URL, surrogate key, zone or all; returns how many entries it touched. */
export function purgeRequest(s: PurgeState, p: PurgeRequest): number {
  const surrogate = [
    ...(p.key !== undefined ? [p.key] : []),
    ...(p.zone !== undefined ? [zoneKey(zoneOf(p.zone))] : []),
  ];
  const keys = new Set<string>(p.all ? s.storage.keys() : []);
  for (const sk of surrogate) for (const k of s.storage.keysFor(sk)) keys.add(k);
  const urlKey = p.url !== undefined ? cacheKey(new URL(p.url, "http://edge.invalid")) : undefined;
  if (urlKey !== undefined) keys.add(urlKey);
  s.counters.purges++;
  if (p.serial !== undefined) {
    if (p.zone !== undefined) s.zoneSerials.advance(zoneOf(p.zone), p.serial);
    // A URL purge floors the entry's owner-name keys, not its whole zone.
    const urlEntry = urlKey !== undefined ? s.storage.get(urlKey) : undefined;
    const named = urlEntry?.surrogateKeys.filter((k) => !k.startsWith("zone:")) ?? [];
    s.floor.raise([...surrogate, ...named], p.serial);
  }
  const n = mark(s.storage, [...keys], p.mode);
  s.counters.purgedEntries += n;
  return n;
}

/** Drops (hard) or marks stale (soft) the entries; returns how many it touched. */
export function mark(storage: EdgeStorage, keys: readonly string[], mode: PurgeMode): number {
  let n = 0;
  for (const k of keys) {
    if (mode === "hard") {
      if (storage.delete(k)) n++;
    } else {
      const entry = storage.get(k);
      if (entry) {
        entry.invalidated = true;
        n++;
      }
    }
  }
  return n;
}

/**
 * The keys whose entries a change event makes old. An entry filled at or past
 * the event's serial already holds the change (a child's X-Min-Serial fill, or
 * a refresh, raced ahead of the event on the bus): dropping it would only cost
 * a refetch of the same version (only for a change to named RRsets: see
 * `sparesCurrent`).
 */
function current(storage: EdgeStorage, keys: string[], event: PurgeEvent): string[] {
  if (!sparesCurrent(event)) return keys;
  return keys.filter((k) => {
    const entry = storage.get(k);
    return entry !== undefined && filledBefore(entry, event.serial);
  });
}

/** Cache keys an event touches: its surrogate keys, or everything for "*". */
function affected(storage: EdgeStorage, event: PurgeEvent): string[] {
  if (event.keys.includes("*")) return storage.keys();
  return [...new Set(event.keys.flatMap((k) => storage.keysFor(k)))];
}

/**
 * `push`: an entry answered by a pushed RRset is rewritten in place (or
 * dropped when the RRset was deleted); any other entry the event touches
 * is soft-purged. Entries already at or past the event's serial are left
 * alone. Returns how many entries were dropped or marked.
 */
function push(s: PurgeState, keys: readonly string[], rrsets: readonly RRset[], serial: number) {
  const now = s.clock.now();
  const soft: string[] = [];
  const hard: string[] = [];
  for (const key of keys) {
    const entry = s.storage.get(key);
    if (!entry || !filledBefore(entry, serial)) continue;
    const q = questionOf(key);
    const rrset = q && rrsets.find((r) => r.name === q.name && r.type === q.type);
    if (rrset?.data.length === 0) {
      hard.push(key);
      continue;
    }
    const updated = rrset && wellFormed(rrset) && pushedEntry(entry, q, rrset, serial, now);
    if (updated && s.storage.set(updated)) s.counters.pushed++;
    else soft.push(key);
  }
  return mark(s.storage, hard, "hard") + mark(s.storage, soft, "soft");
}

/** A zone name as given in POST /purge, in the form surrogate keys use. */
function zoneOf(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}
