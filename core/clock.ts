/**
 * The Clock: the only source of time and timers for policy code.
 * `RealClock` wraps the platform; `VirtualClock` moves only when a test or the
 * simulator advances it, firing due timers in time order.
 */

import { SlotHeap } from "./slot-heap.ts";

export type TimerId = number;

export interface Clock {
  /** Milliseconds since the epoch (virtual or real). */
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId): void;
}

/** Node's longest timer (2^31 - 1 ms); a longer one would fire after 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class RealClock implements Clock {
  private next = 1;
  private readonly timers = new Map<TimerId, ReturnType<typeof setTimeout>>();

  /**
   * `keepAlive`: the timers hold the process open. A server's timers must not
   * (its sockets do), but a command whose only pending work is a wait between
   * two probes must, or Node exits mid-await (code 13, nothing printed).
   */
  constructor(private readonly opts: { keepAlive?: boolean } = {}) {}

  now(): number {
    return Date.now();
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.next++;
    // Node counts a delay from the event loop's cached time, which lags the
    // moment of this call by however long the current turn has run, and
    // compares whole milliseconds: a timer can fire a millisecond or more
    // early. A modelled link delay must never be shorter than the one drawn
    // (test/e2e/delay-wire.test.ts), so an early timer is armed again for
    // what is left.
    const due = performance.now() + Math.max(0, ms);
    const arm = (wait: number) => {
      const handle = setTimeout(
        () => {
          const left = due - performance.now();
          if (left > 0) return arm(left);
          this.timers.delete(id);
          fn();
        },
        Math.min(wait, MAX_TIMER_MS),
      );
      // A server's timers must not keep its process alive on their own.
      if (!this.opts.keepAlive) (handle as { unref?: () => void }).unref?.();
      this.timers.set(id, handle);
    };
    arm(Math.max(0, ms));
    return id;
  }

  clearTimeout(id: TimerId): void {
    const handle = this.timers.get(id);
    if (handle !== undefined) clearTimeout(handle);
    this.timers.delete(id);
  }
}

/**
 * A min-heap of timers ordered by (at, id), so equal deadlines fire in
 * creation order. Four children per node, and each entry's instant and id
 * stored in heap order in one typed array (at, id, at, id, ...): a sift
 * compares a node's four children within one cache line. Timer objects
 * held in a binary heap cost a cache miss per comparison once the heap is
 * larger than the cache (tens of thousands of timers while the simulator's
 * fleet fills: `pop` was 3.2 % of a worker's warm-up), and an object per
 * timer. core/slot-heap.ts is the same shape for slots.
 */
class TimerHeap {
  // Small to start, doubled as needed: most clocks hold a few timers (a
  // prediction's, one per link model it draws from: infra/predict.ts
  // `linkDist`; a test's).
  private keys = new Float64Array(2 * 16);
  private fns: ((() => void) | undefined)[] = [];
  private n = 0;

  get size(): number {
    return this.n;
  }

  /** The earliest timer's instant; +Infinity when empty. */
  topAt(): number {
    return this.n > 0 ? this.keys[0]! : Number.POSITIVE_INFINITY;
  }

  /** The earliest timer's id; +Infinity when empty. */
  topId(): number {
    return this.n > 0 ? this.keys[1]! : Number.POSITIVE_INFINITY;
  }

