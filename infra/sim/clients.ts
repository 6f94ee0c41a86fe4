/**
 * Client load on the resolvers: each resolver's clients are one Poisson
 * process at its rate, drawn from the resolver's own stream (seeded from
 * the run seed and its id), like a link's delays (links.ts). Its arrivals
 * therefore do not depend on any other node's: a run split by subtree over
 * worker threads (shards.ts) draws every resolver's arrivals exactly as
 * one process does.
 *
 * The slow path fires every arrival as a clock timer. The fast path keeps
 * the arrivals out of the clock, in a heap of each resolver's next one: the
 * loop (loop.ts) takes the earliest whenever it comes before the clock's
 * next timer and runs it as its own instant, with no timer and no promise
 * turn unless the answer starts asynchronous work. A query that meets a
 * fresh held answer before its prefetch point is then only a count
 * (world.ts answers it from its memo of that answer). The draws, the
 * instants and the order of everything are the slow path's: same seed,
 * same report (test/infra/simulate-speed.test.ts).
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
    }
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
    this.ask(this.node[slot]!);
    this.next(slot);
  }

  private next(slot: number): void {
    const now = this.loop.now();
    const gapMs = -Math.log(1 - this.streams.next(slot)) / this.perMs[slot]!;
    // The instant a clock timer set now for now + gap would fire at (loop.at).
    const at = now + (now + gapMs - now);
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
