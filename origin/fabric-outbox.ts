/**
 * The origin's side of the bus: every committed change is tracked in the
 * receipts and published as one purge event, through an outbox that keeps
 * commit order and survives a bus outage. Every event is signed by the
 * origin's Ed25519 key (core/signing.ts).
 */
import { decodePurgeEvent, type PurgeBus } from "../core/bus.ts";
import { type Clock, sleep } from "../core/clock.ts";
import type { PropagationMode, PurgeEvent } from "../core/purge.ts";
import type { EventSigner } from "../core/signing.ts";
import { eventFromFeed } from "../core/sync.ts";
import type { Receipts } from "./receipts.ts";
import type { Store } from "./store.ts";

/**
 * Tracks every committed change in the receipts and publishes it on the bus
 * through an outbox. Returns the function that stops it.
 */
export function publishCommits(
  store: Store,
  receipts: Receipts,
  outbox: Outbox | undefined,
  modeOf: (zone: string) => PropagationMode,
): () => void {
  return store.onCommit((change) => {
    receipts.track(change);
    outbox?.push(eventFromFeed(change.zone, change, modeOf(change.zone)));
  });
}

export interface OutboxOptions {
  /** Events queued at most; past it the oldest are dropped. Default 100,000. */
  capacity?: number;
  /** Cap on the retry backoff while the bus is down. Default 2000 ms. */
  maxBackoffMs?: number;
  /** Signs every event before it is queued (nodes drop unsigned ones). */
  signer?: EventSigner;
}

/**
 * The event as every node will decode it off the bus (purgeEventSchema drops
 * what it does not know), signed: the signature covers exactly what nodes see.
 */
function signed(signer: EventSigner, event: PurgeEvent): PurgeEvent {
  return signer.sign(decodePurgeEvent(JSON.stringify(event)));
}

/**
 * Publishes events in commit order, retrying while the bus is unreachable
 * (Redis restarting), so an outage delays purges instead of losing them.
 * Past `capacity` queued events the oldest are dropped with a warning: the
 * nodes then learn those changes from the change feed (anti-entropy).
 */
export class Outbox {
  private readonly queue: PurgeEvent[] = [];
  private draining = false;
  private closed = false;
  private published = 0;
  private dropped = 0;

  private readonly capacity: number;
  private readonly maxBackoffMs: number;

  constructor(
    private readonly bus: PurgeBus,
    private readonly clock: Clock,
    private readonly log: (message: string) => void,
    private readonly o: OutboxOptions = {},
  ) {
    this.capacity = o.capacity ?? 100_000;
    this.maxBackoffMs = o.maxBackoffMs ?? 2_000;
  }

  push(event: PurgeEvent): void {
    if (this.closed) return;
    this.queue.push(this.o.signer ? signed(this.o.signer, event) : event);
    if (this.queue.length > this.capacity) {
      this.queue.shift();
      this.dropped++;
      if (this.dropped % 1000 === 1) {
        this.log(
          `bus: outbox full (${this.capacity}); dropping oldest events, anti-entropy will repair`,
        );
      }
    }
    if (!this.draining) void this.drain();
  }

  stats(): { queued: number; published: number; dropped: number } {
    return { queued: this.queue.length, published: this.published, dropped: this.dropped };
  }

  close(): void {
    this.closed = true;
  }

  private async drain(): Promise<void> {
    this.draining = true;
    let backoff = 50;
    while (this.queue.length > 0 && !this.closed) {
      const event = this.queue[0]!;
      try {
        await this.bus.publish(event);
        // Overflow may have dropped it meanwhile; only remove what was published.
        if (this.queue[0] === event) this.queue.shift();
        this.published++;
        backoff = 50;
      } catch (err) {
        this.log(
          `bus: publishing ${event.changeId} failed (${(err as Error).message}); retrying in ${backoff} ms`,
        );
        await sleep(this.clock, backoff);
        backoff = Math.min(backoff * 2, this.maxBackoffMs);
      }
    }
    this.draining = false;
  }
}
