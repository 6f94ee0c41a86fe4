/**
 * The purge bus: the origin publishes one PurgeEvent per committed change and
 * every cache node subscribes under its own id. Two implementations share this
 * contract: MemoryBus (one process) and RedisBus (Redis Streams, redis-bus.ts).
 *
 * Contract, for every implementation:
 * - per subscriber, events are handed to the handler one at a time, in publish
 *   order; the handler's promise resolving is the node's ack;
 * - delivery is at least once: a node that closes, crashes or loses its
 *   connection resumes from the last position it acked, so it may see an event
 *   again. Receivers must be idempotent (apply by change id / serial);
 * - a node whose position is no longer on the bus (trimmed, or the bus was
 *   reset) gets `onResync(reason)` and then continues from the current tail;
 *   it must resync the zones it holds from the origin's change feed;
 * - a handler that throws is retried with capped exponential backoff; every
 *   failure is reported through `onError`; after `maxAttempts` the event is
 *   given up and the node is told to resync, so nothing is lost silently;
 * - with a `link`, each delivery passes through that node's LinkDelay on the
 *   bus's clock: delayed by the sampled latency (still in order, as over one
 *   TCP connection), or lost (a lost event is not redelivered: anti-entropy
 *   repairs it, which is what modelled loss is for).
 */
import { z } from "zod";
import type { Clock, TimerId } from "./clock.ts";
import { RealClock } from "./clock.ts";
import type { LinkDelay } from "./delay.ts";
import { issueLines } from "./issue.ts";
import type { PurgeEvent } from "./purge.ts";
import { rdataSchemas, rrTypeSchema, ttlSchema } from "./records.ts";

/** `from` meaning "only events published after subscribe() resolves". */
export const TAIL = "$";
/** `from` meaning "every event the bus still holds". */
export const BEGINNING = "0";

export type PurgeHandler = (event: PurgeEvent) => Promise<void>;

export interface RetryPolicy {
  /** Attempts per event, the first included. Default 5. */
  maxAttempts: number;
  /** Backoff before the second attempt; doubles after each failure. Default 100 ms. */
  baseMs: number;
  /** Cap on one backoff. Default 5000 ms. */
  maxMs: number;
}
export const DEFAULT_RETRY: RetryPolicy = { maxAttempts: 5, baseMs: 100, maxMs: 5000 };

/** A handler (or resync) failure, as reported to `onError`. */
export interface DeliveryFailure {
  nodeId: string;
  /** The event that failed; absent when onResync failed. */
  event?: PurgeEvent;
  error: unknown;
  attempt: number;
  /** True when no further attempt will be made. */
  final: boolean;
  message: string;
}

export interface SubscribeOptions {
  /**
   * Position to resume after: one returned by publish() or position(),
   * BEGINNING or TAIL. Default: the position this node id last acked on this
   * bus if the bus remembers one, else TAIL.
   */
  from?: string;
  /** The link from the bus to this node. */
  link?: LinkDelay;
  /** Called, in order with the events, when events were lost to this node. */
  onResync?: (reason: string) => Promise<void>;
  /** Every handler or resync failure. Default: console.error. */
  onError?: (failure: DeliveryFailure) => void;
  retry?: Partial<RetryPolicy>;
}

export interface SubscriptionStats {
  /** Events read from the bus for this node. */
  received: number;
  /** Events the handler acked. */
  delivered: number;
  /** Events the link lost (loss or partition). */
  dropped: number;
  /** Events given up after maxAttempts. */
  failed: number;
  /** Handler attempts that threw. */
  errors: number;
  resyncs: number;
  /** Events read but not yet handled. */
  queued: number;
}

export interface Subscription {
  readonly nodeId: string;
  /** Where this node is: its start position, then the last event it acked or lost on its link. */
  position(): string | undefined;
  stats(): SubscriptionStats;
  /** Stops delivery; waits for a handler in progress. Unacked events stay on the bus. */
  close(): Promise<void>;
}

