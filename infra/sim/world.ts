/**
 * One simulated topology: the real edge engine (edge/cache.ts), the real
 * resolver engine (resolver/cache.ts, fed by the real DoH client), NodeSync
 * (core/sync.ts) on a MemoryBus (core/bus.ts), and the origin's real store
 * and read routes, all on one virtual clock. Every upstream fetch, purge
 * delivery and feed poll crosses the node's link (core/delay.ts).
 */
import dnsPacket from "dns-packet";
import { type DeliveryFailure, MemoryBus } from "../../core/bus.ts";
import type { Clock } from "../../core/clock.ts";
import { delayed, type FetchLike, type LinkModel, wrapFetch } from "../../core/delay.ts";
import { DNS_MESSAGE, DOH_PATH } from "../../core/http.ts";
import { memoized } from "../../core/memo.ts";
import type { PropagationMode } from "../../core/purge.ts";
import { hashSeed } from "../../core/random.ts";
import { eventFromFeed, type NodeSync, type SyncTarget } from "../../core/sync.ts";
import { Edge } from "../../edge/cache.ts";
import { currentAge } from "../../edge/policy.ts";
import type { EdgeStorage } from "../../edge/storage.ts";
import { LruStorage } from "../../edge/storage-lru.ts";
import type { ZoneConfig } from "../../origin/store.ts";
import type { StoredAnswer } from "../../resolver/answer.ts";
import { ResolverCache, type Served, type Upstream } from "../../resolver/cache.ts";
import { toWire } from "../../resolver/handler.ts";
import { type CacheConfig, DEFAULT_CACHE } from "../../resolver/policy.ts";
import { parseQuery } from "../../resolver/query.ts";
import { buildQuery, dohUpstream } from "../../resolver/upstream.ts";
import type { AnswerStore } from "../../resolver/wire.ts";
import { followFabric, type NodeLink } from "../node-link.ts";
import {
  edgesInStartOrder,
  type Population,
  type ResolverSpec,
  type Topology,
} from "../topology.ts";
import { calibrateHops, HopRequest, hopRequestOf, SimEdge } from "./hop.ts";
import { LazyPolls } from "./lazy-polls.ts";
import { linkDelay, linkModels } from "./links.ts";
import type { SimLoop } from "./loop.ts";
import type { Observed } from "./observer.ts";
import { SIM_NAME, SIM_ZONE, SimOrigin, type Window, within } from "./origin.ts";
import { cacheConfigOf, populationsById } from "./populations.ts";
import {
  Life,
  Lives,
  type NodeRestart,
  type Restartable,
  type RestartRecord,
  scheduleRestarts,
} from "./restart.ts";

/** RFC 1035 §3.2.2: TYPE A. */
const TYPE_A = 1;
/** The DoH query every client sends: www.example.test A, ID 0 (RFC 8484 §4.1). */
const QUERY = buildQuery(0, toWire(SIM_NAME), 1);
const DOH = `${DOH_PATH}?dns=${QUERY.toString("base64url")}`;
/** The question as `propagate measure` asks an edge (infra/targets.ts askJson). */
const JSON_QUERY = `/resolve?name=${SIM_NAME}&type=A`;
const DNS_JSON = "application/dns-json";
/** The resolver's cache key for it, as its wire handler computes it. */
const KEY = (() => {
  const parsed = parseQuery(QUERY);
  if (!parsed || !("query" in parsed)) throw new Error("simulator query does not parse");
  return parsed.query;
})();

/** The resolver's DoH client must not time out in wall-clock time during a run: no timer at all. */
const NO_WALL_TIMEOUT_MS = 0;
/** Request headers a shared request may carry (a floor's X-Min-Serial varies: not shared). */
const SHAREABLE = new Set(["accept", "cache-control"]);
/** Bound on the memo of URL hosts and shared requests (one name is asked: far more than used). */
const MAX_SHARED = 100_000;

export interface WorldOptions {
  topology: Topology;
  mode: PropagationMode;
  seed: number | string;
  zone: ZoneConfig;
  faults?: Faults;
  /** Compute change-feed polls that find nothing instead of firing them (sim/lazy-polls.ts). */
  lazyPolls?: boolean;
  /** Answer a resolver's fresh hits from a memo of its held answer (sim/clients.ts). */
  lazyClients?: boolean;
  /**
   * Ask edges as `propagate measure` does, DNS JSON at /resolve (infra/targets.ts),
   * instead of the DoH its resolvers send: an edge caches the two apart, so a
   * child's DoH refill does not make the JSON answer new (sim/prober.ts).
   */
  askEdgesJson?: boolean;
  /** Edges answer with a HopResponse, not a Web Response (sim/hop.ts). */
  lightHops?: boolean;
  /** When `topology` is a shard (sim/shards.ts): the whole topology it was cut from. */
  whole?: Topology;
}

/** Fault schedules beyond the links' own loss and partitions (ms since the run's start). */
export interface Faults {
  /** Origin restarts: reads answer 503 and the feed fails meanwhile. */
  originDown?: Window[];
  /** Bus outages: events published meanwhile are lost; nodes learn by polling. */
  busDown?: Window[];
  /** Node restarts: the node is down, then comes back empty (sim/restart.ts). */
  restarts?: NodeRestart[];
}

