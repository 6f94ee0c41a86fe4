/**
 * Client load on the resolvers: each resolver's clients are one Poisson
 * process at its rate, drawn from the resolver's own stream (seeded from
 * the run seed and its id), like a link's delays (links.ts). Its arrivals
 * therefore do not depend on any other node's: a run split by subtree over
 * worker processes (shards.ts) draws every resolver's arrivals exactly as
 * one process does.
 *
 * The slow path fires every arrival as a clock timer. The fast path keeps
 * the arrivals out of the clock, in a heap of each resolver's next one: the
 * loop (loop.ts) takes the earliest whenever it comes before the clock's
 * next timer and runs it as its own instant, with no timer and no promise
 * turn unless the answer starts asynchronous work. A query that meets a
 * fresh held answer before its prefetch point is then only a count
 * (world.ts answers it from its memo of that answer), and the arrivals
 * after it that the same answer settles are counted, not fired (`hold`).
 * The draws, the instants and the order of everything are the slow path's:
 * same seed, same report (test/infra/simulate-speed.test.ts,
 * test/infra/sim-clients.test.ts).
 */
import { hashSeed, RandomStreams, type Seed } from "../../core/random.ts";
import { grown, SlotHeap } from "../../core/slot-heap.ts";
import type { Arrivals, SimLoop } from "./loop.ts";

export class ClientLoad implements Arrivals {
  /** Per slot: the resolver's node index and its rate per ms; its stream is slot `slot` of `streams`. */
  private node = new Int32Array(64);
  private perMs = new Float64Array(64);
  private readonly streams = new RandomStreams();
  /** Slots by their next arrival's instant while held, ties by slot (a fixed order). */
  private readonly heap = new SlotHeap(64);
  /**
   * Per slot, arrivals not fired (see `hold`): the instant of the last one
   * counted (NaN: none held), and the stream's state after it (4 words).
   */
  private heldFrom = new Float64Array(64).fill(Number.NaN);
  private heldState = new Int32Array(256);
  /** Per slot: the instant its held arrivals end before (the answer's end). */
  private heldUntil = new Float64Array(64);
  /** Per node index: its slot + 1 (0: no clients). */
  private slotOfNode = new Int32Array(0);
  private scratch = new Int32Array(4);
  /**
   * Set to let arrivals that a held answer settles go unfired: `until(i)`
   * is node i's held answer's end (NaN: none), and `count(i, n)` does what n
   * such questions would have done. See `hold`.
   */
  held: { until(index: number): number; count(index: number, n: number): void } | undefined;
  /** Arrivals counted without being fired (held), and held ones that became arrivals again (released). */
  readonly stats = { held: 0, released: 0 };

  /** `fast`: arrivals are taken by the loop, not fired as timers; `ask` sends node i a question. */
  constructor(
    private readonly loop: SimLoop,
    private readonly seed: Seed,
    private readonly fast: boolean,
    private readonly ask: (index: number) => void,
  ) {
    if (fast) loop.arrivals = this;
  }

  /** Starts the clients of resolver `index` (id `id`) at `perSecond`: its first gap is drawn now. */
  add(index: number, id: string, perSecond: number): void {
    if (perSecond <= 0) return;
    const slot = this.streams.add(hashSeed(this.seed, id, "clients"));
    if (slot >= this.heap.capacity) {
      const n = this.heap.capacity * 2;
      this.heap.grow(n);
      this.node = grown(this.node, n);
      this.perMs = grown(this.perMs, n);
      const from = new Float64Array(n).fill(Number.NaN);
      from.set(this.heldFrom);
      this.heldFrom = from;
      this.heldUntil = grown(this.heldUntil, n);
      this.heldState = grown(this.heldState, 4 * n);
    }
    if (index >= this.slotOfNode.length) {
      this.slotOfNode = grown(this.slotOfNode, Math.max(2 * this.slotOfNode.length, index + 1, 64));
    }
    this.slotOfNode[index] = slot + 1;
    this.node[slot] = index;
    this.perMs[slot] = perSecond / 1000;
    this.next(slot);
  }

  nextAt(): number {
    const slot = this.heap.top();
    return slot < 0 ? Number.POSITIVE_INFINITY : this.heap.keyOf(slot);
  }

  /**
   * Runs the earliest held arrival; the loop has set the clock to its
   * instant. The slot stays in the heap while its question is asked (nothing
   * the question runs reads the arrivals) and is then moved to its next
   * arrival in place: one sift, not a removal and an insertion.
   */
  fire(): void {
    const slot = this.heap.top();
    if (slot < 0) return;
    this.arrive(slot);
  }

  private arrive(slot: number): void {
    // Its held arrivals came before it (they end before the answer did).
    if (!Number.isNaN(this.heldFrom[slot]!)) this.release(slot, this.loop.now());
    const index = this.node[slot]!;
    this.ask(index);
    if (this.held !== undefined && this.hold(slot, this.held.until(index))) return;
    this.next(slot);
  }

