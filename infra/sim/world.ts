/**
 * One simulated topology: the real edge engine (edge/cache.ts), the real
 * resolver engine (resolver/cache.ts, fed by the real DoH client), NodeSync
 * (core/sync.ts) on a MemoryBus (core/bus.ts), and the origin's real store
 * and read routes, all on one virtual clock. Every upstream fetch, purge
 * delivery and feed poll crosses the node's link (core/delay.ts).
 */
import dnsPacket from "dns-packet";
import { type DeliveryFailure, MemoryBus } from "../../core/bus.ts";
import { delayed, type FetchLike, type LinkModel, wrapFetch } from "../../core/delay.ts";
import { DNS_MESSAGE, DOH_PATH } from "../../core/http.ts";
import type { PropagationMode } from "../../core/purge.ts";
import { hashSeed } from "../../core/random.ts";
import { eventFromFeed, type NodeSync, type SyncTarget } from "../../core/sync.ts";
import { Edge } from "../../edge/cache.ts";
import { LruStorage } from "../../edge/storage-lru.ts";
import type { ZoneConfig } from "../../origin/store.ts";
import type { StoredAnswer } from "../../resolver/answer.ts";
import { ResolverCache, type Served } from "../../resolver/cache.ts";
import { toWire } from "../../resolver/handler.ts";
import { DEFAULT_CACHE } from "../../resolver/policy.ts";
import { parseQuery } from "../../resolver/query.ts";
import { buildQuery, dohUpstream } from "../../resolver/upstream.ts";
import { followFabric } from "../node-link.ts";
import { edgesInStartOrder, type Topology } from "../topology.ts";
import { linkDelay, linkModels } from "./links.ts";
import type { SimLoop } from "./loop.ts";
import { SIM_NAME, SimOrigin } from "./origin.ts";
import type { Tracker } from "./tracker.ts";

/** The DoH query every client sends: www.example.test A, ID 0 (RFC 8484 §4.1). */
const QUERY = buildQuery(0, toWire(SIM_NAME), 1);
const DOH = `${DOH_PATH}?dns=${QUERY.toString("base64url")}`;
/** The resolver's cache key for it, as its wire handler computes it. */
const KEY = (() => {
  const parsed = parseQuery(QUERY);
  if (!parsed || !("query" in parsed)) throw new Error("simulator query does not parse");
  return parsed.query;
})();

/** The resolver's DoH client must not time out in wall-clock time during a run. */
const NO_WALL_TIMEOUT_MS = 20 * 86_400_000;

export interface WorldOptions {
  topology: Topology;
  mode: PropagationMode;
  seed: number | string;
  zone: ZoneConfig;
}

export interface SimNode {
  id: string;
  kind: "edge" | "resolver";
  tier: string;
  /** Asks the node for the name, as a client would; reports what it served to the tracker. */
  ask(): void;
}

export class World {
  readonly origin: SimOrigin;
  readonly nodes: SimNode[] = [];
  readonly bus: MemoryBus | undefined;
  readonly syncs: NodeSync[] = [];
  /** Resolver answer -> version (zone serial of its A record), decoded once per answer. */
  private readonly versions = new WeakMap<StoredAnswer, number | undefined>();
  /** A record value -> serial of the change that wrote it. */
  private readonly serialOfValue = new Map<string, number>();
  private readonly handlers = new Map<string, (req: Request) => Promise<Response>>();

  constructor(
    private readonly o: WorldOptions,
    private readonly loop: SimLoop,
    private readonly tracker: Tracker,
  ) {
    const clock = loop.engineClock;
    this.origin = new SimOrigin(clock, o.zone);
    this.handlers.set(o.topology.origin.id, this.origin.fetch);
    this.bus = o.topology.bus === "off" ? undefined : new MemoryBus({ clock, capacity: 1_000 });
    this.origin.onCommit((c) => {
      const serial = c.serial;
      for (const ch of c.changes) {
        const value = ch.rrset?.type === "A" ? String(ch.rrset.data[0]) : undefined;
        if (value !== undefined) this.serialOfValue.set(value, serial);
      }
      if (this.bus && c.op === "update") void this.bus.publish(eventFromFeed(c.zone, c, o.mode));
    });
  }