/** What the world reports as it runs (the tracker, the observer and the checkers listen). */
export interface WorldEvents {
  /**
   * Node `index` answered with `version` (undefined: no version, an error
   * answer); `stale` marks a documented stale answer (RFC 8767 serve-stale,
   * RFC 5861 stale-if-error). `asked` false: an answer to the edge's children
   * that the observer's question could not have got (askEdgesJson).
   */
  served(index: number, version: number | undefined, stale: boolean, asked?: boolean): void;
  /**
   * Node `index` answered `n` questions with `version` in this instant, none
   * stale: what `n` calls of `served` would report (client questions a held
   * answer settled, counted rather than fired: sim/clients.ts).
   */
  servedTimes(index: number, version: number | undefined, n: number): void;
  /** A query to node `index` got no answer (-1: a bus delivery failed). */
  failed(index: number, err: unknown): void;
  /** Node `index`'s state may have changed in this instant (a fill, a purge, a refresh). */
  touched(index: number): void;
  /** Node `index` acked (zone, serial) to the origin's receipts. */
  acked(index: number, zone: string, serial: number): void;
}

export interface SimNode {
  id: string;
  kind: "edge" | "resolver";
  tier: string;
  /** Its resolver population (topology `populations`), if any. */
  population?: string;
  /** Index of its parent or upstream in `World.nodes`; -1 for the origin. */
  parent: number;
  /** Asks the node for the name, as a client would; reports what it served. */
  ask(): void;
  /** Ms until what it holds for the name may change by time alone (undefined: never). */
  nextChangeMs(): number | undefined;
}

export class World implements Observed {
  readonly origin: SimOrigin;
  readonly nodes: SimNode[] = [];
  readonly bus: MemoryBus | undefined;
  readonly syncs: NodeSync[] = [];
  /** A record value -> serial of the change that wrote it. */
  private readonly serialOfValue = new Map<string, number>();
  /** The same for A values, by their address as a number (`versionAt`: no string per question). */
  private readonly serialOfAddress = new Map<number, number>();
  private readonly handlers = new Map<string, (req: Request) => Promise<Response>>();
  /** A URL's host, parsed once per URL. */
  private readonly hostOf = memoized((url) => new URL(url).host, MAX_SHARED);
  /** Bodiless GET requests shared by every hop that sends the same one (see requestOf). */
  private readonly requests = new Map<string, Request>();
  /** The same, by a frozen init's identity and then the URL (see requestOf); cleared with `requests`. */
  private readonly requestsByInit = new Map<RequestInit, Map<string, Request>>();
  private readonly indexOf = new Map<string, number>();
  /** Present when polls that find nothing are computed, not fired. */
  readonly lazy: LazyPolls | undefined;
  /** Per node: whether it is down and which incarnation runs (sim/restart.ts). */
  private readonly lives: Life[] = [];
  /** Every node's life by index, read on each question (restart.ts `Lives`). */
  private readonly lifeStates: Lives;
  /** The restarts that happened, in order. */
  readonly restarts: RestartRecord[] = [];
  private readonly startMs: number;
  private stopping = false;
  /** Per resolver, the answer a question gets with no state change (lazyClients). */
  private readonly memo: HeldAnswers;
  /**
   * Per resolver, the version (NaN: none) and instant (NaN: never) of the
   * last stale-if-error copy its upstream edge sent.
   */
  private readonly sie: { version: Float64Array; at: Float64Array };
  /** Questions answered from the memo, without the engine (lazyClients). */
  hitsComputed = 0;
  /** Edge answers carried as a HopResponse, not a Web Response (lightHops). */
  readonly carried = { hops: 0 };
  /** Where `versionAt` copies a stored answer to read it. */
  private scratch = Buffer.allocUnsafe(512);

  constructor(
    private readonly o: WorldOptions,
    private readonly loop: SimLoop,
    private readonly events: WorldEvents,
  ) {
    const clock = loop.engineClock;
    this.origin = new SimOrigin(clock, o.zone);
    this.origin.down = o.faults?.originDown ?? [];
    const t = o.topology;
    const timeless = [
      t.defaults.link,
      ...t.edges.map((e) => e.link),
      ...t.resolvers.map((r) => r.link),
    ].every((l) => (l?.partitions.length ?? 0) === 0);
    const restarts = o.faults?.restarts?.length ?? 0;
    if (o.lazyPolls && o.mode !== "ttl" && timeless && this.origin.down.length === 0 && !restarts) {
      this.lazy = new LazyPolls(
        loop,
        this.origin,
        SIM_ZONE,
        t.defaults.pollIntervalMs,
        t.defaults.pollJitter,
      );
    }
    const busDown = o.faults?.busDown ?? [];
    const start = clock.now();
    this.startMs = start;
    const n = t.edges.length + t.resolvers.length;
    this.memo = { version: new Float64Array(n), until: new Float64Array(n).fill(Number.NaN) };
    this.lifeStates = new Lives(n);
    this.sie = { version: new Float64Array(n), at: new Float64Array(n).fill(Number.NaN) };
    // A fill's HopRequest goes to the origin as it is: Hono reads of a GET its
    // URL, method and header fields (sim/hop.ts).
    this.handlers.set(o.topology.origin.id, this.origin.fetch);
    this.bus = o.topology.bus === "off" ? undefined : new MemoryBus({ clock, capacity: 1_000 });
    this.origin.onCommit((c) => {
      const serial = c.serial;
      for (const ch of c.changes) {
        const value = ch.rrset?.type === "A" ? String(ch.rrset.data[0]) : undefined;
        if (value === undefined) continue;
        this.serialOfValue.set(value, serial);
        const address = addressNumber(value);
        if (address >= 0) this.serialOfAddress.set(address, serial);
      }
      if (within(busDown, clock.now() - start)) return;
      if (this.bus && c.op === "update") void this.bus.publish(eventFromFeed(c.zone, c, o.mode));
    });
  }