  /**
   * An arrival that a held answer settles (world.ts `answerHeld`) changes
   * nothing but counts until the answer's end (`until`): the observer's
   * next question for the node is already set at that end, the checker has
   * seen that version, and the tracker only counts. So the node's arrivals
   * before `until` are drawn now and not fired, its first arrival at or
   * after it goes into the heap, and the ones drawn are counted when
   * something could tell: `settle` (a window's start and end, the run's),
   * `release` (the node's held answer ends or is read otherwise, an ack).
   * Held only where every drawn arrival takes the heap (`next`), and from
   * `until / 2` on: there `t + (until - t)` is `until` exactly (Sterbenz),
   * so the observer's rescheduling after each of those answers (at `t +
   * nextChangeMs + epsilon`) would have set the same instant each time.
   * False (nothing drawn) where it does not hold.
   */
  private hold(slot: number, until: number): boolean {
    const now = this.loop.now();
    if (!(now < until) || now < until / 2) return false;
    const state = this.heldState;
    this.streams.save(slot, state, 4 * slot);
    let t = now;
    let n = 0;
    for (;;) {
      const at = arrivalAt(t, this.gap(slot, this.streams.next(slot)));
      if (at > 2 * t) {
        // A timer's arrival (next): not held.
        this.streams.restore(slot, state, 4 * slot);
        return false;
      }
      if (at >= until) {
        this.heap.put(slot, at, slot);
        if (n > 0) {
          this.heldFrom[slot] = now;
          this.heldUntil[slot] = until;
        }
        return true;
      }
      t = at;
      n++;
    }
  }

  /**
   * Counts slot's held arrivals up to `to` (those at `to` too when
   * `inclusive`), from the state after the last counted; returns the
   * instant of the next one not counted (or NaN: every one counted, the
   * next is the heap's). The stream state after the last counted is kept.
   */
  private countHeld(slot: number, to: number, inclusive: boolean): number {
    const state = this.heldState;
    const tmp = this.scratch;
    const until = this.heldUntil[slot]!;
    let t = this.heldFrom[slot]!;
    let n = 0;
    let next = Number.NaN;
    for (;;) {
      for (let k = 0; k < 4; k++) tmp[k] = state[4 * slot + k]!;
      const at = arrivalAt(t, this.gap(slot, RandomStreams.step(tmp, 0)));
      if (at >= until) break;
      if (inclusive ? at > to : at >= to) {
        next = at;
        break;
      }
      for (let k = 0; k < 4; k++) state[4 * slot + k] = tmp[k]!;
      t = at;
      n++;
    }
    this.heldFrom[slot] = t;
    if (n > 0) {
      this.stats.held += n;
      this.held!.count(this.node[slot]!, n);
    }
    return next;
  }

  /** Counts every node's held arrivals up to now, those now included (a window starts or ends). */
  settle(): void {
    const now = this.loop.now();
    for (let slot = 0; slot < this.streams.length; slot++) {
      if (!Number.isNaN(this.heldFrom[slot]!)) this.countHeld(slot, now, true);
    }
  }

  /**
   * Node `index`'s held answer ends or is read now (an upstream call, a
   * purge, a new answer held, an ack): its held arrivals before now are
   * counted, and the first one after becomes its next arrival (in the
   * heap, its stream drawn up to it), as it would have been without holding.
   */
  releaseNode(index: number): void {
    const slot = index < this.slotOfNode.length ? this.slotOfNode[index]! - 1 : -1;
    if (slot < 0 || Number.isNaN(this.heldFrom[slot]!)) return;
    this.release(slot, this.loop.now());
  }

  private release(slot: number, now: number): void {
    const next = this.countHeld(slot, now, false);
    this.heldFrom[slot] = Number.NaN;
    if (Number.isNaN(next)) return;
    // The stream drawn up to `next`, which is its next arrival now.
    this.stats.released++;
    this.streams.restore(slot, this.heldState, 4 * slot);
    this.streams.next(slot);
    this.heap.put(slot, next, slot);
  }

  /** Ms from one of slot's arrivals to its next, for the uniform draw `u` (exponential). */
  private gap(slot: number, u: number): number {
    return -Math.log(1 - u) / this.perMs[slot]!;
  }

  private next(slot: number): void {
    const now = this.loop.now();
    const gapMs = this.gap(slot, this.streams.next(slot));
    const at = arrivalAt(now, gapMs);
    // Held only where the clock can land on `at` exactly from any later
    // instant (t + (at - t) === at holds for t <= at <= 2t, Sterbenz): early
    // in a run, and on the slow path, the arrival is a timer.
    if (this.fast && at <= 2 * now) this.heap.put(slot, at, slot);
    else {
      this.heap.remove(slot);
      this.loop.at(now + gapMs, () => this.arrive(slot));
    }
  }
}

/**
 * The instant a clock timer set at `t` for `t + gapMs` fires at (loop.at):
 * every arrival, fired or held, is computed so, from the one before it.
 */
function arrivalAt(t: number, gapMs: number): number {
  return t + (t + gapMs - t);
}
