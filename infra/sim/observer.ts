/**
 * The exact observer. Under virtual time the instant a node's answer
 * changes is knowable, so time-to-fresh is measured without a polling grid.
 * A node's answer can change only when
 * - its state changes: a fill is stored, a purge applied, a refresh comes
 *   back (the world reports these as `touched`, from the engine's storage,
 *   its sync target and its upstream fetches), or
 * - time crosses a boundary of what it holds: the end of freshness, the
 *   prefetch point, the end of stale-while-revalidate (`nextChangeMs`).
 * The observer asks every node not yet fresh at t0, at the end of every
 * instant in which it was touched, and at its next boundary: it is the
 * client that asks at every instant the answer could differ, and its first
 * new answer is the node's exact time-to-fresh.
 *
 * A node that answered old and holds nothing that changes by itself is
 * asked again when its upstream is touched; after a failed or stale answer
 * (a lost request, a partition, an origin outage) it is asked again after
 * `retryMs`, as a client would retry.
 */
import type { SlotTimers } from "../../core/clock.ts";
import type { SimLoop } from "./loop.ts";

/** What the observer needs of the world. */
export interface Observed {
  /** Number of nodes; indices 0..size-1. */
  readonly size: number;
  /** Asks node i as a client would. */
  ask(i: number): void;
  /** Ms from now until node i's held answer may change by time alone; undefined: never. */
  nextChangeMs(i: number): number | undefined;
  /** Index of node i's parent or upstream; -1 for the origin. */
  parentOf(i: number): number;
}

/** Past a boundary by this much, so float age arithmetic is on the far side of it. */
const EPSILON_MS = 1e-6;

export class Observer {
  /** Per node: 1 while it has not served the change's version. */
  private readonly open: Uint8Array;
  /** Per node: 1 while its last answer was old and only a touch upstream can change it. */
  private readonly idle: Uint8Array;
  /** Per node: its next question, at most one (moved or dropped in place). */
  private readonly timers: SlotTimers;
  /** Per node: the instant its question was asked for (NaN: none). */
  private readonly timerAt: Float64Array;
  private touched: number[] = [];
  private readonly isTouched: Uint8Array;
  /**
   * Node i's children are childList[childStart[i] .. childStart[i + 1]):
   * every node is touched at each change, and an array per node (most of
   * them, the resolvers', empty) was a cache miss per touch.
   */
  private readonly childStart: Int32Array;
  private readonly childList: Int32Array;
  private serial: number | undefined;
  /** Asks made by the observer (a measure of its own work). */
  asks = 0;

  constructor(
    private readonly loop: SimLoop,
    private readonly world: Observed,
    private readonly retryMs: number,
  ) {
    const n = world.size;
    this.open = new Uint8Array(n);
    this.idle = new Uint8Array(n);
    this.isTouched = new Uint8Array(n);
    this.timers = loop.slots(n, (i) => {
      this.timerAt[i] = Number.NaN;
      if (this.open[i]) this.ask(i);
    });
    this.timerAt = new Float64Array(n).fill(Number.NaN);
    // Counted, then placed in index order: each node's children ascending.
    const parents = new Int32Array(n);
    this.childStart = new Int32Array(n + 1);
    for (let i = 0; i < n; i++) {
      const p = world.parentOf(i);
      parents[i] = p;
      if (p >= 0) this.childStart[p + 1]!++;
    }
    for (let i = 0; i < n; i++) this.childStart[i + 1]! += this.childStart[i]!;
    this.childList = new Int32Array(this.childStart[n]!);
    const next = this.childStart.slice(0, n);
    for (let i = 0; i < n; i++) {
      const p = parents[i]!;
      if (p >= 0) this.childList[next[p]!++] = i;
    }
  }

  /** Starts following a change committed now at `serial`: every node is asked. */
  begin(serial: number): void {
    this.serial = serial;
    this.open.fill(1);
    this.idle.fill(0);
    for (let i = 0; i < this.world.size; i++) this.touch(i);
  }

  /** Stops following: pending asks are dropped. */
  end(): void {
    this.serial = undefined;
    this.open.fill(0);
    // Every pending question at once: a removal each was a sift of the heap.
    this.timers.clearAll();
    this.timerAt.fill(Number.NaN);
    for (const i of this.touched) this.isTouched[i] = 0;
    this.touched = [];
  }

  /** Node i's state changed in this instant: it (and its idle dependants) are asked once it ends. */
  touch(i: number): void {
    if (this.serial === undefined) return;
    this.mark(i);
    const end = this.childStart[i + 1]!;
    for (let k = this.childStart[i]!; k < end; k++) {
      const c = this.childList[k]!;
      if (this.idle[c]) this.mark(c);
    }
  }

  /** Called after every instant has settled; true if it asked anything. */
  flush = (): boolean => {
    if (this.touched.length === 0) return false;
    const batch = this.touched;
    this.touched = [];
    for (const i of batch) {
      this.isTouched[i] = 0;
      if (this.open[i]) this.ask(i);
    }
    return true;
  };

  /**
   * Node i answered (anyone's question): fresh closes it; an old answer
   * schedules the next question at its boundary, or a retry after a failure.
   */
  answered(i: number, fresh: boolean, failedOrStale: boolean): void {
    if (!this.open[i]) return;
    if (fresh) {
      this.open[i] = 0;
      this.idle[i] = 0;
      this.cancel(i);
      return;
    }
    const next = failedOrStale ? this.retryMs : this.world.nextChangeMs(i);
    if (next === undefined) {
      this.idle[i] = 1;
      this.cancel(i);
      return;
    }
    this.idle[i] = 0;
    this.schedule(i, this.loop.now() + next + EPSILON_MS);
  }

  private mark(i: number): void {
    if (!this.open[i] || this.isTouched[i]) return;
    this.isTouched[i] = 1;
    this.touched.push(i);
  }

  private ask(i: number): void {
    this.asks++;
    this.world.ask(i);
  }

  private schedule(i: number, at: number): void {
    if (this.timerAt[i] === at) return;
    this.timerAt[i] = at;
    // The instant `loop.at(at)` would fire at: the same arithmetic.
    this.timers.set(i, at - this.loop.now());
  }

  private cancel(i: number): void {
    if (Number.isNaN(this.timerAt[i]!)) return;
    this.timers.clear(i);
    this.timerAt[i] = Number.NaN;
  }
}
