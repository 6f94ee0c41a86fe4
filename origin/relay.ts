/**
 * The relay: delivers purge events to edges that cannot hold a bus
 * connection (Workers), by authenticated HTTP POST to the edge's /purge. The
 * relay subscribes to the bus under the edge's own node id, so the bus's
 * ordering, retries (capped exponential backoff) and resume-after-restart
 * apply; the edge's 2xx is its ack, recorded in the receipts.
 */
import type { PurgeBus, Subscription } from "../core/bus.ts";
import type { Clock } from "../core/clock.ts";
import { zoneKey } from "../core/http.ts";
import type { PurgeEvent } from "../core/purge.ts";
import type { Receipts } from "./receipts.ts";

/** Events larger than this travel without their RRsets (edge/app.ts takes 64 KiB at most). */
export const MAX_EVENT_BYTES = 60 * 1024;

export interface RelayTarget {
  id: string;
  /** The edge's purge endpoint, e.g. https://edge.example.workers.dev/purge */
  purgeUrl: string;
  /** Bearer token the edge's /purge expects. */
  token: string;
}

export class Relay {
  private readonly subs = new Map<string, Subscription>();

  constructor(
    private readonly bus: PurgeBus,
    private readonly receipts: Receipts,
    /** The zones and their current serials, for resyncs. */
    private readonly zones: () => { zone: string; serial: number }[],
    private readonly clock: Clock,
    private readonly log: (message: string) => void,
    /** True for an event the origin signed (core/signing.ts); others are dropped, not relayed. */
    private readonly verify: (event: PurgeEvent) => boolean,
    private readonly timeoutMs = 5_000,
  ) {}

  /** Events dropped for a bad or missing signature. */
  forged = 0;

  /** Starts (or restarts) relaying to one edge. */
  async attach(target: RelayTarget): Promise<void> {
    await this.detach(target.id);
    const sub = await this.bus.subscribe(target.id, (event) => this.deliver(target, event), {
      onError: (f) => this.log(`relay: ${f.message}`),
      // Events this edge missed are gone from the bus: purge each zone as a whole.
      onResync: async () => {
        for (const { zone, serial } of this.zones()) {
          await this.post(target, {
            changeId: `resync:${zone}:${serial}`,
            zone,
            serial,
            keys: [zoneKey(zone)],
            mode: "invalidate",
            ts: this.clock.now(),
          });
        }
      },
    });
    this.subs.set(target.id, sub);
  }

  async detach(id: string): Promise<void> {
    await this.subs.get(id)?.close();
    this.subs.delete(id);
  }

  async close(): Promise<void> {
    for (const id of [...this.subs.keys()]) await this.detach(id);
  }

  private async deliver(target: RelayTarget, event: PurgeEvent): Promise<void> {
    if (!this.verify(event)) {
      this.forged++;
      this.log(`relay: dropped ${event.changeId} for ${target.id}: bad or missing signature`);
      return;
    }
    let body = JSON.stringify({ event });
    if (body.length > MAX_EVENT_BYTES && event.rrsets) {
      // Too big for the edge's /purge (64 KiB): send it without the RRsets, as a soft purge.
      const { rrsets: _dropped, ...rest } = event;
      body = JSON.stringify({ event: { ...rest, mode: "soft" } });
    }
    await this.post(target, event, body);
  }

  /** Posts one event to the edge and records its ack. */
  private async post(
    target: RelayTarget,
    event: PurgeEvent,
    body = JSON.stringify({ event }),
  ): Promise<void> {
    const res = await fetch(target.purgeUrl, {
      method: "POST",
      headers: { authorization: `Bearer ${target.token}`, "content-type": "application/json" },
      body,
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const text = await res.text();
    if (!res.ok) {
      // Thrown: the bus retries with backoff, then reports and resyncs.
      throw new Error(`${target.purgeUrl} answered HTTP ${res.status}: ${text.slice(0, 200)}`);
    }
    if (event.explicit) this.receipts.ackChange(target.id, event.changeId);
    else this.receipts.ack(target.id, event.zone, event.serial);
  }
}
