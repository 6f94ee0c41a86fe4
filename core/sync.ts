/**
 * NodeSync: how one cache node stays in sync with the origin.
 *
 * - The fast path: purge events from the bus, applied in order.
 * - Anti-entropy: the node polls the change feed for each zone it knows
 *   (`GET /v1/zones/{zone}/changes?since=N`) on a jittered interval, and
 *   applies what the bus did not bring. A 410 (feed compacted) or a bus
 *   resync purges the whole zone and restarts from the current serial.
 * - Receipts: once a change is applied the node acks (zone, serial) to the
 *   origin. In `ttl` mode nothing is purged; the node acks when every entry it
 *   could still serve from before the change has run out (`residualMs`).
 *
 * Applying is idempotent: an event at or below the zone's applied serial is
 * only re-acked. Pure: the feed, the ack and the clock are injected.
 */
import type { Clock, TimerId } from "./clock.ts";
import { zoneKey } from "./http.ts";
import type { PropagationMode, PurgeEvent, PurgeTarget } from "./purge.ts";
import { Random } from "./random.ts";
import type { RRset, RRType } from "./records.ts";
import { serialAdd, serialGt, serialLt } from "./serial.ts";

/** One change as the origin's feed reports it. */
export interface FeedChange {
  changeId: string;
  op: "create" | "update" | "delete";
  serial: number;
  ts: number;
  changes: { name: string; type: RRType; rrset: RRset | null }[];
}

export type FeedResult =
  | {
      kind: "changes";
      serial: number;
      changes: FeedChange[];
      /** The zone's mode as the origin reports it; else the node's own `modeOf`. */
      mode?: PropagationMode;
    }
  /** The feed no longer reaches back to `since` (HTTP 410), or the zone is gone (404). */
  | { kind: "gone" };

/** A target that can also say how long it may still serve data from before an event. */
export interface SyncTarget extends PurgeTarget {
  residualMs?(event: PurgeEvent): number;
  /**
   * Forgets the zone's version floors and drops its entries: the only way a
   * floor goes down, for a node whose floor is above the serial the origin
   * says exists (an event the origin never published raised it).
   */
  resetZone?(zone: string): void;
}

export interface NodeSyncOptions {
  nodeId: string;
  target: SyncTarget;
  clock: Clock;
  /** Reads the change feed of `zone` after serial `since`. */
  feed: (zone: string, since: number) => Promise<FeedResult>;
  /** The zones to follow and their current serials (the origin's zone list). */
  zones: () => Promise<{ zone: string; serial: number }[]>;
  /** Reports (zone, serial) applied to the origin's receipts. */
  ack: (zone: string, serial: number) => Promise<void>;
  /** Reports an explicit purge applied, by its change id. */
  ackPurge?: (changeId: string) => Promise<void>;
  modeOf: (zone: string) => PropagationMode;
  pollIntervalMs: number;
  /** Fraction of the interval added or removed at random, so nodes do not poll in step. */
  pollJitter: number;
  seed?: number | string;
  log?: (message: string) => void;
  /**
   * The target is a process that just started, empty: raise each zone's
   * version floor to the serial the origin reports at start, acking nothing
   * (it applied no change). A restarted node must not fill from a parent
   * still holding an older version than it served before the restart, or
   * than it acked (the origin's receipts keep acks across re-registration):
   * found by the simulator's node restarts (infra/sim/restart.ts).
   */
  floorAtStart?: boolean;
  /**
   * True for an event the origin signed (core/signing.ts `eventVerifier`). A bus
   * event that fails it is dropped and counted in `forged`: anyone who can write
   * to the bus could otherwise purge or rewrite this node's cache. Absent: the bus
   * is trusted (one process, the simulator).
   */
  verify?: (event: PurgeEvent) => boolean;
}

export interface SyncStats {
  busEvents: number;
  feedChanges: number;
  duplicates: number;
  resyncs: number;
  /** Bus events that arrived after a gap, which the feed had to fill first. */
  gaps: number;
  polls: number;
  pollErrors: number;
  ackErrors: number;
  /** Bus events dropped for a bad or missing signature. */
  forged: number;
  /** Zones reset because this node was ahead of the origin's serial. */
  aheadResets: number;
  /** Bus events refused for a serial beyond the one the origin's feed reports. */
  beyondOrigin: number;
}

