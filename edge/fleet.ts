/**
 * An isolate's side of the fleet floor (edge/floor-do.ts). A deployed Worker
 * runs as many isolates, each with its own cache, and the origin's relay
 * reaches one of them per event. So the isolate that receives an event
 * stores it in the fleet's Durable Object before answering, and every
 * isolate, before serving a request, applies the events it has not seen
 * yet (Edge.applyPurge: drops, marks, rewrites and, above all, raises the
 * version floor, so an old entry is refused and never refilled).
 *
 * The local cache of the floor: an isolate asks the Durable Object at most
 * once per `cacheMs` (FLOOR_CACHE_MS, default 1000 ms), timed from when the
 * question was sent. So an event stored at t is applied by every isolate
 * before it serves anything after t + cacheMs; the relay's POST is answered
 * only then (worker.ts holds the 2xx), so the Worker's receipt says INSYNC
 * only once every isolate will refuse the old entry. The cost is in the
 * bound: a Worker edge's receipt comes up to cacheMs later than a Node
 * edge's (infra/predict.ts `workerFloorCacheMs`).
 */
import { zoneKey } from "../core/http.ts";
import type { PurgeEvent } from "../core/purge.ts";
import type { SinceAnswer } from "./floor-do.ts";

/** How long an isolate trusts what it last learnt from the fleet floor. */
export const DEFAULT_FLOOR_CACHE_MS = 1000;
/** The relay's 2xx is held for the cache time, and the relay waits 5 s (origin/relay.ts). */
export const MAX_FLOOR_CACHE_MS = 4000;

/** The parts of a Durable Object namespace binding used here. */
export interface FloorNamespace {
  idFromName(name: string): unknown;
  get(id: unknown): { fetch(input: string, init?: RequestInit): Promise<Response> };
}

export interface FleetOptions {
  ns: FloorNamespace;
  /** The Durable Object's name: one object per fleet (every isolate of the Worker). */
  fleet: string;
  cacheMs: number;
  /** Where events are applied: the isolate's engine. */
  target: { applyPurge(event: PurgeEvent): void };
  now: () => number;
}

export class FleetFloorClient {
  /** The last event applied here. */
  private seq = 0;
  /** When the last question that answered was sent. */
  private verifiedAt = Number.NEGATIVE_INFINITY;
  /** Events this isolate applied as it stored them (not to be applied twice). */
  private readonly applied = new Set<number>();

  constructor(private readonly o: FleetOptions) {}

  /** A stub per call: a stub is bound to the request that made it. */
  private stub() {
    return this.o.ns.get(this.o.ns.idFromName(this.o.fleet));
  }

  /** Stores an event this isolate already applied; resolves once the object stored it. */
  async record(event: PurgeEvent): Promise<number> {
    const res = await this.stub().fetch("https://fleet-floor/events", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(event),
    });
    if (!res.ok) throw new Error(`fleet floor answered HTTP ${res.status}: ${await res.text()}`);
    const { seq } = (await res.json()) as { seq: number };
    if (seq > this.seq) this.applied.add(seq);
    return seq;
  }

  /** Applies the events not seen yet, unless the last question was sent less than cacheMs ago. */
  async fresh(): Promise<void> {
    const sent = this.o.now();
    if (sent - this.verifiedAt < this.o.cacheMs) return;
    await this.pull();
    this.verifiedAt = Math.max(this.verifiedAt, sent);
  }

  private async pull(): Promise<void> {
    for (;;) {
      const res = await this.stub().fetch(`https://fleet-floor/since?after=${this.seq}`);
      if (!res.ok) throw new Error(`fleet floor answered HTTP ${res.status}: ${await res.text()}`);
      const a = (await res.json()) as SinceAnswer;
      if (a.gap) {
        // Behind the kept log: a zone-wide invalidate at each zone's serial, as a bus resync.
        for (const [zone, serial] of Object.entries(a.zones ?? {})) {
          this.o.target.applyPurge({
            changeId: `fleet-resync:${zone}:${serial}`,
            zone,
            serial,
            keys: [zoneKey(zone)],
            mode: "invalidate",
            ts: this.o.now(),
          });
        }
        this.seq = a.seq;
        this.applied.clear();
        return;
      }
      for (const { seq, event } of a.events ?? []) {
        if (seq <= this.seq) continue; // a concurrent pull applied it
        if (!this.applied.delete(seq)) this.o.target.applyPurge(event);
        this.seq = seq;
      }
      if (!a.more) return;
    }
  }
}
