/**
 * The origin in the simulator: the real zone store (origin/store.ts) with a
 * no-op journal, and the real read routes (origin/reads.ts) called through
 * Hono's app.fetch, so what caches receive (Cache-Control, ETag, Age-free
 * answers, Surrogate-Key, X-Serial) is the origin's own code. The change
 * feed is read from the store directly (no HTTP) since NodeSync takes it as
 * a function. Counts the requests that reach it, per second of virtual time.
 */
import type { Clock } from "../../core/clock.ts";
import { DOH_PATH, H } from "../../core/http.ts";
import type { FeedResult } from "../../core/sync.ts";
import type { Reply } from "../../edge/cache.ts";
import { readRoutes } from "../../origin/reads.ts";
import { ChangesGone, type CommittedChange, Store, type ZoneConfig } from "../../origin/store.ts";
import { HopResponse, plainFields } from "./hop.ts";

export const SIM_ZONE = "example.test";

export const SIM_NAME = `www.${SIM_ZONE}`;

/** Bound on the answers kept (reuseAnswers): far more than one name's variants. */
const MAX_ANSWERS = 1_000;

interface HeldAnswer {
  generation: number;
  second: number;
  reply: Reply;
}

/** The request fields the DoH read route reads, with its URL; undefined: not reused. */
function answerKey(req: Request): string | undefined {
  if (req.method !== "GET") return undefined;
  const url = req.url;
  const path = url.indexOf("/", url.indexOf("//") + 2);
  if (path < 0 || !url.startsWith(`${DOH_PATH}?`, path)) return undefined;
  const inm = req.headers.get("if-none-match");
  const min = req.headers.get(H.minSerial);
  return `${url}\n${inm === null ? "-" : `+${inm}`}\n${min === null ? "-" : `+${min}`}`;
}

/**
 * A Response whose readers read it as they would the Response itself: the
 * same status, fields, body stream and `arrayBuffer` or `bytes` promise; `read` is
 * handed the bytes on the side.
 */
class TappedResponse {
  constructor(
    private readonly res: Response,
    private readonly read: (bytes: ArrayBuffer) => void,
  ) {}

  get status(): number {
    return this.res.status;
  }

  get ok(): boolean {
    return this.res.ok;
  }

  get headers(): Headers {
    return this.res.headers;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return this.res.body;
  }

  get bodyUsed(): boolean {
    return this.res.bodyUsed;
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    const p = this.res.arrayBuffer();
    void p.then(this.read, () => {});
    return p;
  }

  bytes(): Promise<Uint8Array<ArrayBuffer>> {
    const p = this.res.bytes();
    // A Response's bytes are a view of a buffer of their own.
    void p.then(
      (b) => this.read(b.buffer),
      () => {},
    );
    return p;
  }

  text(): Promise<string> {
    return this.res.text();
  }
}

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
    const key = this.answers ? answerKey(req) : undefined;
    if (key !== undefined) {
      const second = Math.floor(this.clock.now() / 1000);
      const held = this.answers!.get(key);
      if (held && held.generation === this.generation && held.second === second) {
        this.answersReused++;
        return Promise.resolve(new HopResponse(held.reply) as unknown as Response);
      }
      const res = this.app.fetch(req);
      if (!(res instanceof Promise)) return Promise.resolve(this.remember(key, res, second));
      return Promise.resolve(res);
    }
    return Promise.resolve(this.app.fetch(req));
  };

  /**
   * Reuse the read routes' answers (sim/hop.ts): a GET of the DoH path is
   * answered from (its URL, If-None-Match, X-Min-Serial: all the route reads
   * of a request), the zone store (changed only by commits: `generation`)
   * and the clock, of which only the Date field's whole second; so within
   * one second and one generation the same request gets the same status,
   * fields and bytes. Those are kept (from the first such answer, as its
   * reader reads it) and handed out as a HopResponse.
   */
  reuseAnswers(): void {
    this.answers ??= new Map();
    this.store.onCommit(() => {
      this.generation++;
    });
  }

  /** Answers handed out again instead of asking the read routes (reuseAnswers). */
  answersReused = 0;
  private answers: Map<string, HeldAnswer> | undefined;
  private generation = 0;

  /**
   * The routes' answer as it is, with its body read through a tap that keeps
   * status, fields and bytes once the reader has them: the reader's read is
   * the Response's own (same promise, same turns), the keeping is promise
   * work no chain waits on.
   */
  private remember(key: string, res: Response, second: number): Response {
    const generation = this.generation;
    const headers: Record<string, string> = {};
    res.headers.forEach((value, name) => {
      headers[name] = value;
    });
    if (!plainFields(headers)) return res;
    const keep = (body: Uint8Array<ArrayBuffer> | null) => {
      if (this.answers!.size >= MAX_ANSWERS) this.answers!.clear();
      this.answers!.set(key, { generation, second, reply: { status: res.status, headers, body } });
    };
    const empty = res.body === null;
    return new TappedResponse(res, (bytes) =>
      keep(empty ? null : new Uint8Array(bytes)),
    ) as unknown as Response;
  }

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
