/**
 * The observer of `propagate measure`, simulated: after a change, every node
 * is asked at once; each node's next question goes out `intervalMs` after
 * its answer (or its failure) comes back, until an answer carries the new
 * version (infra/measure.ts `follow`). Its time-to-fresh is the instant that
 * answer came back: the question, the refetch it may start through the
 * tiers, and the wait before it are all in it, as in a live measurement.
 *
 * The exact observer (observer.ts) measures something else: the first
 * instant a node *could* answer new, asked at every instant its answer may
 * change. A live run cannot ask that often, so to compare the simulator with
 * a live run (bench/live-vs-sim.ts) both must ask the way `measure` does.
 *
 * Which answer is the probe's: a node answers its children too (an edge
 * serves the resolvers and edges below it). The prober counts the first
 * answer of a node while its own question is out; a child's request that
 * lands in the same fetch is answered in the same instant with the same
 * version, so the attribution cannot change a time or a version.
 */
import type { SimLoop } from "./loop.ts";

/** What the prober needs of the world. */
export interface Probed {
  readonly size: number;
  ask(i: number): void;
}

export class MeasureProber {
  /** Per node: 1 while the prober's question is out. */
  private readonly pending: Uint8Array;
  /** Per node: 1 while the node is followed (not fresh yet, change open). */
  private readonly open: Uint8Array;
  private generation = 0;
  /** Questions the prober sent. */
  asks = 0;

  constructor(
    private readonly loop: SimLoop,
    private readonly world: Probed,
    private readonly intervalMs: number,
  ) {
    this.pending = new Uint8Array(world.size);
    this.open = new Uint8Array(world.size);
  }

  /** A change was committed now: every node is asked. */
  begin(): void {
    this.generation++;
    this.open.fill(1);
    this.pending.fill(0);
    for (let i = 0; i < this.world.size; i++) this.ask(i);
  }

  /** The change's window ended: nothing more is asked. */
  end(): void {
    this.generation++;
    this.open.fill(0);
    this.pending.fill(0);
  }

  /** Whether the prober's question to node i is out: its next answer is the prober's. */
  asking(i: number): boolean {
    return this.pending[i] === 1;
  }

  /** Node i answered the prober's question; unless `fresh`, the next is scheduled. */
  answered(i: number, fresh: boolean): void {
    this.pending[i] = 0;
    if (fresh) this.open[i] = 0;
    else this.next(i);
  }

  /** Node i failed to answer: if it was the prober's question, asked again after the interval. */
  failed(i: number): void {
    if (!this.pending[i]) return;
    this.pending[i] = 0;
    this.next(i);
  }

  private next(i: number): void {
    const gen = this.generation;
    this.loop.at(this.loop.now() + this.intervalMs, () => {
      if (gen === this.generation && this.open[i]) this.ask(i);
    });
  }

  private ask(i: number): void {
    this.pending[i] = 1;
    this.asks++;
    this.world.ask(i);
  }
}