export interface PurgeBus {
  /** Appends an event; resolves with its position once the bus holds it. */
  publish(event: PurgeEvent): Promise<string>;
  /** Resolves once the start position is fixed: every later publish reaches this node. */
  subscribe(nodeId: string, handler: PurgeHandler, opts?: SubscribeOptions): Promise<Subscription>;
  /** Closes every subscription and the bus's connections. */
  close(): Promise<void>;
}

const rrsetSchema = z
  .object({
    name: z.string(),
    type: rrTypeSchema,
    ttl: ttlSchema,
    data: z.array(z.unknown()),
    version: z.number().int().optional(),
  })
  .superRefine((set, ctx) => {
    for (const [i, d] of set.data.entries()) {
      if (!rdataSchemas[set.type].safeParse(d).success) {
        ctx.addIssue({
          code: "custom",
          path: ["data", i],
          message: `not a valid ${set.type} rdata`,
        });
      }
    }
  });

/** PurgeEvent as it crosses a process boundary (Redis, HTTP relay). */
export const purgeEventSchema = z.object({
  changeId: z.string().min(1),
  zone: z.string(),
  serial: z
    .number()
    .int()
    .min(0)
    .max(2 ** 32 - 1),
  keys: z.array(z.string()),
  mode: z.enum(["ttl", "invalidate", "soft", "push"]),
  ts: z.number(),
  rrsets: z.array(rrsetSchema).optional(),
  explicit: z.boolean().optional(),
  sig: z.string().max(200).optional(),
});

/** Parses an event from JSON text; throws with the bad field named. */
export function decodePurgeEvent(json: string): PurgeEvent {
  const result = purgeEventSchema.safeParse(JSON.parse(json));
  if (!result.success) {
    const why = issueLines(result.error.issues, "(event)").join("; ");
    throw new Error(`not a purge event: ${why}`);
  }
  // rdata were checked against their type's schema above; the shapes are dns-packet's.
  return result.data as PurgeEvent;
}

type Item =
  | { kind: "event"; event: PurgeEvent; position: string; dueAt: number }
  | { kind: "skip"; position: string }
  | { kind: "resync"; reason: string; position: string };

export interface PumpOptions {
  nodeId: string;
  handler: PurgeHandler;
  clock: Clock;
  start: string | undefined;
  link?: LinkDelay;
  onResync?: (reason: string) => Promise<void>;
  onError?: (failure: DeliveryFailure) => void;
  retry?: Partial<RetryPolicy>;
  /** Called each time the acked position moves forward. */
  onPosition?: (position: string) => void;
}

/**
 * One subscriber's delivery machinery, shared by both buses: a FIFO of what
 * was read from the bus, the link delay, the handler with retries, resyncs,
 * and the acked position. Bus implementations feed it; nodes never see it.
 */
export class DeliveryPump {
  private readonly queue: Item[] = [];
  private head = 0;
  private wake: (() => void) | undefined;
  private sleeping: { id: TimerId; resolve: () => void } | undefined;
  private roomWaiters: (() => void)[] = [];
  private closed = false;
  private last: string | undefined;
  private readonly retry: RetryPolicy;
  private readonly report: (f: DeliveryFailure) => void;
  private readonly counters = {
    received: 0,
    delivered: 0,
    dropped: 0,
    failed: 0,
    errors: 0,
    resyncs: 0,
  };
  private readonly done: Promise<void>;

  constructor(private readonly o: PumpOptions) {
    this.last = o.start;
    this.retry = { ...DEFAULT_RETRY, ...o.retry };
    this.report = o.onError ?? ((f) => console.error(`purge bus: ${f.message}`, f.error));
    this.done = this.run();
  }

  /** Hands over an event read from the bus now; the link decides its fate. */
  offer(event: PurgeEvent, position: string): void {
    this.counters.received++;
    const s = this.o.link?.sample() ?? { dropped: false, delayMs: 0 };
    if (s.dropped) {
      this.counters.dropped++;
      this.push({ kind: "skip", position });
    } else {
      this.push({ kind: "event", event, position, dueAt: this.o.clock.now() + s.delayMs });
    }
  }