  /** Builds every node, subscribes it to the bus and starts its anti-entropy. */
  async start(): Promise<void> {
    await this.origin.createZone();
    const t = this.o.topology;
    const models = linkModels(t);
    const clock = this.loop.engineClock;
    const originUrl = `http://${t.origin.id}`;
    for (const e of edgesInStartOrder(t)) {
      const index = this.nodes.length;
      const fetch = this.fetchVia(e.id, models.get(e.id)!);
      const edge = new Edge({
        id: e.id,
        parent: `http://${e.parent}`,
        origin: originUrl,
        fetch,
        clock,
        storage: new LruStorage(e.maxBytes ?? 1 << 20),
      });
      const serve = (req: Request) =>
        edge.handle(req).then((res) => {
          this.tracker.served(index, etagVersion(res.headers.get("etag")));
          return res;
        });
      this.handlers.set(e.id, serve);
      const url = `http://${e.id}${DOH}`;
      this.nodes.push({
        id: e.id,
        kind: "edge",
        tier: e.tier,
        ask: () => {
          this.loop.markDirty();
          serve(new Request(url, { headers: { accept: DNS_MESSAGE } })).catch((err: unknown) =>
            this.tracker.failed(index, err),
          );
        },
      });
      await this.follow(e.id, edge, models.get(e.id)!);
    }
    for (const r of t.resolvers) {
      const index = this.nodes.length;
      const cache = new ResolverCache(
        r.id,
        { ...DEFAULT_CACHE, maxBytes: r.maxBytes ?? 1 << 16 },
        clock,
        dohUpstream(`http://${r.upstream}`, {
          timeoutMs: NO_WALL_TIMEOUT_MS,
          fetch: this.fetchVia(r.id, models.get(r.id)!) as typeof fetch,
        }),
      );
      const track = (s: Served) => this.tracker.served(index, this.versionOf(s.answer));
      this.nodes.push({
        id: r.id,
        kind: "resolver",
        tier: "resolver",
        ask: () => {
          const served = cache.lookup(KEY.key, KEY.name, KEY.qtype);
          if (!(served instanceof Promise)) return track(served);
          this.loop.markDirty();
          served.then(track, (err: unknown) => this.tracker.failed(index, err));
        },
      });
      await this.follow(r.id, cache, models.get(r.id)!);
    }
  }

  /** Stops polling and delivery; work in flight finishes as the loop runs on. */
  async stop(): Promise<void> {
    let done = false;
    const stopping = Promise.all([...this.syncs.map((s) => s.stop()), this.bus?.close()]);
    void stopping.then(() => {
      done = true;
    });
    await this.loop.runUntil(this.loop.now() + 600_000, () => done);
    await stopping;
  }

  /** A fetch that crosses the node's link, then reaches the handler named by the URL's host. */
  private fetchVia(nodeId: string, model: LinkModel): FetchLike {
    const route: FetchLike = (input, init) => {
      const req = input instanceof Request ? input : new Request(input, init);
      const host = new URL(req.url).host;
      const handler = this.handlers.get(host);
      if (!handler) return Promise.reject(new TypeError(`no simulated node "${host}"`));
      return handler(req);
    };
    const clock = this.loop.engineClock;
    return wrapFetch(route, linkDelay(model, this.o.seed, nodeId, "fetch", clock), clock);
  }

  /** NodeSync for one node: bus events over its link, feed polls over its link. */
  private async follow(nodeId: string, target: SyncTarget, model: LinkModel): Promise<void> {
    const t = this.o.topology;
    const clock = this.loop.engineClock;
    const feedLink = linkDelay(model, this.o.seed, nodeId, "feed", clock);
    const delivery = {
      link: linkDelay(model, this.o.seed, nodeId, "bus", clock),
      onError: (f: DeliveryFailure) => this.tracker.failed(-1, f.error),
    };
    const { sync } = await followFabric(this.bus, delivery, {
      nodeId,
      target,
      clock,
      feed: async (zone, since) => {
        const d = await delayed(clock, feedLink, () => this.origin.feed(zone, since));
        if (d.dropped) throw new Error(`feed request lost on the link (${d.reason})`);
        return d.value;
      },
      zones: async () => this.origin.zones(),
      ack: async () => {},
      modeOf: () => this.o.mode,
      pollIntervalMs: t.defaults.pollIntervalMs,
      pollJitter: t.defaults.pollJitter,
      seed: hashSeed(this.o.seed, nodeId, "poll"),
    });
    this.syncs.push(sync);
  }

  private versionOf(answer: StoredAnswer): number | undefined {
    if (this.versions.has(answer)) return this.versions.get(answer);
    const a = dnsPacket.decode(answer.wire).answers?.find((r) => r.type === "A");
    const v = a && "data" in a ? this.serialOfValue.get(String(a.data)) : undefined;
    this.versions.set(answer, v);
    return v;
  }
}

/** `"12"` -> 12: the origin's ETag is the RRset's version (its serial). */
function etagVersion(etag: string | null): number | undefined {
  const m = etag ? /^(?:W\/)?"(\d+)"$/.exec(etag) : null;
  return m ? Number(m[1]) : undefined;
}