  /** Builds every node, subscribes it to the bus and starts its anti-entropy. */
  async start(): Promise<void> {
    if (this.o.lightHops) {
      await calibrateHops();
      this.origin.reuseAnswers();
    }
    await this.origin.createZone();
    const t = this.o.topology;
    const models = linkModels(t);
    const clock = this.loop.engineClock;
    const originUrl = `http://${t.origin.id}`;
    for (const e of edgesInStartOrder(t)) {
      const index = this.nodes.length;
      this.indexOf.set(e.id, index);
      const fetch = this.fetchVia(e.id, models.get(e.id)!);
      const life = new Life(e.id, this.lifeStates, index);
      this.lives.push(life);
      // A restart (sim/restart.ts) builds both again: empty storage, no floors.
      const newStorage = () =>
        touching(new LruStorage(e.maxBytes ?? 1 << 20), () => this.events.touched(index));
      let storage = newStorage();
      const newEdge = () => {
        const options = {
          id: e.id,
          parent: `http://${e.parent}`,
          origin: originUrl,
          fetch,
          clock,
          storage,
        };
        return this.o.lightHops ? new SimEdge(options, this.carried) : new Edge(options);
      };
      let edge = newEdge();
      const serve = (req: Request) => {
        if (life.down) return Promise.reject(life.refused());
        const gen = life.incarnation;
        return edge.handle(req).then((res) => {
          if (!life.alive(gen)) throw life.refused();
          // Asked as measure asks (askEdgesJson), only the JSON question is the observer's:
          // the DoH answers go to the edge's children.
          const asked = !this.o.askEdgesJson || req.url.endsWith(JSON_QUERY);
          this.events.served(index, etagVersion(res.headers.get("etag")), staleIfError(res), asked);
          return res;
        });
      };
      this.handlers.set(e.id, serve);
      const url = this.o.askEdgesJson ? `http://${e.id}${JSON_QUERY}` : `http://${e.id}${DOH}`;
      const accept = this.o.askEdgesJson ? DNS_JSON : DNS_MESSAGE;
      // One request for every question the observer puts to this edge, as the
      // resolvers' are shared (`requestOf`): a Web Request each was an
      // AbortController, a signal and a header list, ~1 % of the hour.
      let question: Request | undefined;
      this.nodes.push({
        id: e.id,
        kind: "edge",
        tier: e.tier,
        parent: this.indexOf.get(e.parent) ?? -1,
        nextChangeMs: () => edgeNextChangeMs(storage, clock.now()),
        ask: () => {
          this.loop.markDirty();
          question ??= this.requestOf(url, { headers: { accept } });
          serve(question).catch((err: unknown) => this.events.failed(index, err));
        },
      });
      let link = await this.follow(e.id, this.touchingTarget(index, edge), models.get(e.id)!, life);
      life.hooks = {
        stop: () => link.close(),
        start: async () => {
          storage = newStorage();
          edge = newEdge();
          link = await this.follow(e.id, this.touchingTarget(index, edge), models.get(e.id)!, life);
        },
      };
    }
    // Drawn over the whole topology: a shard's resolvers keep the population they have in it.
    const populations = populationsById(this.o.whole ?? t);
    const host = this.resolverHost();
    for (const r of t.resolvers) {
      const index = this.nodes.length;
      this.indexOf.set(r.id, index);
      const life = new Life(r.id, this.lifeStates, index);
      this.lives.push(life);
      const node = new SimResolver(
        r,
        populations.get(r.id),
        index,
        this.indexOf.get(r.upstream) ?? -1,
        life,
        this.fetchVia(r.id, models.get(r.id)!),
        models.get(r.id)!,
        host,
      );
      this.nodes.push(node);
      await node.follow();
      life.hooks = node;
    }
    // A shard restarts its own nodes; the others' restarts belong to other
    // shards (a node in no shard is still an error: scheduleRestarts names it).
    const whole = this.o.whole;
    const elsewhere = new Set(
      whole
        ? [...whole.edges, ...whole.resolvers]
            .map((n) => n.id)
            .filter((id) => !this.indexOf.has(id))
        : [],
    );
    const restarts = (this.o.faults?.restarts ?? []).filter((r) => !elsewhere.has(r.nodeId));
    if (restarts.length > 0) {
      scheduleRestarts(
        this.loop,
        this.startMs,
        restarts,
        (id) => {
          const index = this.indexOf.get(id);
          return index === undefined ? undefined : { life: this.lives[index]!, index };
        },
        (i) => this.events.touched(i),
        (i) => this.nodes[i]!.ask(),
        (r) => this.restarts.push(r),
        () => !this.stopping,
      );
    }
  }

  /** Called before a resolver's held answer ends or changes (run.ts sets it when clients are held). */
  heldEnds: ((index: number) => void) | undefined;

  /** Resolver `index` holds nothing from now on (an upstream call, a purge, a restart). */
  private endHeld(index: number): void {
    this.heldEnds?.(index);
    this.memo.until[index] = Number.NaN;
  }