  /** Moves past an entry that is not an event (reported by the caller). */
  skip(position: string): void {
    this.push({ kind: "skip", position });
  }

  /** Queues a resync, after which the position becomes `position` (the tail). */
  resync(reason: string, position: string): void {
    this.push({ kind: "resync", reason, position });
  }

  position(): string | undefined {
    return this.last;
  }

  get size(): number {
    return this.queue.length - this.head;
  }

  stats(): SubscriptionStats {
    return { ...this.counters, queued: this.size };
  }

  /** Resolves once fewer than `max` items wait (backpressure for a reader). */
  async waitForRoom(max: number): Promise<void> {
    while (!this.closed && this.size >= max) {
      await new Promise<void>((resolve) => this.roomWaiters.push(resolve));
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    if (this.sleeping) {
      this.o.clock.clearTimeout(this.sleeping.id);
      this.sleeping.resolve();
    }
    for (const w of this.roomWaiters.splice(0)) w();
    await this.done;
  }

  private push(item: Item): void {
    if (this.closed) return;
    this.queue.push(item);
    this.wake?.();
  }

  private shift(): Item | undefined {
    const item = this.queue[this.head];
    if (item === undefined) return undefined;
    this.head++;
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    for (const w of this.roomWaiters.splice(0)) w();
    return item;
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      const item = this.shift();
      if (!item) {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
        this.wake = undefined;
        continue;
      }
      let done = true;
      if (item.kind === "event") {
        if (item.dueAt > this.o.clock.now()) await this.sleepUntil(item.dueAt);
        if (this.closed) return;
        done = await this.deliver(item.event);
      } else if (item.kind === "resync") {
        done = await this.doResync(item.reason);
      }
      // Only close() interrupting a retry leaves an item undone: it stays
      // unacked, so it is delivered again on resume.
      if (!done) return;
      this.advance(item.position);
    }
  }

  private advance(position: string): void {
    this.last = position;
    this.o.onPosition?.(position);
  }

  /** False when close() interrupted it. */
  private async deliver(event: PurgeEvent): Promise<boolean> {
    const what = `change ${event.changeId} (zone ${event.zone}, serial ${event.serial})`;
    const outcome = await this.attempt(what, event, () => this.o.handler(event));
    if (outcome === "acked") this.counters.delivered++;
    if (outcome !== "gave-up") return outcome === "acked";
    this.counters.failed++;
    return this.doResync(`handler for ${what} failed ${this.retry.maxAttempts} times`);
  }

  /** False when close() interrupted it. */
  private async doResync(reason: string): Promise<boolean> {
    this.counters.resyncs++;
    const onResync = this.o.onResync;
    if (onResync)
      return (await this.attempt("resync", undefined, () => onResync(reason))) !== "closed";
    this.report({
      nodeId: this.o.nodeId,
      error: new Error(reason),
      attempt: 1,
      final: true,
      message: `node ${this.o.nodeId} missed events and has no onResync: ${reason}; pass onResync to subscribe() to resync from the origin's change feed`,
    });
    return true;
  }

  /** Runs fn with retries; "closed" when close() interrupted the backoff. */
  private async attempt(
    what: string,
    event: PurgeEvent | undefined,
    fn: () => Promise<void>,
  ): Promise<"acked" | "gave-up" | "closed"> {
    const { maxAttempts, baseMs, maxMs } = this.retry;
    for (let attempt = 1; ; attempt++) {
      try {
        await fn();
        return "acked";
      } catch (error) {
        this.counters.errors++;
        const final = attempt >= maxAttempts;
        const message = `node ${this.o.nodeId}: ${what} failed (attempt ${attempt}/${maxAttempts})${final ? ", giving up" : ", will retry"}: ${error instanceof Error ? error.message : String(error)}`;
        this.report({
          nodeId: this.o.nodeId,
          ...(event ? { event } : {}),
          error,
          attempt,
          final,
          message,
        });
        if (final) return "gave-up";
      }
      await this.sleepUntil(this.o.clock.now() + Math.min(maxMs, baseMs * 2 ** (attempt - 1)));
      if (this.closed) return "closed";
    }
  }