export class NodeSync {
  /** Per zone, the highest serial applied. */
  private readonly applied = new Map<string, number>();
  private readonly random: Random;
  private timer: TimerId | undefined;
  private stopped = false;
  private polling: Promise<void> | undefined;
  private readonly counters: SyncStats = {
    busEvents: 0,
    feedChanges: 0,
    duplicates: 0,
    resyncs: 0,
    gaps: 0,
    polls: 0,
    pollErrors: 0,
    ackErrors: 0,
    forged: 0,
    aheadResets: 0,
    beyondOrigin: 0,
  };
  /** Per zone, the serial the origin's feed last reported. */
  private readonly feedSerial = new Map<string, number>();

  constructor(private readonly o: NodeSyncOptions) {
    this.random = new Random(o.seed ?? o.nodeId);
  }

  stats(): SyncStats {
    return { ...this.counters };
  }

  appliedSerial(zone: string): number | undefined {
    return this.applied.get(zone);
  }

  /**
   * Learns the zones and their serials (the node's cache is empty now), then
   * starts polling. With `floorAtStart`, each zone's version floor is raised
   * to the serial learned (see that option).
   */
  async start(): Promise<void> {
    const now = this.o.clock.now();
    for (const { zone, serial } of await this.o.zones()) {
      if (this.applied.has(zone)) continue;
      this.applied.set(zone, serial);
      if (!this.o.floorAtStart) continue;
      await this.o.target.applyPurge({
        changeId: `start:${zone}:${now}`,
        zone,
        serial,
        keys: [zoneKey(zone)],
        mode: "invalidate",
        ts: now,
      });
    }
    this.schedule();
  }

  stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== undefined) this.o.clock.clearTimeout(this.timer);
    return this.polling ?? Promise.resolve();
  }

  /** The bus handler: applies an event unless already applied, then acks. */
  async onEvent(event: PurgeEvent): Promise<void> {
    this.counters.busEvents++;
    if (this.o.verify && !this.o.verify(event)) {
      this.counters.forged++;
      this.o.log?.(
        `${this.o.nodeId}: dropped bus event ${event.changeId} (zone ${event.zone}, serial ${event.serial}): bad or missing signature`,
      );
      return; // acked on the bus so it is not redelivered, never applied nor acked to the origin
    }
    await this.apply(event);
  }

  /** The bus lost events for this node: drop every zone, then catch up from the feed. */
  async onResync(reason: string): Promise<void> {
    this.o.log?.(`${this.o.nodeId}: resync (${reason})`);
    for (const zone of [...this.applied.keys()]) await this.resyncZone(zone);
  }

  /** One anti-entropy round over every known zone; also picks up new zones. */
  async poll(): Promise<void> {
    this.counters.polls++;
    await this.learnZones();
    for (const zone of [...this.applied.keys()]) {
      try {
        await this.pollZone(zone);
      } catch (err) {
        this.counters.pollErrors++;
        this.o.log?.(`${this.o.nodeId}: change feed of ${zone} failed: ${(err as Error).message}`);
      }
    }
  }

  private async learnZones(): Promise<void> {
    try {
      for (const { zone, serial } of await this.o.zones()) {
        if (!this.applied.has(zone)) this.applied.set(zone, serial);
      }
    } catch (err) {
      this.counters.pollErrors++;
      this.o.log?.(`${this.o.nodeId}: zone list failed: ${(err as Error).message}`);
    }
  }

  private async pollZone(zone: string): Promise<void> {
    const since = this.applied.get(zone);
    if (since === undefined) return;
    const result = await this.o.feed(zone, since);
    if (result.kind === "gone") {
      await this.resyncZone(zone);
      return;
    }
    this.feedSerial.set(zone, result.serial);
    for (const change of result.changes) {
      this.counters.feedChanges++;
      await this.apply(eventFromFeed(zone, change, result.mode ?? this.o.modeOf(zone)), true);
    }
  }

  /**
   * Drops a zone and restarts from its current serial. The serial is read
   * before the purge: a change committed in between is then above it and
   * still applied later, so no stale fill can slip through.
   */
  private async resyncZone(zone: string): Promise<void> {
    this.counters.resyncs++;
    const current = (await this.o.zones()).find((z) => z.zone === zone)?.serial;
    const held = this.applied.get(zone);
    if (current !== undefined && held !== undefined && serialGt(held, current)) {
      // This node applied a serial the origin never reached: its floors would refuse
      // every real answer (or ask for a serial that does not exist). Only forgetting helps.
      this.counters.aheadResets++;
      this.o.log?.(
        `${this.o.nodeId}: ${zone} is at serial ${held} here but ${current} at the origin; resetting the zone`,
      );
      this.o.target.resetZone?.(zone);
    }
    const now = this.o.clock.now();
    await this.o.target.applyPurge({
      changeId: `resync:${zone}:${now}`,
      zone,
      serial: current ?? this.applied.get(zone) ?? 0,
      keys: [zoneKey(zone)],
      mode: "invalidate",
      ts: now,
    });
    if (current === undefined) {
      this.applied.delete(zone); // the zone is gone
      return;
    }
    this.applied.set(zone, current);
    await this.sendAck(zone, current);
  }

  /**
   * Changes between the applied serial and a newer event never reached this
   * node (a lost or partitioned delivery): every change bumps the serial by one,
   * so the gap is visible, and the feed fills it before the event applies.
   */
  private async catchUp(zone: string): Promise<number | undefined> {
    this.counters.gaps++;
    try {
      await this.pollZone(zone);
    } catch (err) {
      this.counters.pollErrors++;
      this.o.log?.(`${this.o.nodeId}: catching up ${zone} failed: ${(err as Error).message}`);
    }
    return this.applied.get(zone);
  }

  private async apply(event: PurgeEvent, fromFeed = false): Promise<void> {
    if (event.explicit) {
      // Not a change: nothing to compare serials with, and applying twice is harmless.
      await this.o.target.applyPurge(event);
      await this.report(() => this.o.ackPurge?.(event.changeId), `purge ${event.changeId}`);
      return;
    }
    const zone = event.zone;
    // A zone created or deleted: its serials may start again lower, so it always applies.
    const wholeZone = event.keys.includes(zoneKey(zone));
    const prev = this.applied.get(zone);
    // A zone this node has not heard of (just created): read the zone list now rather
    // than at the next poll, so the node knows it serves it (a resolver answers it).
    if (prev === undefined && !fromFeed) await this.learnZones();
    if (!wholeZone && prev !== undefined) {
      if (!serialGt(event.serial, prev)) {
        this.counters.duplicates++;
        return;
      }
      if (!fromFeed && event.serial !== serialAdd(prev, 1)) {
        this.feedSerial.delete(zone);
        const caught = await this.catchUp(zone);
        const atOrigin = this.feedSerial.get(zone);
        if (atOrigin !== undefined && serialGt(event.serial, atOrigin)) {
          // A serial the origin has not reached cannot come from it: applying it would
          // raise every floor above anything the origin can serve.
          this.counters.beyondOrigin++;
          this.o.log?.(
            `${this.o.nodeId}: refused bus event ${event.changeId}: serial ${event.serial} is beyond ${zone}'s ${atOrigin} at the origin`,
          );
          return;
        }
        if (caught !== undefined && !serialLt(caught, event.serial)) {
          this.counters.duplicates++; // the feed brought this change too
          return;
        }
        if (caught === undefined || serialAdd(caught, 1) !== event.serial) {
          // Still a gap (feed unreachable): purge what this event names, but neither
          // advance nor ack, or the cumulative ack would cover the missing changes.
          await this.o.target.applyPurge(event);
          return;
        }
      }
    }
    await this.o.target.applyPurge(event);
    const now = this.applied.get(zone);
    if (wholeZone || now === undefined || serialLt(now, event.serial)) {
      this.applied.set(zone, event.serial);
    }
    const wait = event.mode === "ttl" ? (this.o.target.residualMs?.(event) ?? 0) : 0;
    if (wait <= 0) await this.sendAck(event.zone, event.serial);
    else this.o.clock.setTimeout(() => void this.sendAck(event.zone, event.serial), wait);
  }

  private sendAck(zone: string, serial: number): Promise<void> {
    // A lost ack is covered by the next change's (acks are cumulative).
    return this.report(() => this.o.ack(zone, serial), `${zone}@${serial}`);
  }

  private async report(send: () => Promise<void> | undefined, what: string): Promise<void> {
    try {
      await send();
    } catch (err) {
      this.counters.ackErrors++;
      this.o.log?.(`${this.o.nodeId}: ack ${what} failed: ${(err as Error).message}`);
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    const { pollIntervalMs: base, pollJitter: j } = this.o;
    const delay = base * (1 - j + 2 * j * this.random.next());
    this.timer = this.o.clock.setTimeout(() => {
      this.polling = this.poll().finally(() => {
        this.polling = undefined;
        this.schedule();
      });
    }, delay);
  }
}