  /** Resolver `index` answers `version` (undefined: none) until `until` with no state change. */
  private hold(index: number, until: number, version: number | undefined): void {
    this.heldEnds?.(index);
    this.memo.until[index] = until;
    this.memo.version[index] = version ?? Number.NaN;
  }

  /** Until when resolver `index` answers from its held answer (NaN: it does not). */
  heldUntil(index: number): number {
    return this.lifeStates.isDown(index) ? Number.NaN : this.memo.until[index]!;
  }

  /** `n` questions resolver `index`'s held answer settled, as `answerHeld` counts each. */
  heldAnswers(index: number, n: number): void {
    this.hitsComputed += n;
    this.loop.events += n;
    const v = this.memo.version[index]!;
    this.events.servedTimes(index, Number.isNaN(v) ? undefined : v, n);
  }

  /**
   * A question to resolver `index` answered from its held answer
   * (lazyClients), as its `ask` does first; false when it holds none or is
   * down (then `ask` it). The client load's path: typed arrays, no closures.
   */
  answerHeld(index: number): boolean {
    if (!(this.loop.now() < this.memo.until[index]!) || this.lifeStates.isDown(index)) return false;
    this.hitsComputed++;
    const v = this.memo.version[index]!;
    this.report(index, Number.isNaN(v) ? undefined : v, false);
    return true;
  }

  /**
   * Resolver `index` served `version`. A copy the edge served stale-if-error
   * (RFC 5861 §4) and the resolver passed on in the same instant is that
   * documented stale case too, even where the resolver does not mark it
   * (Age <= TTL, or below its floor).
   */
  private report(index: number, version: number | undefined, stale: boolean): void {
    const sv = this.sie.version[index]!;
    const passedOn =
      this.sie.at[index] === this.loop.now() &&
      (Number.isNaN(sv) ? version === undefined : sv === version);
    this.events.served(index, version, stale || passedOn);
  }

  get size(): number {
    return this.nodes.length;
  }

  ask(i: number): void {
    // A held answer first, as a resolver's `ask` does (false for a node that
    // is down or holds none, and for every edge): most of the observer's
    // questions are settled so, without the node's own object.
    if (!this.answerHeld(i)) this.nodes[i]!.ask();
  }

  nextChangeMs(i: number): number | undefined {
    // A resolver's held answer first, as its own nextChangeMs does (the
    // observer asks after every answer of an open node: most are held ones).
    const until = this.memo.until[i]!;
    const now = this.loop.now();
    return now < until ? until - now : this.nodes[i]!.nextChangeMs();
  }

  parentOf(i: number): number {
    return this.nodes[i]!.parent;
  }

  /** The node's sync target, reporting every purge it applies as a touch. */
  private touchingTarget(index: number, target: SyncTarget): SyncTarget {
    return {
      id: target.id,
      applyPurge: (event) => {
        this.endHeld(index);
        const r = target.applyPurge(event);
        this.events.touched(index);
        return r;
      },
      ...(target.residualMs ? { residualMs: (event) => target.residualMs!(event) } : {}),
    };
  }

  /** Commits version k of the name; resolves with its serial. */
  commit(k: number): Promise<number> {
    this.lazy?.fastForward(true);
    return this.origin.change(k);
  }

  /** Stops polling and delivery; work in flight finishes as the loop runs on. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.lazy?.fastForward(false);
    let done = false;
    const stopping = Promise.all([...this.syncs.map((s) => s.stop()), this.bus?.close()]);
    void stopping.then(() => {
      done = true;
    });
    // A full settle first: what stops without a timer has stopped before the next instant.
    this.loop.markDirty();
    await this.loop.runUntil(this.loop.now() + 600_000, () => done);
    await stopping;
  }

  /** A fetch that crosses the node's link, then reaches the handler named by the URL's host. */
  private fetchVia(nodeId: string, model: LinkModel): FetchLike {
    const clock = this.loop.engineClock;
    return wrapFetch(
      (input, init) => this.route(input, init),
      linkDelay(model, this.o.seed, nodeId, "fetch", clock),
      clock,
    );
  }

  /** Hands a hop's request to the handler its URL's host names. */
  private route(input: string | URL | Request, init: RequestInit | undefined): Promise<Response> {
    const req = this.requestOf(input, init);
    const handler = this.handlers.get(this.hostOf(req.url));
    if (!handler)
      return Promise.reject(new TypeError(`no simulated node "${this.hostOf(req.url)}"`));
    return handler(req);
  }

  /** What every simulated resolver uses of the world: one object, made once. */
  private resolverHost(): ResolverHost {
    const configs = new Map<string, CacheConfig>();
    return {
      clock: this.loop.engineClock,
      loop: this.loop,
      events: this.events,
      memo: this.memo,
      sie: this.sie,
      lives: this.lifeStates,
      lazyClients: this.o.lazyClients === true,
      answerHeld: (i) => this.answerHeld(i),
      endHeld: (i) => this.endHeld(i),
      hold: (i, until, version) => this.hold(i, until, version),
      report: (i, version, stale) => this.report(i, version, stale),
      versionOf: (answer) => this.versionOf(answer),
      versionAt: (store, slot) => this.versionAt(store, slot),
      cacheConfig: (maxBytes, pop) => {
        // Read, never written, by the cache: shared by the resolvers alike
        // (a copy each was an object, its out-of-line fields and its
        // fractions as heap numbers, per resolver for the whole run).
        const key = `${maxBytes} ${pop?.name ?? ""}`;
        let config = configs.get(key);
        if (config === undefined) {
          config = { ...DEFAULT_CACHE, maxBytes, ...cacheConfigOf(pop) };
          configs.set(key, config);
        }
        return config;
      },
      follow: (id, index, target, model, life) =>
        this.follow(id, this.touchingTarget(index, target), model, life),
    };
  }