  push(at: number, id: number, fn: () => void): void {
    if (2 * this.n === this.keys.length) {
      const keys = new Float64Array(2 * this.keys.length);
      keys.set(this.keys);
      this.keys = keys;
    }
    // Sifted up through a hole: each level one move, no swap.
    const k = this.keys;
    const fns = this.fns;
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 2;
      const pa = k[2 * p]!;
      if (!(at < pa || (at === pa && id < k[2 * p + 1]!))) break;
      k[2 * i] = pa;
      k[2 * i + 1] = k[2 * p + 1]!;
      fns[i] = fns[p];
      i = p;
    }
    k[2 * i] = at;
    k[2 * i + 1] = id;
    fns[i] = fn;
  }

  /** Takes the earliest timer out (the heap is not empty) and returns its callback. */
  pop(): () => void {
    const k = this.keys;
    const fns = this.fns;
    const top = fns[0]!;
    const n = --this.n;
    const at = k[2 * n]!;
    const id = k[2 * n + 1]!;
    const fn = fns[n];
    fns[n] = undefined;
    if (n > 0) {
      // The last entry sifted down from the root's hole.
      let i = 0;
      for (;;) {
        const first = 4 * i + 1;
        if (first >= n) break;
        let c = first;
        let ca = k[2 * first]!;
        let ci = k[2 * first + 1]!;
        const last = Math.min(first + 4, n);
        for (let j = first + 1; j < last; j++) {
          const ja = k[2 * j]!;
          if (ja < ca || (ja === ca && k[2 * j + 1]! < ci)) {
            c = j;
            ca = ja;
            ci = k[2 * j + 1]!;
          }
        }
        if (!(ca < at || (ca === at && ci < id))) break;
        k[2 * i] = ca;
        k[2 * i + 1] = ci;
        fns[i] = fns[c];
        i = c;
      }
      k[2 * i] = at;
      k[2 * i + 1] = id;
      fns[i] = fn;
    }
    return top;
  }
}

/**
 * One timer per slot (0..n-1) of a VirtualClock, kept in a SlotHeap
 * (core/slot-heap.ts): set again or cleared in place, with no object per
 * timer and nothing left in the clock's heap when cleared. The simulator's
 * observer (infra/sim/observer.ts) keeps one pending question per node,
 * moved or dropped as the node answers;
 * as clock timers, the dropped ones stayed in the heap until their instant,
 * up to a TTL later (most of one per resolver per change: at 100,000
 * resolvers, tens of thousands a change), each an object and a closure
 * outliving every young-generation collection. A slot's timer takes its id
 * from the clock's own sequence, so it fires in exactly the order a
 * `setTimeout` made at the same moment would.
 */
export class SlotTimers {
  /** Scheduled slots by (instant, id). */
  private readonly heap: SlotHeap;

  constructor(
    private readonly clock: VirtualClock,
    n: number,
    private readonly fire: (slot: number) => void,
  ) {
    this.heap = new SlotHeap(n);
  }

  /** Schedules slot's timer `ms` from now, in place of the one it had. */
  set(slot: number, ms: number): void {
    this.heap.put(slot, this.clock.now() + Math.max(0, ms), this.clock.nextId());
  }

  /** Drops slot's timer, if it has one. */
  clear(slot: number): void {
    this.heap.remove(slot);
  }

  /** Drops every slot's timer. */
  clearAll(): void {
    this.heap.clear();
  }

  /** Room for slots 0..n-1 (n at least the current count), the scheduled ones kept. */
  grow(n: number): void {
    this.heap.grow(n);
  }

  get capacity(): number {
    return this.heap.capacity;
  }

  get pending(): number {
    return this.heap.length;
  }

  /** The earliest slot, -1 when none is scheduled. */
  top(): number {
    return this.heap.top();
  }

  /** A scheduled slot's instant and id: what the clock orders by. */
  atOf(slot: number): number {
    return this.heap.keyOf(slot);
  }

  idOf(slot: number): number {
    return this.heap.tieOf(slot);
  }

  /** Takes the earliest slot out and fires it (the clock has set the time). */
  fireTop(): void {
    const slot = this.heap.top();
    this.heap.remove(slot);
    this.fire(slot);
  }
}

export class VirtualClock implements Clock {
  private t: number;
  private next = 1;
  private readonly heap = new TimerHeap();
  /** Ids of timers scheduled and neither fired nor cleared. */
  private readonly live = new Set<TimerId>();
  /** Slot timers kept beside the heap (`slots`). */
  private readonly slotSets: SlotTimers[] = [];

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  setTimeout(fn: () => void, ms: number): TimerId {
    const id = this.next++;
    this.heap.push(this.t + Math.max(0, ms), id, fn);
    this.live.add(id);
    return id;
  }

