/**
 * The origin in the simulator: the real zone store (origin/store.ts) with a
 * no-op journal, and the real read routes (origin/reads.ts) called through
 * Hono's app.fetch, so what caches receive (Cache-Control, ETag, Age-free
 * answers, Surrogate-Key, X-Serial) is the origin's own code. The change
 * feed is read from the store directly (no HTTP) since NodeSync takes it as
 * a function. Counts the requests that reach it, per second of virtual time.
 */
import type { Clock } from "../../core/clock.ts";
import type { FeedResult } from "../../core/sync.ts";
import { readRoutes } from "../../origin/reads.ts";
import { ChangesGone, type CommittedChange, Store, type ZoneConfig } from "../../origin/store.ts";

export const SIM_ZONE = "example.test";
export const SIM_NAME = `www.${SIM_ZONE}`;

/** The A record value of version k: 10.(k>>16).(k>>8).(k), unique per change. */
export function addressOf(k: number): string {
  return `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}`;
}

export interface OriginLoad {
  /** Reads (DoH and JSON) per second of virtual time since the run's start. */
  reads: number[];
  /** Change-feed polls per second. */
  feed: number[];
}

/** A window [startMs, endMs) of virtual time since the run's start. */
export interface Window {
  startMs: number;
  endMs: number;
}

/** Whether `ms` (since the start) falls in one of `windows`. */
export function within(windows: readonly Window[], ms: number): boolean {
  return windows.some((w) => ms >= w.startMs && ms < w.endMs);
}

export class SimOrigin {
  readonly store: Store;
  readonly load: OriginLoad = { reads: [], feed: [] };
  private readonly app: ReturnType<typeof readRoutes>;
  private readonly startMs: number;

  /**
   * Restarts: while down, reads answer 503 and the feed fails, as a
   * restarting origin refuses connections; the journaled store survives.
   */
  down: readonly Window[] = [];

  constructor(
    private readonly clock: Clock,
    readonly config: ZoneConfig,
  ) {
    this.startMs = clock.now();
    this.store = new Store({
      clock,
      durability: { append: async (_record, onDurable) => onDurable() },
      changeLogLimit: 10_000,
      warn: (m) => {
        throw new Error(`simulated origin: ${m}`);
      },
    });
    this.app = readRoutes({ store: this.store, clock });
  }

  async createZone(): Promise<number> {
    const r = await this.store.createZone({
      name: SIM_ZONE,
      config: this.config,
      rrsets: [{ name: "www", type: "A", data: [addressOf(0)] }],
    });
    return r.serial;
  }

  /** Commits version k of the name; resolves with its serial. */
  async change(k: number): Promise<number> {
    const r = await this.store.update(SIM_ZONE, [
      { changetype: "REPLACE", name: "www", type: "A", data: [addressOf(k)] },
    ]);
    return r.serial;
  }

  onCommit(listener: (c: CommittedChange) => void): void {
    this.store.onCommit(listener);
  }

  isDown(): boolean {
    return within(this.down, this.clock.now() - this.startMs);
  }

  fetch = (req: Request): Promise<Response> => {
    this.count(this.load.reads);
    if (this.isDown()) return Promise.resolve(new Response("restarting", { status: 503 }));
    return Promise.resolve(this.app.fetch(req));
  };

  feed = (zone: string, since: number): FeedResult => {
    this.count(this.load.feed);
    if (this.isDown()) throw new Error("origin restarting");
    try {
      return { kind: "changes", ...this.store.changesSince(zone, since) };
    } catch (err) {
      if (err instanceof ChangesGone) return { kind: "gone" };
      throw err;
    }
  };

  /** The zone's current serial. */
  serial(): number | undefined {
    return this.store.zones()[0]?.zone.serial;
  }

  /** Counts a feed read at virtual time `ms` (a poll computed, not fired: sim/lazy-polls.ts). */
  countFeedAt(ms: number): void {
    this.countAt(this.load.feed, ms);
  }

  zones(): { zone: string; serial: number }[] {
    return this.store.zones().map((s) => ({ zone: s.zone.name, serial: s.zone.serial }));
  }

  private count(series: number[]): void {
    this.countAt(series, this.clock.now());
  }

  private countAt(series: number[], ms: number): void {
    const second = Math.floor((ms - this.startMs) / 1000);
    while (series.length <= second) series.push(0);
    series[second]!++;
  }
}