  /**
   * The Request for a hop. A Web Request costs an AbortController, a signal
   * and a header list; a bodiless GET with no signal and only shareable
   * headers is read, never consumed, by the edge engine, so one object per
   * (URL, headers) serves every resolver that sends it: a HopRequest over
   * the fields on the light path (sim/hop.ts `hopRequestOf`), else a Request.
   */
  private requestOf(input: string | URL | Request, init: RequestInit | undefined): Request {
    if (input instanceof Request || input instanceof HopRequest) return input as Request;
    // A frozen init is one object for every request that sends it (the DoH
    // client's plain question and prefetch, resolver/upstream.ts), and a
    // URL string keeps its hash: found by the two, with no key made and
    // hashed per hop (a string of ~100 characters: 1.7 % of a run).
    const frozen = typeof input === "string" && init !== undefined && Object.isFrozen(init);
    if (frozen) {
      const req = this.requestsByInit.get(init)?.get(input);
      if (req !== undefined) return req;
    }
    const shared = this.sharedRequest(input, init);
    if (shared === undefined) return new Request(input, init);
    if (frozen) {
      let byUrl = this.requestsByInit.get(init);
      if (byUrl === undefined) {
        byUrl = new Map();
        this.requestsByInit.set(init, byUrl);
      }
      byUrl.set(input as string, shared);
    }
    return shared;
  }

  /** The request shared by every hop that sends (input, init), or undefined when it cannot be shared. */
  private sharedRequest(input: string | URL, init: RequestInit | undefined): Request | undefined {
    const h = init?.headers;
    const shareable =
      init?.signal == null &&
      init?.body == null &&
      (init?.method ?? "GET") === "GET" &&
      h !== undefined &&
      !(h instanceof Headers) &&
      !Array.isArray(h) &&
      onlyShareable(h);
    if (!shareable) return undefined;
    const r = h as Record<string, string>;
    const key = `${String(input)} ${r.accept ?? ""} ${r["cache-control"] ?? ""}`;
    let req = this.requests.get(key);
    if (!req) {
      // Both bounded at once: each entry by init is one of these, found another way.
      if (this.requests.size >= MAX_SHARED) {
        this.requests.clear();
        this.requestsByInit.clear();
      }
      req = (this.o.lightHops && hopRequestOf(String(input), r)) || new Request(input, init);
      this.requests.set(key, req);
    }
    return req;
  }

  /**
   * NodeSync for one node: bus events over its link, feed polls over its link.
   * Acks of an incarnation that died meanwhile are dropped (sim/restart.ts).
   */
  private async follow(
    nodeId: string,
    target: SyncTarget,
    model: LinkModel,
    life?: Life,
  ): Promise<NodeLink> {
    const gen = life?.incarnation ?? 0;
    const t = this.o.topology;
    const clock = this.loop.engineClock;
    const feedLink = linkDelay(model, this.o.seed, nodeId, "feed", clock);
    const lazy = this.lazy?.node(feedLink);
    const delivery = {
      link: linkDelay(model, this.o.seed, nodeId, "bus", clock),
      onError: (f: DeliveryFailure) => this.events.failed(-1, f.error),
    };
    const link = await followFabric(
      this.bus,
      delivery,
      {
        nodeId,
        target,
        clock: lazy?.clock ?? clock,
        feed: async (zone, since) => {
          const d = await delayed(clock, feedLink, () => this.origin.feed(zone, since));
          if (d.dropped) throw new Error(`feed request lost on the link (${d.reason})`);
          return d.value;
        },
        zones: async () => this.origin.zones(),
        ack: async (zone, serial) => {
          if (life && life.incarnation !== gen) throw life.refused();
          this.events.acked(this.indexOf.get(nodeId)!, zone, serial);
        },
        modeOf: () => this.o.mode,
        pollIntervalMs: t.defaults.pollIntervalMs,
        pollJitter: t.defaults.pollJitter,
        seed: hashSeed(this.o.seed, nodeId, "poll"),
        // As a live node (infra/node-link.ts): every incarnation starts empty.
        floorAtStart: true,
      },
      undefined,
      // Lazy polls (lazy-polls.ts) must know the sync before it starts its timers.
      (s) => lazy?.bind(s),
    );
    this.syncs.push(link.sync);
    return link;
  }

  /**
   * The version (zone serial) of a resolver's answer: of the value of its A
   * record. Read each time: the storage makes a new view per read
   * (resolver/storage-lru.ts), so a memo keyed by the answer never hit, and
   * its weak entries cost every young-generation collection.
   */
  private versionOf(answer: StoredAnswer): number | undefined {
    const value = firstAddress(answer.wire, answer.wire.length);
    return value === undefined ? undefined : this.serialOfValue.get(value);
  }

