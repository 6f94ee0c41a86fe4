/**
 * Client load on the resolvers: per rate group, one Poisson process at the
 * group's total rate, each query sent to a resolver drawn at random. All
 * groups draw from the run's generator, in the order the arrivals happen.
 *
 * The slow path fires every arrival as a clock timer. The fast path keeps
 * the arrivals out of the clock: the loop (loop.ts) takes the earliest one
 * whenever it comes before the clock's next timer and runs it as its own
 * instant, with no timer, no heap entry and no promise turn unless the
 * answer starts asynchronous work. A query that meets a fresh held answer
 * before its prefetch point is then only a count (world.ts answers it from
 * its memo of that answer), so arrivals between two state changes of a
 * resolver cost a draw and a count each. The draws, the instants and the
 * order of everything are the slow path's: same seed, same report
 * (test/infra/simulate-speed.test.ts).
 */
import type { Random } from "../../core/random.ts";
import type { Arrivals, SimLoop } from "./loop.ts";

interface Group {
  /** The resolvers' node indices. */
  resolvers: readonly number[];
  perSecond: number;
  /** The next arrival's instant, when it is held here (NaN: on the clock, or none). */
  at: number;
}

export class ClientLoad implements Arrivals {
  private readonly groups: Group[] = [];

  /** `fast`: arrivals are taken by the loop, not fired as timers; `ask` sends node i a question. */
  constructor(
    private readonly loop: SimLoop,
    private readonly random: Random,
    private readonly fast: boolean,
    private readonly ask: (index: number) => void,
  ) {
    if (fast) loop.arrivals = this;
  }

  /** Starts one group's process: its first gap is drawn now. */
  add(resolvers: readonly number[], perSecond: number): void {
    if (perSecond <= 0 || resolvers.length === 0) return;
    const g: Group = { resolvers, perSecond, at: Number.NaN };
    this.groups.push(g);
    this.next(g);
  }

  nextAt(): number {
    let at = Number.POSITIVE_INFINITY;
    for (const g of this.groups) if (g.at < at) at = g.at;
    return at;
  }

  /** Runs the earliest held arrival; the loop has set the clock to its instant. */
  fire(): void {
    let first: Group | undefined;
    for (const g of this.groups) if (first === undefined || g.at < first.at) first = g;
    if (!first) return;
    first.at = Number.NaN;
    this.arrive(first);
  }

  private arrive(g: Group): void {
    this.ask(g.resolvers[Math.floor(this.random.next() * g.resolvers.length)]!);
    this.next(g);
  }

  private next(g: Group): void {
    const now = this.loop.now();
    const gapMs = (-Math.log(1 - this.random.next()) / g.perSecond) * 1000;
    // The instant a clock timer set now for now + gap would fire at (loop.at).
    const at = now + (now + gapMs - now);
    // Held only where the clock can land on `at` exactly from any later
    // instant (t + (at - t) === at holds for t <= at <= 2t, Sterbenz): early
    // in a run, and on the slow path, the arrival is a timer.
    if (this.fast && at <= 2 * now) g.at = at;
    else this.loop.at(now + gapMs, () => this.arrive(g));
  }
}
