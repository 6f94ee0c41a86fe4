/**
 * Purge events: what the origin publishes for every committed change, and
 * what each cache node applies. Applying an event twice is harmless.
 */
import type { RRset } from "./records.ts";

/**
 * How a change reaches caches:
 * - ttl: no notification, caches learn at expiry;
 * - invalidate: hard purge (drop the entries);
 * - soft: mark the entries stale, revalidate on next use;
 * - push: the event carries the new RRsets; caches update in place.
 */
export type PropagationMode = "ttl" | "invalidate" | "soft" | "push";
export type PurgeMode = "hard" | "soft";

export interface PurgeEvent {
  changeId: string;
  zone: string;
  serial: number;
  /** Surrogate keys: owner names, and "zone:<zone>" for a whole zone; ["*"] for everything. */
  keys: string[];
  mode: PropagationMode;
  /** Origin's wall-clock time (ms) when the change was committed. */
  ts: number;
  /** With mode "push": the RRsets as they are after the change (empty data = deleted). */
  rrsets?: RRset[];
  /**
   * An operator's purge (POST /v1/purge), not a change: it carries the zone's
   * current serial, so nodes apply it even when they hold that serial already,
   * and ack it by change id rather than by serial.
   */
  explicit?: boolean;
  /**
   * The origin's Ed25519 signature (base64) over the canonical event without
   * this field (core/signing.ts); nodes drop an event without a valid one.
   */
  sig?: string;
}

/** What a cache node offers the purge bus; returns once the event is applied. */
export interface PurgeTarget {
  readonly id: string;
  applyPurge(event: PurgeEvent): Promise<void> | void;
}

/**
 * Whether a purge event spares cached entries already at or past its serial:
 * only a change to named RRsets does (those entries hold the change already,
 * RFC 1982 order). An operator's purge (`explicit`) means "forget"; a
 * whole-zone event ("zone:<zone>" or "*": a zone created or deleted, a
 * resync) may follow a zone whose serials started again lower, where
 * serials do not compare.
 */
export function sparesCurrent(event: Pick<PurgeEvent, "explicit" | "keys">): boolean {
  return !event.explicit && !event.keys.some((k) => k === "*" || k.startsWith("zone:"));
}