  /**
   * `versionOf` the answer stored in `slot`, read from a copy into one
   * buffer the world reuses (the storage's hot-path copy, resolver/wire.ts
   * `AnswerStore`) rather than from an answer made for it: a fresh hit the
   * observer asks for makes no object (answerOf copies the wire and reads
   * the owner names, ~0.8 KB a question).
   */
  private versionAt(store: AnswerStore, slot: number): number | undefined {
    const n = store.answerLength(slot);
    if (n > this.scratch.length)
      this.scratch = Buffer.allocUnsafe(Math.max(n, 2 * this.scratch.length));
    store.copyAnswer(slot, this.scratch, 0, -1);
    const at = firstAddressAt(this.scratch, n);
    if (at >= 0) return this.serialOfAddress.get(this.scratch.readUInt32BE(at));
    const value = firstAddress(this.scratch, n);
    return value === undefined ? undefined : this.serialOfValue.get(value);
  }
}

/**
 * Per node, the answer a resolver holds for the name: its version (NaN:
 * none) and until when it is served as is (NaN: nothing held). Typed
 * arrays, not an object per answer: a client question reads them for a
 * random one of up to 100,000 resolvers.
 */
interface HeldAnswers {
  version: Float64Array;
  until: Float64Array;
}

/** Storage that reports every write and removal (the observer's "touched"). */
function touching(storage: EdgeStorage, touched: () => void): EdgeStorage {
  return {
    get: (key) => storage.get(key),
    set: (entry) => {
      touched();
      return storage.set(entry);
    },
    delete: (key) => {
      touched();
      return storage.delete(key);
    },
    keysFor: (sk) => storage.keysFor(sk),
    keys: () => storage.keys(),
    clear: () => {
      touched();
      storage.clear();
    },
    stats: () => storage.stats(),
  };
}

/**
 * The next instant an edge's held answer changes by time alone: the end of
 * freshness, then of stale-while-revalidate (RFC 9111 §4.2, RFC 5861 §3).
 * Past freshness, a question starts a refresh; that refresh touches the node.
 */
function edgeNextChangeMs(storage: EdgeStorage, now: number): number | undefined {
  let next: number | undefined;
  for (const key of storage.keys()) {
    const e = storage.get(key);
    if (!e || e.invalidated || e.cc.noCache) continue;
    const age = currentAge(e, now);
    const swr = e.cc.staleWhileRevalidate ?? 0;
    for (const end of [e.freshnessLifetime, e.freshnessLifetime + swr]) {
      const ms = (end - age) * 1000;
      if (ms > 0 && (next === undefined || ms < next)) next = ms;
    }
  }
  return next;
}

/**
 * The next instant a resolver's held answer changes by time alone: its
 * prefetch point (a question then starts a refresh), its expiry (RFC 1035
 * §3.2.1), the end of serve-stale (RFC 8767 §4).
 */
function resolverNextChangeMs(cache: ResolverCache, now: number): number | undefined {
  const store = cache.store;
  const slot = store.find(KEY.name, KEY.qtype);
  if (slot < 0) return undefined;
  const prefetchAt = store.prefetchAt(slot);
  const expiresAt = store.expiresAt(slot);
  let next: number | undefined;
  if (prefetchAt > now) next = prefetchAt - now;
  if (expiresAt > now && (next === undefined || expiresAt - now < next)) next = expiresAt - now;
  return next;
}

/**
 * The address of the first A record in the answer section, as dns-packet
 * decodes it ("a.b.c.d"), found by walking the question and answer records
 * (RFC 1035 §4.1) without decoding the message into objects. The resolver
 * stores only messages its own record walker read whole; anything else (no
 * A record among the answers, a label or length out of place, an A RDATA
 * that is not 4 octets) is left to dns-packet, as before. The message is
 * `wire`'s first `n` octets (a reused buffer may hold more after them).
 */
export function firstAddress(wire: Buffer, n: number): string | undefined {
  const at = firstAddressAt(wire, n);
  if (at >= 0) return `${wire[at]}.${wire[at + 1]}.${wire[at + 2]}.${wire[at + 3]}`;
  const decoded = dnsPacket.decode(wire.subarray(0, n)).answers?.find((r) => r.type === "A");
  return decoded && "data" in decoded ? String(decoded.data) : undefined;
}

/**
 * Where `firstAddress` finds its four octets by the walk: the offset of the
 * first A record's RDATA, or -1 when the walk leaves the message to
 * dns-packet. The version of a fresh hit is read from these octets as a
 * number (`World.versionAt`), with no string made per question.
 */
export function firstAddressAt(wire: Buffer, n: number): number {
  if (n >= 12) {
    let at = 12;
    for (let q = wire.readUInt16BE(4); q > 0 && at >= 0; q--) {
      at = skipName(wire, at, n);
      at = at >= 0 && at + 4 <= n ? at + 4 : -1;
    }
    for (let r = wire.readUInt16BE(6); r > 0 && at >= 0; r--) {
      at = skipName(wire, at, n);
      if (at < 0 || at + 10 > n) break;
      const rdlength = wire.readUInt16BE(at + 8);
      const rdata = at + 10;
      if (rdata + rdlength > n) break;
      if (wire.readUInt16BE(at) === TYPE_A) return rdlength === 4 ? rdata : -1;
      at = rdata + rdlength;
    }
  }
  return -1;
}

/**
 * "a.b.c.d" as the 32-bit number its four octets make, or -1 for any text
 * that is not the form dns-packet decodes an A record to (decimal octets,
 * no leading zeros): only a value `firstAddress` could return is mapped.
 */
