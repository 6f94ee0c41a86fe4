/**
 * The resolver's bus side: purges by selector (the admin's and the bus's),
 * `applyPurge` for every propagation mode, `residualMs` for `ttl` receipts,
 * and `push` rewrites in place. It works on the engine's storage, version
 * floor and fetches in flight (cache.ts hands them over as a PurgeScope).
 */
import type { Clock } from "../core/clock.ts";
import type { VersionFloor } from "../core/floor.ts";
import type { InFlight } from "../core/in-flight.ts";
import { isInZone, normaliseName, tryNormaliseName } from "../core/names.ts";
import { type PurgeEvent, type PurgeMode, sparesCurrent } from "../core/purge.ts";
import { RR_TYPE_CODES, type RRset } from "../core/records.ts";
import { olderThan } from "../core/serial.ts";
import { answerFromRRset } from "./answer.ts";
import { type CacheConfig, type CacheEntry, expire, newEntry, zoneOf } from "./policy.ts";
import type { ResolverStorage } from "./storage.ts";

export interface PurgeSelector {
  name?: string;
  zone?: string;
  all?: boolean;
}

/** A fetch in flight, as a purge sees it. */
export interface FlightMark {
  readonly name: string;
  /** Set by a purge: the result is answered but not stored. */
  purged: boolean;
}

/** What the bus side works on: the engine's own parts, shared, not copied. */
export interface PurgeScope {
  readonly storage: ResolverStorage;
  readonly floor: VersionFloor;
  /** The zones served and seen in events: a name's floor is its deepest zone's. */
  readonly zones: Set<string>;
  readonly inflight: InFlight<FlightMark>;
  readonly clock: Clock;
  readonly config: CacheConfig;
  readonly metrics: { purged: number; pushed: number };
}

/**
 * Hard purge drops entries; soft purge marks them expired, so the next query
 * refreshes (and may still answer stale within RFC 8767's bounds). Returns how many were hit.
 *
 * With `change` (a change to named RRsets, see `sparesCurrent`), entries
 * already at or past its serial are spared: they hold the change (a refresh
 * raced ahead of the event on the bus), and dropping them would only cost a
 * refetch of the same version. Fetches in flight go on too: the floor the
 * event raised is read again when each lands (cache.ts `ask`), so one older
 * than the change is asked again with the floor and never stored.
 */
export function purge(
  s: PurgeScope,
  target: PurgeSelector,
  mode: PurgeMode,
  change?: PurgeEvent,
): number {
  const now = s.clock.now();
  if (!change) dropFlights(s, (name) => matches(target, name));
  let n = 0;
  for (const key of matching(s, target)) {
    const e = s.storage.peek(key);
    if (!e || (change && !predates(s, e, change))) continue;
    if (mode === "hard") s.storage.delete(key);
    else expire(e, now);
    n++;
  }
  s.metrics.purged += n;
  return n;
}

/**
 * The purge bus entry point: keys are owner names, "zone:<zone>", or "*".
 * Every mode raises the version floor of its keys to the event's serial,
 * `ttl` included: entries still run to expiry, but no refetch may bring
 * back a version older than the change (that is what makes the ttl receipt,
 * sent after `residualMs`, true).
 */
export function applyPurge(s: PurgeScope, event: PurgeEvent): void {
  const targets = event.keys.map(selectorOf);
  for (const t of targets) {
    const zone = t.name === undefined ? (t.zone ?? event.zone) : event.zone;
    s.zones.add(zone);
    if (t.name !== undefined) s.floor.raise([t.name], event.serial, zone);
    else s.floor.raiseZone(zone, event.serial);
  }
  if (event.mode === "ttl") return;
  if (event.mode === "push") {
    push(s, event, targets);
    return;
  }
  const mode: PurgeMode = event.mode === "invalidate" ? "hard" : "soft";
  const change = sparesCurrent(event) ? event : undefined;
  for (const t of targets) purge(s, t, mode, change);
}

