/**
 * Change-feed polls that find nothing, computed instead of fired. Between
 * two commits a node that has applied the origin's serial polls and learns
 * nothing: the poll only draws its link's delay, counts a feed read at the
 * origin and draws the jitter of the next poll. Such a node's poll timer is
 * held here ("dormant") instead of in the clock; just before the next commit
 * (and at the end of the run) its polls up to that instant are replayed as
 * arithmetic, with the same draws from the same seeded generators in the
 * same order, and the same feed reads counted at the same instants, so the
 * run is the one the slow path gives. A poll whose request is still on the
 * link at the commit is started for real then, with the delay it had left,
 * so its feed read lands after the commit, as it would have.
 *
 * NodeSync (core/sync.ts) is not changed: the harness gives it a clock that
 * holds its poll timers, and replays its jitter formula (`schedule`) on its
 * own generator. Only for runs where every NodeSync timer is a poll (not
 * ttl mode, whose acks wait on a timer) and the link and origin draws do not
 * depend on the instant (no partitions, no origin restarts).
 */
import type { Clock, TimerId } from "../../core/clock.ts";
import type { LinkDelay, LinkSample } from "../../core/delay.ts";
import type { Random } from "../../core/random.ts";
import type { NodeSync } from "../../core/sync.ts";
import type { SimLoop } from "./loop.ts";
import type { SimOrigin } from "./origin.ts";

interface LazyNode {
  sync: NodeSync | undefined;
  link: LinkDelay;
  /** The held poll timer's callback and deadline (undefined: none held). */
  fn: (() => void) | undefined;
  at: number;
  id: TimerId;
  /** The clock's timer a held poll became when a commit made it matter. */
  realId: TimerId | undefined;
  /** A sample drawn by the replay for a poll then started for real. */
  presampled: LinkSample | undefined;
}

export class LazyPolls {
  private readonly nodes: LazyNode[] = [];
  private nextId = -1;
  /** Polls computed instead of fired. */
  skipped = 0;

  constructor(
    private readonly loop: SimLoop,
    private readonly origin: SimOrigin,
    private readonly zone: string,
    private readonly pollIntervalMs: number,
    private readonly pollJitter: number,
  ) {}

  /**
   * The clock and feed link for one node's NodeSync. `bind` must be given the
   * NodeSync once built. The link's `sample` is wrapped so a poll started by
   * the replay uses the sample the replay drew.
   */
  node(feedLink: LinkDelay): { clock: Clock; bind: (sync: NodeSync) => void } {
    const engine = this.loop.engineClock;
    const n: LazyNode = {
      sync: undefined,
      link: feedLink,
      fn: undefined,
      at: 0,
      id: 0,
      realId: undefined,
      presampled: undefined,
    };
    const sample = feedLink.sample.bind(feedLink);
    feedLink.sample = () => {
      const s = n.presampled;
      n.presampled = undefined;
      return s ?? sample();
    };
    this.nodes.push(n);
    const clock: Clock = {
      now: () => engine.now(),
      setTimeout: (fn, ms) => {
        if (!this.caughtUp(n)) return engine.setTimeout(fn, ms);
        n.fn = fn;
        n.at = engine.now() + Math.max(0, ms);
        n.id = this.nextId--;
        return n.id;
      },
      clearTimeout: (id) => {
        if (id !== n.id) return engine.clearTimeout(id);
        n.fn = undefined;
        if (n.realId !== undefined) engine.clearTimeout(n.realId);
        n.realId = undefined;
      },
    };
    return {
      clock,
      bind: (sync) => {
        n.sync = sync;
      },
    };
  }

  /**
   * Replays every held poll due at or before now. Before a commit, the next
   * held poll of each node then becomes a clock timer: it may find the change.
   */
  fastForward(beforeCommit: boolean): void {
    const T = this.loop.now();
    const engine = this.loop.engineClock;
    for (const n of this.nodes) {
      this.replay(n, T);
      const fn = n.fn;
      if (beforeCommit && fn !== undefined && n.realId === undefined) {
        n.realId = engine.setTimeout(() => {
          n.fn = undefined;
          n.realId = undefined;
          fn();
        }, n.at - T);
      }
    }
  }

  private caughtUp(n: LazyNode): boolean {
    const applied = n.sync?.appliedSerial(this.zone);
    return applied !== undefined && applied === this.origin.serial();
  }

  private replay(n: LazyNode, T: number): void {
    const random = n.sync && (n.sync as unknown as { random: Random }).random;
    while (n.fn !== undefined && n.realId === undefined && n.at <= T && random) {
      const t = n.at;
      const s = n.link.sample();
      this.loop.events++; // the poll timer
      if (!s.dropped && t + s.delayMs > T) {
        // Still on the link at T: start it now with the delay it has left.
        const fn = n.fn;
        n.fn = undefined;
        n.presampled = { dropped: false, delayMs: t + s.delayMs - T };
        this.loop.markDirty();
        fn();
        return;
      }
      let done = t;
      if (!s.dropped) {
        done = t + s.delayMs;
        if (s.delayMs > 0) this.loop.events++; // the link's delay timer
        this.origin.countFeedAt(done);
      }
      this.skipped++;
      // NodeSync.schedule(): interval x (1 - jitter + 2 x jitter x U).
      const j = this.pollJitter;
      n.at = done + this.pollIntervalMs * (1 - j + 2 * j * random.next());
    }
  }
}
