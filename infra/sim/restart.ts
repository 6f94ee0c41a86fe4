/**
 * Node restarts in the simulator: an edge or a resolver process dies and
 * comes back, as under `propagate up --processes` (its supervisor restarts a
 * child with backoff). What a restart is, chosen once:
 *
 * - while down, the node answers nothing: a question to it (a client's, the
 *   observer's, a child's fill) fails as a refused connection; its NodeSync
 *   stops (no polls, no acks) and its bus subscription is closed, so events
 *   published meanwhile wait on the bus for it (core/bus.ts: a node that
 *   subscribes again resumes where it stopped);
 * - work the dead process had in flight is lost: an answer or an ack it
 *   would have sent after the crash is dropped (the incarnation check);
 * - it comes back empty: a new engine (no entries, no version floors), a new
 *   NodeSync that registers again and learns the zone's serial from the
 *   origin (core/sync.ts `start`), subscribed to the bus at its old position.
 *   Then it answers again.
 *
 * The origin's receipts keep what the node acked before the crash (a
 * registry entry survives re-registration, origin/receipts.ts), so the
 * checkers keep their per-node history across a restart (checker.ts, "Node
 * restarts").
 */
import type { SimLoop } from "./loop.ts";
import type { Window } from "./origin.ts";

/** One scheduled restart: node `nodeId` is down during `window` (ms since the run's start). */
export interface NodeRestart {
  nodeId: string;
  window: Window;
}

/** A restart that happened, for the report. */
export interface RestartRecord {
  nodeId: string;
  /** Virtual ms since the run's start. */
  downAtMs: number;
  upAtMs: number;
}

/** How the world stops and rebuilds one node (world.ts provides it). */
export interface Restartable {
  /** Stops the node's sync and bus subscription (the engine is dropped with them). */
  stop(): Promise<void>;
  /** Builds a new, empty engine and a new sync; resolves once registered. */
  start(): Promise<void>;
}

/**
 * Every node's life by its index: whether it is down, and which incarnation
 * is running, so answers and acks from a dead incarnation are dropped. In
 * typed arrays rather than fields of an object per node: every question a
 * resolver is asked reads both, and an object per node was a cache miss of
 * its own each time (its reads were ~3 % of a worker at 100,000 resolvers).
 */
export class Lives {
  private readonly downs: Uint8Array;
  private readonly incarnations: Int32Array;

  constructor(n: number) {
    this.downs = new Uint8Array(n);
    this.incarnations = new Int32Array(n);
  }

  isDown(index: number): boolean {
    return this.downs[index] === 1;
  }

  incarnation(index: number): number {
    return this.incarnations[index]!;
  }

  /** True while incarnation `gen` of node `index` is the one running. */
  alive(index: number, gen: number): boolean {
    return this.downs[index] === 0 && gen === this.incarnations[index];
  }

  /** Node `index` goes down: its running incarnation is over. */
  kill(index: number): void {
    this.downs[index] = 1;
    this.incarnations[index]!++;
  }

  /** Node `index` is back (its new incarnation was counted when it went down). */
  revive(index: number): void {
    this.downs[index] = 0;
  }
}

/** One node's life, as `Lives` holds it at the node's index. */
export class Life {
  hooks: Restartable | undefined;

  constructor(
    readonly nodeId: string,
    private readonly lives: Lives,
    private readonly index: number,
  ) {}

  get down(): boolean {
    return this.lives.isDown(this.index);
  }

  get incarnation(): number {
    return this.lives.incarnation(this.index);
  }

  /** The node goes down: its running incarnation is over. */
  kill(): void {
    this.lives.kill(this.index);
  }

  /** The node is back (a new incarnation, counted when it went down). */
  revive(): void {
    this.lives.revive(this.index);
  }

  /** The error a question to a down node fails with (a refused connection, as fetch reports it). */
  refused(): TypeError {
    return new TypeError(`${this.nodeId} is restarting: connection refused`);
  }

  /** True while incarnation `gen` is the one running. */
  alive(gen: number): boolean {
    return this.lives.alive(this.index, gen);
  }
}

/**
 * Schedules every restart in `restarts` on the loop. `startMs` is the run's
 * start on the loop's clock; `lifeOf` finds a node's Life; `touched` is told
 * when a node goes down and when it is back (its answer changes then), and
 * `back` once it answers again: the world asks it then, as its first client
 * would, so the checkers see what a restarted node serves even when the
 * observer is done with it.
 */
export function scheduleRestarts(
  loop: SimLoop,
  startMs: number,
  restarts: readonly NodeRestart[],
  lifeOf: (nodeId: string) => { life: Life; index: number } | undefined,
  touched: (index: number) => void,
  back: (index: number) => void,
  record: (r: RestartRecord) => void,
  /** False once the run is over and the world is stopping: a restart due then does not happen. */
  running: () => boolean,
): void {
  for (const r of restarts) {
    const node = lifeOf(r.nodeId);
    if (!node) throw new Error(`restart of unknown node "${r.nodeId}"`);
    const { life, index } = node;
    let downAtMs = 0;
    loop.at(startMs + r.window.startMs, () => {
      // Overlapping windows of one node: the first one to start wins, the other is skipped.
      if (life.down || !life.hooks || !running()) return;
      life.kill();
      downAtMs = loop.now() - startMs;
      loop.markDirty();
      touched(index);
      void life.hooks.stop().then(() => {
        loop.at(Math.max(loop.now(), startMs + r.window.endMs), () => {
          if (!running()) return;
          loop.markDirty();
          void life.hooks!.start().then(() => {
            life.revive();
            record({ nodeId: r.nodeId, downAtMs, upAtMs: loop.now() - startMs });
            touched(index);
            back(index);
          });
        });
      });
    });
  }
}