  clearTimeout(id: TimerId): void {
    this.live.delete(id);
  }

  /** The next timer id: a slot timer's place among the timers set at the same instant. */
  nextId(): number {
    return this.next++;
  }

  /** A set of `n` slot timers on this clock; `fire(slot)` runs at a slot's instant. */
  slots(n: number, fire: (slot: number) => void): SlotTimers {
    const s = new SlotTimers(this, n, fire);
    this.slotSets.push(s);
    return s;
  }

  /** Number of timers still scheduled. */
  get pending(): number {
    let n = this.live.size;
    for (const s of this.slotSets) n += s.pending;
    return n;
  }

  /** Deadline of the next live timer, if any. */
  nextAt(): number | undefined {
    this.dropCancelled();
    let at: number | undefined = this.heap.size > 0 ? this.heap.topAt() : undefined;
    for (const s of this.slotSets) {
      const slot = s.top();
      if (slot >= 0 && (at === undefined || s.atOf(slot) < at)) at = s.atOf(slot);
    }
    return at;
  }

  /**
   * Fires, in order, every timer due within `ms`, synchronously, then sets the
   * time to now + ms. For policy code that awaits promises, use `advance`.
   */
  advanceSync(ms: number): void {
    this.advanceSyncTo(this.t + ms);
  }

  /**
   * `advanceSync` to the instant `end` itself: `t + (end - t)` may miss it
   * by a bit, and by a different bit for each `t`, so two clocks that reach
   * one instant from different last events (the simulator's shards) would
   * not agree on it.
   */
  advanceSyncTo(end: number): void {
    while (this.fireDue(end));
    this.t = end;
  }

  /**
   * Advances time by `ms`, firing due timers in order and letting promise
   * callbacks settle after each one, so async work chained on a timer runs at
   * the virtual time it belongs to.
   */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    await flushMicrotasks();
    while (this.fireDue(end)) await flushMicrotasks();
    this.t = end;
    await flushMicrotasks();
  }

  /** Runs timers until none is left or `limitMs` of virtual time has passed. */
  async runAll(limitMs = 365 * 86_400_000): Promise<void> {
    const end = this.t + limitMs;
    for (;;) {
      const at = this.nextAt();
      if (at === undefined || at > end) break;
      await this.advance(at - this.t);
    }
  }

  /** Fires the earliest timer due by `end`, heap or slot, by (at, id); false if none is due. */
  private fireDue(end: number): boolean {
    this.dropCancelled();
    let set: SlotTimers | undefined;
    let at = this.heap.topAt();
    let id = this.heap.topId();
    const sets = this.slotSets;
    for (let k = 0; k < sets.length; k++) {
      const s = sets[k]!;
      const slot = s.top();
      if (slot < 0) continue;
      const sa = s.atOf(slot);
      if (sa < at || (sa === at && s.idOf(slot) < id)) {
        set = s;
        at = sa;
        id = s.idOf(slot);
      }
    }
    if (at > end || (set === undefined && this.heap.size === 0)) return false;
    this.t = at;
    if (set !== undefined) {
      set.fireTop();
      return true;
    }
    this.live.delete(id);
    this.heap.pop()();
    return true;
  }

  private dropCancelled(): void {
    for (;;) {
      if (this.heap.size === 0 || this.live.has(this.heap.topId())) return;
      this.heap.pop();
    }
  }
}

/** Lets pending promise callbacks run; several turns cover short await chains. */
export async function flushMicrotasks(turns = 20): Promise<void> {
  for (let i = 0; i < turns; i++) await Promise.resolve();
}

/** A promise that resolves after `ms` on the given clock. */
export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}