  private async sleepUntil(at: number): Promise<void> {
    const ms = at - this.o.clock.now();
    if (ms <= 0 || this.closed) return;
    await new Promise<void>((resolve) => {
      const id = this.o.clock.setTimeout(() => {
        this.sleeping = undefined;
        resolve();
      }, ms);
      this.sleeping = { id, resolve };
    });
  }
}

export interface MemoryBusOptions {
  clock?: Clock;
  /** Events kept for late subscribers; older positions resync. Default 10,000. */
  capacity?: number;
}

/**
 * The in-process bus: a bounded ring of events (positions are decimal
 * sequence numbers from "1"), and per node id the last acked position, so a
 * node that subscribes again resumes where it stopped.
 */
export class MemoryBus implements PurgeBus {
  private readonly clock: Clock;
  private readonly capacity: number;
  private readonly ring: PurgeEvent[] = [];
  private seq = 0;
  private readonly subs = new Map<string, DeliveryPump>();
  private readonly acked = new Map<string, string>();
  private closed = false;

  constructor(opts: MemoryBusOptions = {}) {
    this.clock = opts.clock ?? new RealClock();
    this.capacity = opts.capacity ?? 10_000;
    if (!Number.isInteger(this.capacity) || this.capacity < 1) {
      throw new RangeError(`MemoryBus capacity ${this.capacity} must be a positive integer`);
    }
  }

  async publish(event: PurgeEvent): Promise<string> {
    if (this.closed) throw new Error("MemoryBus is closed; publish on an open bus");
    // One frozen copy for everyone: a handler cannot change what another node sees.
    const frozen = deepFreeze(structuredClone(event));
    this.seq++;
    this.ring[(this.seq - 1) % this.capacity] = frozen;
    const position = String(this.seq);
    for (const pump of this.subs.values()) pump.offer(frozen, position);
    return position;
  }

  async subscribe(
    nodeId: string,
    handler: PurgeHandler,
    opts: SubscribeOptions = {},
  ): Promise<Subscription> {
    if (this.closed) throw new Error("MemoryBus is closed; subscribe on an open bus");
    if (this.subs.has(nodeId)) {
      throw new Error(`node "${nodeId}" is already subscribed; close that subscription first`);
    }
    const from = this.startSeq(opts.from ?? this.acked.get(nodeId) ?? TAIL);
    const first = Math.max(1, this.seq - this.capacity + 1);
    const lost =
      from > this.seq
        ? `position ${from} is ahead of the bus's last position ${this.seq}: the bus was reset`
        : from < first - 1
          ? `position ${from} is no longer on the bus, which keeps the last ${this.capacity} events (oldest ${first})`
          : undefined;
    const pump = new DeliveryPump({
      ...opts,
      nodeId,
      handler,
      clock: this.clock,
      start: String(from),
      onPosition: (p) => this.acked.set(nodeId, p),
    });
    if (lost) {
      pump.resync(lost, String(this.seq));
    } else {
      for (let s = from + 1; s <= this.seq; s++)
        pump.offer(this.ring[(s - 1) % this.capacity]!, String(s));
    }
    this.subs.set(nodeId, pump);
    // Remembered at once, so a node that closes before any event resumes here, not at a later tail.
    this.acked.set(nodeId, String(from));
    return {
      nodeId,
      position: () => pump.position(),
      stats: () => pump.stats(),
      close: async () => {
        if (this.subs.get(nodeId) === pump) this.subs.delete(nodeId);
        await pump.close();
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    const pumps = [...this.subs.values()];
    this.subs.clear();
    await Promise.all(pumps.map((p) => p.close()));
  }

  private startSeq(from: string): number {
    if (from === TAIL) return this.seq;
    if (!/^\d+$/.test(from)) {
      throw new Error(
        `"${from}" is not a MemoryBus position; pass one returned by publish() or position(), "${BEGINNING}" or "${TAIL}"`,
      );
    }
    return Number(from);
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object") {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