/**
 * How long (ms from now) this cache may still answer, fresh, with data of
 * `event`'s keys older than its serial. Entries without a serial, or whose
 * serial belongs to another zone (a CNAME into the changed zone), count as
 * old. Serve-stale is not counted: RFC 8767 answers stale only while the
 * upstream fails, marked with EDE 3, and a refresh asks for the new serial.
 */
export function residualMs(s: PurgeScope, event: PurgeEvent): number {
  const now = s.clock.now();
  let until = now;
  for (const key of new Set(event.keys.map(selectorOf).flatMap((t) => matching(s, t)))) {
    const e = s.storage.peek(key);
    if (e && predates(s, e, event)) until = Math.max(until, e.expiresAt);
  }
  return until - now;
}

function predates(s: PurgeScope, e: CacheEntry, event: PurgeEvent): boolean {
  return (
    e.serial === undefined ||
    zoneOf(e.name, s.zones) !== event.zone ||
    olderThan(e.serial, event.serial)
  );
}

/**
 * `push`: an entry answered directly by a pushed RRset (same name and type,
 * no CNAME chain) is rewritten in place with the new data, TTL and serial;
 * a deleted RRset (empty data) drops it. Every other entry the event
 * touches is soft-purged, so it refreshes on next use.
 */
function push(s: PurgeScope, event: PurgeEvent, targets: PurgeSelector[]): void {
  const now = s.clock.now();
  const sets = new Map<string, RRset>();
  const touched = [...targets];
  for (const r of event.rrsets ?? []) {
    const name = normaliseName(r.name);
    sets.set(`${name}/${RR_TYPE_CODES[r.type]}`, { ...r, name });
    touched.push({ name });
  }
  const keys = new Set<string>();
  for (const t of touched) {
    dropFlights(s, (name) => matches(t, name));
    for (const key of matching(s, t)) keys.add(key);
  }
  for (const key of keys) {
    const e = s.storage.peek(key);
    if (!e) continue;
    const rrset = sets.get(`${e.name}/${e.qtype}`);
    if (rrset === undefined || !e.answer.direct) {
      expireKey(s, key, now);
      s.metrics.purged++;
    } else if (!rewrite(s, e, rrset, event.serial, now)) {
      s.storage.delete(key);
      s.metrics.purged++;
    }
  }
}

/** Replaces `e` with the answer `rrset` gives; false when there is nothing to keep (deleted, TTL 0). */
function rewrite(s: PurgeScope, e: CacheEntry, rrset: RRset, serial: number, now: number): boolean {
  if (rrset.data.length === 0) return false;
  const answer = answerFromRRset(rrset, e.wireName, e.qtype, s.config);
  if (answer.ttl === 0) return false;
  s.storage.set(newEntry(e, answer, serial, now, s.config));
  s.metrics.pushed++;
  return true;
}

/** Keys of the cached entries a selector hits (by name: every answer that has it as an owner). */
function matching(s: PurgeScope, target: PurgeSelector): string[] {
  if (target.name !== undefined) return s.storage.keysFor(target.name);
  return s.storage.keys().filter((key) => {
    const e = s.storage.peek(key);
    return e !== undefined && matches(target, e.name);
  });
}

/**
 * Fetches in flight for names `hit` selects are answered but not stored, and
 * leave the coalescing map: a query after the purge starts its own fetch
 * instead of joining one that may bring the old version.
 */
export function dropFlights(s: Pick<PurgeScope, "inflight">, hit: (name: string) => boolean): void {
  for (const [key, flight] of s.inflight) {
    if (!hit(flight.name)) continue;
    flight.purged = true;
    s.inflight.delete(key);
  }
}

function expireKey(s: PurgeScope, key: string, now: number): void {
  const e = s.storage.peek(key);
  if (e) expire(e, now);
}

/**
 * The entries a purge key names: "*", "zone:<zone>", or an owner name. A key
 * that is no valid name (a cache tag from elsewhere) names no entry here: it
 * is kept as is, so it matches nothing, rather than failing the whole event.
 */
export function selectorOf(key: string): PurgeSelector {
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