export function addressNumber(value: string): number {
  const parts = value.split(".");
  if (parts.length !== 4) return -1;
  let x = 0;
  for (const p of parts) {
    const octet = Number(p);
    if (!(octet >= 0 && octet <= 255) || String(octet) !== p) return -1;
    x = x * 256 + octet;
  }
  return x;
}

/** Offset just past the name at `at` (labels, or a compression pointer, RFC 1035 §4.1.4); -1 if malformed. */
function skipName(wire: Buffer, at: number, n: number): number {
  while (at < n) {
    const len = wire[at]!;
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) return at + 2 <= n ? at + 2 : -1;
    if ((len & 0xc0) !== 0) return -1;
    at += len + 1;
  }
  return -1;
}

/** Every field of a request's record may be shared (see `SHAREABLE`); no list of its names made per request. */
function onlyShareable(fields: Record<string, string>): boolean {
  for (const name in fields) if (Object.hasOwn(fields, name) && !SHAREABLE.has(name)) return false;
  return true;
}

const STALE_IF_ERROR = "; detail=stale-if-error";

/**
 * The edge's own Cache-Status member (RFC 9211 §2: the last) says
 * stale-if-error (RFC 5861 §4): its `detail` parameter, which edge/key.ts
 * `formatCacheStatus` writes last. Read as the field's end, not as any
 * "stale-if-error" after the last comma: an edge whose name has it (an
 * RFC 8941 token may) would have made every answer of it a documented
 * stale one, and the checkers would have excused an older version; a
 * comma inside a quoted key moved the "last member".
 */
export function staleIfError(res: Pick<Response, "headers">): boolean {
  const cs = res.headers.get("cache-status");
  return cs?.endsWith(STALE_IF_ERROR) === true;
}

/**
 * `"12"` (or `W/"12"`) -> 12: the origin's ETag is the RRset's version (its
 * serial); undefined for any other ETag. Read digit by digit, not by a
 * regular expression: every answer an edge serves is read, and a match
 * made an array and a string each.
 */
export function etagVersion(etag: string | null): number | undefined {
  if (etag === null) return undefined;
  const open = etag.startsWith("W/") ? 2 : 0;
  const close = etag.length - 1;
  if (close - open < 2 || etag.charCodeAt(open) !== QUOTE || etag.charCodeAt(close) !== QUOTE)
    return undefined;
  let v = 0;
  for (let i = open + 1; i < close; i++) {
    const d = etag.charCodeAt(i) - ZERO;
    if (d < 0 || d > 9) return undefined;
    v = v * 10 + d;
  }
  // Exact up to 15 digits; a longer one (no serial has one) as Number reads it.
  return close - open - 1 <= 15 ? v : Number(etag.slice(open + 1, close));
}

const QUOTE = 0x22;
const ZERO = 0x30;

/** What a simulated resolver uses of its world (World.resolverHost). */
interface ResolverHost {
  clock: Clock;
  loop: SimLoop;
  events: WorldEvents;
  memo: HeldAnswers;
  sie: { version: Float64Array; at: Float64Array };
  /** Every node's life by index: a resolver reads its own there, not through its Life. */
  lives: Lives;
  lazyClients: boolean;
  answerHeld(index: number): boolean;
  /** Node `index` holds nothing from now on (World.endHeld). */
  endHeld(index: number): void;
  /** Node `index` answers `version` until `until` with no state change (World.hold). */
  hold(index: number, until: number, version: number | undefined): void;
  report(index: number, version: number | undefined, stale: boolean): void;
  versionOf(answer: StoredAnswer): number | undefined;
  /** The version of the answer in a storage slot, with no answer object made. */
  versionAt(store: AnswerStore, slot: number): number | undefined;
  /** The cache configuration of a resolver with this size and population: one object for all alike. */
  cacheConfig(maxBytes: number, pop: Population | undefined): CacheConfig;
  follow(
    id: string,
    index: number,
    target: SyncTarget,
    model: LinkModel,
    life: Life,
  ): Promise<NodeLink>;
}

/**
 * One simulated resolver: the real engine (ResolverCache) fed by the real
 * DoH client over the node's link, asked by the observer and the client
 * load. A class rather than a closure per function: tsx compiles with
 * esbuild's keepNames, which gives every function bound to a name (`const
 * f = () => ...`, `{ f: () => ... }`) an `Object.defineProperty(f, "name")`,
 * and that turns the function into a dictionary-mode object with a property
 * table of its own (~256 bytes). A dozen such closures per resolver were 18 %
 * of the simulator's heap at 10,000 resolvers (bench/results/simulate.md);
 * methods are defined once, on the prototype.
 */
class SimResolver implements SimNode, Restartable {
  readonly kind = "resolver";
  readonly tier = "resolver";
  readonly id: string;
  readonly population?: string;
  /** A restart (sim/restart.ts) builds it again: empty, no floors, nothing held. */
  private cache: ResolverCache;
  /** Upstream calls in flight: a held answer is remembered only with none. */
  private inflight = 0;
  private readonly upstream: Upstream;
  private link: NodeLink | undefined;

  constructor(
    private readonly spec: ResolverSpec,
    private readonly pop: Population | undefined,
    private readonly index: number,
    readonly parent: number,
    private readonly life: Life,
    private readonly viaLink: FetchLike,
    private readonly model: LinkModel,
    private readonly host: ResolverHost,
  ) {
    this.id = spec.id;
    if (pop) this.population = pop.name;
    this.responded = this.responded.bind(this);
    this.upstreamFailed = this.upstreamFailed.bind(this);
    this.upstream = dohUpstream(`http://${spec.upstream}`, {
      timeoutMs: NO_WALL_TIMEOUT_MS,
      // Bound, not an arrow in the literal (named by defineProperty: see the class).
      fetch: this.fetchOverLink.bind(this) as typeof fetch,
    });
    this.cache = this.newCache();
  }