/** The purge event a feed change stands for: keys are the owner names it touched. */
export function eventFromFeed(zone: string, change: FeedChange, mode: PropagationMode): PurgeEvent {
  const whole = change.op !== "update";
  const keys = whole ? [zoneKey(zone)] : [...new Set(change.changes.map((c) => c.name))];
  const event: PurgeEvent = {
    changeId: change.changeId,
    zone,
    serial: change.serial,
    keys,
    mode,
    ts: change.ts,
  };
  if (mode === "push") {
    event.rrsets = change.changes.map(
      (c) => c.rrset ?? { name: c.name, type: c.type, ttl: 0, data: [] },
    );
  }
  return event;
}

/** One node's ack as a batch carries it (origin: POST /v1/acks): the node, its token, the ack. */
export type AckItem = { node: string; token: string } & (
  | { zone: string; serial: number }
  | { changeId: string }
);

/** The origin's answer to one item: the HTTP status and body it would have had alone. */
export interface AckAnswer {
  status: number;
  body: Record<string, unknown>;
}

/**
 * Coalesces the acks of every node in one process into as few requests to
 * the origin as possible: at most one request is in flight, and the acks
 * made meanwhile leave together in the next. No timer: the first ack leaves
 * at once, or after `defer` (Node: setImmediate, the end of this turn of the
 * event loop), so a lone node waits for nothing, and when 100 nodes of one
 * process apply an event together (one turn: the memory bus delivers by
 * promise jobs) their acks share one request (origin: one parse and one
 * response instead of 100); without `defer`, the first leaves alone and the
 * 99 made while it is on its way share the next.
 * Each caller still gets its own item's answer, so an ack means exactly what
 * it meant sent alone: this node applied this change.
 */
export class AckBatcher {
  private queue: { item: AckItem; done: (a: AckAnswer) => void; fail: (e: unknown) => void }[] = [];
  private sending = false;
  private readonly counters = { requests: 0, acks: 0 };

  constructor(
    /** Sends items and answers each, in order; rejects when the request as a whole failed. */
    private readonly send: (items: AckItem[]) => Promise<AckAnswer[]>,
    /** Items per request at most. */
    private readonly max = 1000,
    /** Runs the first send of a burst later in this turn (setImmediate); default: at once. */
    private readonly defer?: (send: () => void) => void,
  ) {}

  ack(item: AckItem): Promise<AckAnswer> {
    return new Promise((done, fail) => {
      this.queue.push({ item, done, fail });
      if (this.sending) return;
      this.sending = true;
      if (this.defer) this.defer(() => void this.drain());
      else void this.drain();
    });
  }

  stats(): { requests: number; acks: number } {
    return { ...this.counters };
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.max);
      this.counters.requests++;
      this.counters.acks += batch.length;
      try {
        const answers = await this.send(batch.map((b) => b.item));
        if (answers.length !== batch.length) {
          throw new Error(`the origin answered ${answers.length} of ${batch.length} acks`);
        }
        for (const [i, b] of batch.entries()) b.done(answers[i]!);
      } catch (err) {
        for (const b of batch) b.fail(err);
      }
    }
    this.sending = false;
  }
}
