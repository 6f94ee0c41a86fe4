/**
 * The simulator's event loop over one VirtualClock. The engines are async,
 * so after the timers of one instant fire, their promise chains must settle
 * before time moves on; settling costs a turn of Node's loop (a tick on the
 * fast path, a macrotask on the slow one), so it is done only
 * when something asynchronous may be pending (`dirty`): every engine timer
 * marks it, and so does a probe or client query that did not answer at once.
 */
import type { Clock, SlotTimers, TimerId } from "../../core/clock.ts";
import { VirtualClock } from "../../core/clock.ts";
import { grown } from "../../core/slot-heap.ts";

/** Settled once: a `then` on it queues its reaction at once. */
const SETTLED = Promise.resolve();

/** Resolves after every pending microtask, of any chain depth, has run: a macrotask later. */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Instants kept out of the clock (client arrivals, clients.ts); the loop runs them in order. */
export interface Arrivals {
  /** The next one's instant (Infinity: none). */
  nextAt(): number;
  /** Runs the next one; the clock is at its instant. */
  fire(): void;
}

/** What `runInstant` did: nothing due by the end, an instant to settle, or one that left nothing. */
const NO_INSTANT = 0;
const SETTLE = 1;
const QUIET = 2;

export class SimLoop {
  readonly clock: VirtualClock;
  /** Timers fired so far: the simulator's events. */
  events = 0;
  private dirty = false;
  /**
   * Called once an instant has settled, before time moves on; returns true
   * if it started work (the exact observer asks the nodes touched in it).
   */
  onSettled: () => boolean = () => false;
  /** Held arrivals, run between the clock's timers without being timers. */
  arrivals: Arrivals | undefined;
  /** The clock handed to the engines: their timers mark the loop dirty. */
  readonly engineClock: Clock;

  /** `inTurn`: settle each instant in the same turn of Node's loop (`runInTurn`, the fast path) rather than with `settle`. */
  constructor(
    startMs = 0,
    private readonly inTurn = false,
  ) {
    this.clock = new VirtualClock(startMs);
    const clock = this.clock;
    const timers = new EngineTimers(clock, () => {
      this.events++;
      this.dirty = true;
    });
    this.engineClock = {
      now: () => clock.now(),
      setTimeout: (fn: () => void, ms: number): TimerId => timers.set(fn, ms),
      // Its own ids only: one of the clock's (`at`) would name an engine timer's slot.
      clearTimeout: (id: TimerId) => timers.clear(id),
    };
  }

  now(): number {
    return this.clock.now();
  }

  /** Schedules a simulator timer at absolute time `ms`; `fn` calls markDirty if it starts async work. */
  at(ms: number, fn: () => void): TimerId {
    return this.clock.setTimeout(
      () => {
        this.events++;
        fn();
      },
      Math.max(0, ms - this.clock.now()),
    );
  }

  /**
   * One simulator timer per slot (0..n-1), set at absolute times and moved or
   * dropped in place (core/clock.ts `SlotTimers`); `fn(slot)` as for `at`.
   */
  slots(n: number, fn: (slot: number) => void): SlotTimers {
    return this.clock.slots(n, (slot) => {
      this.events++;
      fn(slot);
    });
  }

  markDirty(): void {
    this.dirty = true;
  }

  /** Runs every event up to `endMs` (or until `stop()` holds after an instant), settling promises in between. */
  runUntil(endMs: number, stop?: () => boolean): Promise<void> {
    return this.inTurn ? this.runInTurn(endMs, stop) : this.runAwaiting(endMs, stop);
  }