  /** Follows the bus and the feed, unless its population does not follow purges. */
  async follow(): Promise<void> {
    // A population that does not follow purges is a resolver on the internet: TTLs only.
    if (this.pop?.purges === false) return;
    this.link = await this.host.follow(this.id, this.index, this.cache, this.model, this.life);
  }

  async stop(): Promise<void> {
    await this.link?.close();
  }

  async start(): Promise<void> {
    this.cache = this.newCache();
    this.host.endHeld(this.index);
    await this.follow();
  }

  nextChangeMs(): number | undefined {
    const until = this.host.memo.until[this.index]!;
    const now = this.host.clock.now();
    return now < until ? until - now : resolverNextChangeMs(this.cache, now);
  }

  ask(): void {
    const { host, index } = this;
    const lives = host.lives;
    if (lives.isDown(index)) {
      host.events.failed(index, this.life.refused());
      return;
    }
    if (host.answerHeld(index)) return;
    const gen = lives.incarnation(index);
    // Even a synchronous answer may have started a refresh (a prefetch,
    // a lost request failing in promise turns): the instant settles.
    host.loop.markDirty();
    const cache = this.cache;
    if (host.lazyClients) {
      // A fresh hit as `lookup` has it (its first step, the wire handler's
      // hot path: counted, touched, a prefetch started when due), its
      // version read from the slot: `lookup` would make an answer object to
      // say it. The slow path asks `lookup` itself (a test patches it).
      const slot = cache.hit(KEY.name, KEY.qtype, KEY.key);
      if (slot >= 0) {
        const version = host.versionAt(cache.store, slot);
        this.remember(slot, version);
        if (!lives.alive(index, gen)) host.events.failed(index, this.life.refused());
        else host.report(index, version, false);
        return;
      }
    }
    const served = cache.lookup(KEY.key, KEY.name, KEY.qtype);
    if (!(served instanceof Promise)) {
      this.track(gen, served);
      return;
    }
    served.then(
      (s) => this.track(gen, s),
      (err: unknown) => host.events.failed(index, err),
    );
  }

  private newCache(): ResolverCache {
    const { host, index } = this;
    return new ResolverCache(
      this.id,
      host.cacheConfig(this.spec.maxBytes ?? 1 << 16, this.pop),
      host.clock,
      // Its one fetch ends the call for the world (see `responded`).
      (name, qtype, minSerial, revalidate) => {
        this.inflight++;
        host.endHeld(index);
        return this.upstream(name, qtype, minSerial, revalidate);
      },
    );
  }

  /**
   * The DoH client's fetch, its only one per upstream call: over the link,
   * its end the call's end for the world (`responded`, `upstreamFailed`).
   */
  private fetchOverLink(input: string | URL | Request, init?: RequestInit): Promise<Response> {
    return this.viaLink(input, init).then(this.responded, this.upstreamFailed);
  }

  /**
   * A response that crossed the link: the upstream call is over, in the
   * instant the DoH client reads it. An answer (200) may change what the
   * node holds: it is touched. A failed call brings no new version; the
   * observer asks the node again after retryMs instead (touching it would
   * ask again in the same instant, and a lost request fails in that
   * instant: a resolver with nothing cached, as after a restart, would loop
   * forever). Any upstream call ends the held answer (lazyClients). A
   * stale-if-error copy is noted (World.report). Bound once per resolver,
   * not an arrow per call: a call in flight holds its handlers, and
   * thousands are in flight at once when TTLs that ran out together are
   * asked (bench/results/simulate.md); and here rather than on the DoH
   * client's own promise: one reaction and one promise fewer per call.
   */
  private responded(res: Response): Response {
    const { host, index } = this;
    if (staleIfError(res)) {
      host.sie.at[index] = host.clock.now();
      host.sie.version[index] = etagVersion(res.headers.get("etag")) ?? Number.NaN;
    }
    this.upstreamDone();
    if (res.status === 200) host.events.touched(index);
    return res;
  }

  private upstreamFailed(err: unknown): never {
    this.upstreamDone();
    throw err;
  }

  private upstreamDone(): void {
    this.inflight--;
    this.host.endHeld(this.index);
    this.host.loop.markDirty();
  }

  private track(gen: number, s: Served): void {
    const { host, index } = this;
    if (!host.lives.alive(index, gen)) host.events.failed(index, this.life.refused());
    else host.report(index, host.versionOf(s.answer), s.stale);
  }

  /**
   * A fresh answer before its prefetch point, with no refresh in flight:
   * until then, or until a purge or an upstream call, a question changes
   * nothing in the engine but its hit counter and the entry's recency (a
   * resolver here holds one name, so recency never picks an eviction).
   * `slot` is the fresh hit's, `version` its answer's.
   */
  private remember(slot: number, version: number | undefined): void {
    if (this.inflight > 0) return;
    const store = this.cache.store;
    const until = Math.min(store.prefetchAt(slot), store.expiresAt(slot));
    const { host, index } = this;
    if (host.clock.now() < until) host.hold(index, until, version);
  }
}