  /**
   * `runUntil` on the fast path, as a loop driven by ticks rather than an
   * async function: an instant that leaves promise work queues a microtask
   * that queues a tick (`later`), and the tick goes on. Node runs its tick
   * queue, then drains V8's microtask queue whole (every chain, to any
   * depth), and repeats while either has work (processTicksAndRejections);
   * so a tick queued from a microtask runs after every microtask queued
   * before it or while the queue drains, as an immediate would (`settle`,
   * the slow path), as long as nothing else queues ticks or waits for a real
   * macrotask meanwhile. The engines on the simulator's path do neither (no
   * sockets, no streams of Node's, no real timers; a tick queued two promise
   * turns deep would run after the next instant, not before), and a
   * macrotask per instant costs a pass through the event loop, its poll of
   * the kernel included (~1 us against ~0.2 us; 6 % of a run of 20,000
   * resolvers). Neither is there a promise per settle (an awaiting loop's
   * promise, executor, resolving functions and the awaits' reactions,
   * several per instant and millions an hour): a microtask and a tick (the
   * 10,000-resolver hour: 358-361 young collections against 373-374, the
   * same report). Entered with a full drain, so what the caller left queued
   * runs before the first instant; where the observer's flush asked nothing
   * that left work (`onSettled` true, nothing dirty) it goes on at once:
   * nothing is queued then. test/infra/simulate-speed.test.ts compares the
   * results with the slow path's.
   */
  private runInTurn(endMs: number, stop?: () => boolean): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settling = true;
      const run = (): void => {
        for (;;) {
          if (settling) {
            if (this.dirty) {
              this.dirty = false;
              later();
              return;
            }
            if (this.onSettled()) continue;
            settling = false;
          }
          if (stop?.()) {
            resolve();
            return;
          }
          const next = this.runInstant(endMs);
          if (next === NO_INSTANT) break;
          if (next === SETTLE) settling = true;
        }
        if (endMs > this.clock.now()) this.clock.advanceSyncTo(endMs);
        resolve();
      };
      const tick = (): void => {
        try {
          run();
        } catch (err) {
          reject(err);
        }
      };
      const goOn = (): void => process.nextTick(tick);
      // A reaction on a settled promise, not `queueMicrotask`: the same
      // place in V8's queue, without the async resource and bound function
      // Node makes per call (2 % of what the 10,000-resolver hour allocated).
      const later = (): void => void SETTLED.then(goOn);
      later();
    });
  }

  /** `runUntil` as an async function: the slow path (`settle`, a macrotask per settle). */
  private async runAwaiting(endMs: number, stop?: () => boolean): Promise<void> {
    await this.settleIfDirty();
    for (;;) {
      if (stop?.()) return;
      const next = this.runInstant(endMs);
      if (next === NO_INSTANT) break;
      if (next === SETTLE) await this.settleIfDirty();
    }
    if (endMs > this.clock.now()) this.clock.advanceSyncTo(endMs);
  }

  /**
   * Runs the next instant up to `endMs`: a held arrival before the clock's
   * next timer is its own instant, else the timers of the next one. Every
   * instant that may leave promise work settles fully (the engines' timers
   * and lookups mark the loop dirty), so one that did not (a fresh hit
   * answered from the world's memo, a simulator timer that answered at
   * once) needs no promise turn: nothing is pending (QUIET), unless the
   * observer asked something once it ended (`onSettled`).
   */
  private runInstant(endMs: number): number {
    const at = this.clock.nextAt();
    const held = this.arrivals?.nextAt() ?? Number.POSITIVE_INFINITY;
    if (held <= endMs && (at === undefined || held < at)) {
      this.clock.advanceSyncTo(held);
      this.events++;
      this.arrivals!.fire();
    } else {
      if (at === undefined || at > endMs) return NO_INSTANT;
      this.clock.advanceSyncTo(at);
    }
    return this.dirty || this.onSettled() ? SETTLE : QUIET;
  }

  private async settleIfDirty(): Promise<void> {
    do {
      while (this.dirty) {
        this.dirty = false;
        await settle();
      }
    } while (this.onSettled());
  }
}

/** Timer ids: a slot's generation times SLOT_SPAN plus the slot plus one (never 0). */
const SLOT_SPAN = 2 ** 26;
/** Generations wrap here, so every id stays an exact integer (below 2^53). */
const GEN_SPAN = 2 ** 27;

/**
 * The engines' timers, as slot timers of the clock (core/clock.ts
 * `SlotTimers`): a timer takes a free slot and its callback, and gives both
 * back when it fires or is cleared. As clock timers each was an object in
 * the clock's heap, an id in its set of live ones, a closure around the
 * callback and a cell in a map by id, the map there so that clearing a timer
 * let go of its callback at once (an edge's parent timeout holds its fill's
 * abort controller and, through the promise it would reject, the response and
 * body the fill raced it with: kept to its instant, they outlive
 * young-generation collections and are promoted). Here a timer is a slot in
 * typed arrays and a callback in an array, and a cleared one leaves nothing
 * behind: the 10,000-resolver hour promotes 443-492 MB against 483-664 MB
 * (bench/results/simulate.md). A slot timer takes its id from the clock's
 * own sequence, so engine timers fire in exactly the order, among each other
 * and among the clock's other timers, that clock timers set at the same
 * moments would: the same report.
 */
class EngineTimers {
  private readonly slots: SlotTimers;
  private fns: ((() => void) | undefined)[] = [];
  /** Per slot: how many timers it has held (the id's high part). */
  private gen = new Float64Array(64);
  /** Free slots, a stack. */
  private free = new Int32Array(64);
  private freeCount = 0;
  private used = 0;

  /** `fired` runs before each timer's callback. */
  constructor(
    clock: VirtualClock,
    private readonly fired: () => void,
  ) {
    this.slots = clock.slots(64, (slot) => {
      const fn = this.fns[slot]!;
      this.release(slot);
      this.fired();
      fn();
    });
  }

  set(fn: () => void, ms: number): TimerId {
    let slot: number;
    if (this.freeCount > 0) slot = this.free[--this.freeCount]!;
    else {
      if (this.used >= SLOT_SPAN) throw new RangeError("too many simulated timers at once");
      slot = this.used++;
      if (slot >= this.slots.capacity) {
        const n = this.slots.capacity * 2;
        this.slots.grow(n);
        this.gen = grown(this.gen, n);
        this.free = grown(this.free, n);
      }
    }
    this.fns[slot] = fn;
    this.slots.set(slot, ms);
    return this.gen[slot]! * SLOT_SPAN + slot + 1;
  }

  clear(id: TimerId): void {
    if (!(id >= 1)) return;
    const slot = (id - 1) % SLOT_SPAN;
    // An id of a timer that fired or was cleared: its slot may hold another now.
    if (slot >= this.used || this.fns[slot] === undefined) return;
    if (this.gen[slot]! * SLOT_SPAN + slot + 1 !== id) return;
    this.slots.clear(slot);
    this.release(slot);
  }

  private release(slot: number): void {
    this.fns[slot] = undefined;
    this.gen[slot] = (this.gen[slot]! + 1) % GEN_SPAN;
    this.free[this.freeCount++] = slot;
  }
}
