/**
 * Connects one cache node to the fabric over HTTP: registers it with the
 * origin, follows the origin's change feed (anti-entropy) and acks applied
 * changes, and subscribes it to the purge bus. The same code runs whether the
 * node shares the launcher's process or runs in its own.
 */
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import type { DeliveryFailure, PurgeBus, Subscription } from "../core/bus.ts";
import { type Clock, sleep, type TimerId } from "../core/clock.ts";
import { type FetchLike, type LinkDelay, wrapFetch } from "../core/delay.ts";
import type { FabricMetrics } from "../core/metrics.ts";
import type { PropagationMode, PurgeEvent } from "../core/purge.ts";
import { eventVerifier } from "../core/signing.ts";
import {
  type AckAnswer,
  AckBatcher,
  type AckItem,
  type FeedResult,
  NodeSync,
  type NodeSyncOptions,
  type SyncTarget,
} from "../core/sync.ts";

/**
 * One AckBatcher per origin for every node of this process: 100 nodes of one
 * process ack an event in one request (POST /v1/acks), each item with its
 * node's own token.
 */
const batchers = new Map<string, AckBatcher>();

/**
 * Acks leave through node:http with kept-alive sockets, not fetch: an ack is
 * the one request a node sends per change, and undici's fetch costs it ~4x
 * the CPU (~480 vs ~120 us per request measured here), which 100 node
 * processes on one machine pay 100 times per change.
 */
const ackAgents = {
  "http:": new HttpAgent({ keepAlive: true }),
  "https:": new HttpsAgent({ keepAlive: true }),
};

const ACK_TIMEOUT_MS = 30_000;

function postJson(url: URL, body: string): Promise<{ status: number; text: string }> {
  const attempt = (): Promise<{ status: number; text: string }> =>
    new Promise((resolve, reject) => {
      const https = url.protocol === "https:";
      const req = (https ? httpsRequest : httpRequest)(
        url,
        {
          method: "POST",
          agent: ackAgents[https ? "https:" : "http:"],
          headers: {
            "content-type": "application/json",
            "content-length": Buffer.byteLength(body),
          },
        },
        (res) => {
          let text = "";
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            text += c;
          });
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
          res.on("error", reject);
        },
      );
      // One request in flight carries every ack of this process: an origin that stops
      // answering (stopped, a dead link) must not hold them for ever. A lost ack is
      // covered by the next one (acks are cumulative).
      req.setTimeout(ACK_TIMEOUT_MS, () =>
        req.destroy(new Error(`no answer from the origin in ${ACK_TIMEOUT_MS / 1000} s`)),
      );
      req.on("error", (err: NodeJS.ErrnoException) => {
        // A kept-alive socket the origin closed as we reused it: the request never
        // reached it, so sending it again on a fresh socket is safe (Node's http docs).
        if (req.reusedSocket && err.code === "ECONNRESET") attempt().then(resolve, reject);
        else reject(err);
      });
      req.end(body);
    });
  return attempt();
}

function acksTo(originUrl: string): AckBatcher {
  let batcher = batchers.get(originUrl);
  if (!batcher) {
    const url = new URL("/v1/acks", originUrl);
    batcher = new AckBatcher(
      async (acks: AckItem[]): Promise<AckAnswer[]> => {
        const res = await postJson(url, JSON.stringify({ acks }));
        if (res.status !== 200) {
          throw new Error(
            `acking: the origin answered HTTP ${res.status}: ${res.text.slice(0, 300)}`,
          );
        }
        const { results } = JSON.parse(res.text) as {
          results: ({ status: number } & Record<string, unknown>)[];
        };
        return results.map(({ status, ...body }) => ({ status, body }));
      },
      1000,
      setImmediate,
    );
    batchers.set(originUrl, batcher);
  }
  return batcher;
}

export interface NodeLinkOptions {
  nodeId: string;
  tier: string;
  /** Where the node answers, for the registry. */
  address: string;
  parent?: string;
  target: SyncTarget;
  originUrl: string;
  token: string;
  clock: Clock;
  bus?: PurgeBus;
  /** The node's link: delays bus deliveries and feed polls. */
  link?: LinkDelay;
  modeOf: (zone: string) => PropagationMode;
  /** Every time the node reads the origin's zone list (at start and each poll). */
  onZones?: (zones: string[]) => void;
  pollIntervalMs: number;
  pollJitter: number;
  seed?: number | string;
  log: (message: string) => void;
  /** The node's fabric metrics: bus lag and the sync counters join them. */
  metrics?: FabricMetrics;
}

export interface NodeLink {
  sync: NodeSync;
  subscription?: Subscription;
  close(): Promise<void>;
}

export async function connectNode(o: NodeLinkOptions): Promise<NodeLink> {
  const http = o.link ? wrapFetch(fetch, o.link, o.clock) : (fetch as FetchLike);
  const auth = { authorization: `Bearer ${o.token}`, "content-type": "application/json" };
  const api = (path: string) => new URL(path, o.originUrl).toString();

  const register = async () => {
    const res = await fetch(api("/v1/nodes"), {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ id: o.nodeId, tier: o.tier, address: o.address, parent: o.parent }),
    });
    await expectOk(res, `registering ${o.nodeId}`);
    return (await res.json()) as { purgeKey?: { publicKey?: string }; leaseMs?: number };
  };
  // Bus events are applied only when the origin's key signed them (core/signing.ts).
  const { purgeKey, leaseMs } = await untilReachable(register, o.clock);
  if (o.bus && !purgeKey?.publicKey) {
    throw new Error(`registering ${o.nodeId}: the origin gave no purge key to verify events with`);
  }
  const verify = purgeKey?.publicKey ? eventVerifier(purgeKey.publicKey) : undefined;

  const postAck = async (
    body: { zone: string; serial: number } | { changeId: string },
    what: string,
  ) => {
    const send = () => acksTo(o.originUrl).ack({ node: o.nodeId, token: o.token, ...body });
    let res = await send();
    if (res.status === 404 && /not registered/.test(String(res.body.reason))) {
      // The origin restarted and forgot its registry: join again, then ack.
      await register();
      res = await send();
    }
    if (res.status !== 200) {
      const text = JSON.stringify(res.body).slice(0, 300);
      throw new Error(`${what}: the origin answered HTTP ${res.status}: ${text}`);
    }
  };
  const delivery = {
    ...(o.link && { link: o.link }),
    onError: (f: DeliveryFailure) => o.log(`${o.nodeId}: ${f.message}`),
  };
  let joined = false;
  const link = await followFabric(
    o.bus,
    delivery,
    {
      nodeId: o.nodeId,
      target: o.target,
      clock: o.clock,
      modeOf: o.modeOf,
      pollIntervalMs: o.pollIntervalMs,
      pollJitter: o.pollJitter,
      ...(o.seed !== undefined && { seed: o.seed }),
      log: o.log,
      ...(verify && { verify }),
      // A node connects right after it started: its caches are empty.
      floorAtStart: true,
      zones: async () => {
        // Start-up is not propagation traffic: the first listing bypasses the modelled link
        // (its loss or partition), or a lossy topology could not start at all.
        const get = joined ? http : fetch;
        const res = await expectOk(await get(api("/v1/zones")), "listing zones");
        const body = (await res.json()) as { zones: { zone: string; serial: number }[] };
        o.onZones?.(body.zones.map((z) => z.zone));
        return body.zones.map(({ zone, serial }) => ({ zone, serial }));
      },
      feed: async (zone, since): Promise<FeedResult> => {
        const res = await http(api(`/v1/zones/${zone}/changes?since=${since}`));
        if (res.status === 410 || res.status === 404) {
          await res.body?.cancel();
          return { kind: "gone" };
        }
        await expectOk(res, `reading the change feed of ${zone}`);
        return {
          kind: "changes",
          ...((await res.json()) as Omit<Extract<FeedResult, { kind: "changes" }>, "kind">),
        };
      },
      ack: (zone, serial) => postAck({ zone, serial }, `acking ${zone}@${serial}`),
      ackPurge: (changeId) => postAck({ changeId }, `acking purge ${changeId}`),
    },
    o.metrics,
  );
  joined = true;
  // The lease: renewed at a third of its length, so one lost renewal does not make the node LOST.
  let renewal: TimerId | undefined;
  let closed = false;
  const renew = async () => {
    try {
      const res = await fetch(api(`/v1/nodes/${o.nodeId}/lease`), {
        method: "POST",
        headers: auth,
      });
      if (res.status === 404)
        await register(); // the origin forgot it: join again
      else await expectOk(res, `renewing ${o.nodeId}'s lease`);
    } catch (err) {
      o.log(`${o.nodeId}: ${(err as Error).message}`);
    }
  };
  const scheduleRenewal = () => {
    if (closed || !leaseMs) return;
    renewal = o.clock.setTimeout(() => void renew().finally(scheduleRenewal), leaseMs / 3);
  };
  scheduleRenewal();
  return {
    ...link,
    close: async () => {
      closed = true;
      if (renewal !== undefined) o.clock.clearTimeout(renewal);
      await link.close();
    },
  };
}

/**
 * Starts a node's NodeSync (anti-entropy, acks) and subscribes it to the bus
 * when there is one: events go to the sync, and so do resyncs when the bus
 * lost this node's position. The one wiring of a cache node to the fabric,
 * for live nodes (connectNode) and the simulator (infra/sim/world.ts).
 */
export async function followFabric(
  bus: PurgeBus | undefined,
  delivery: { link?: LinkDelay; onError: (failure: DeliveryFailure) => void },
  options: NodeSyncOptions,
  metrics?: FabricMetrics,
  beforeStart?: (sync: NodeSync) => void,
): Promise<NodeLink> {
  const sync = new NodeSync(options);
  beforeStart?.(sync);
  await sync.start();
  metrics?.sync(() => sync.stats());
  const onEvent = (e: PurgeEvent) => {
    metrics?.busEvent(e);
    return sync.onEvent(e);
  };
  const subscription = bus
    ? await bus.subscribe(options.nodeId, onEvent, {
        ...delivery,
        onResync: (reason) => sync.onResync(reason),
      })
    : undefined;
  return {
    sync,
    ...(subscription && { subscription }),
    close: async () => {
      await subscription?.close();
      await sync.stop();
    },
  };
}

/**
 * Start-up retries until the origin answers (it may still be starting, as under
 * `up --processes`): connection failures only, with backoff, for 10 s at most.
 */
async function untilReachable<T>(fn: () => Promise<T>, clock: Clock): Promise<T> {
  const deadline = clock.now() + 10_000;
  for (let backoff = 50; ; backoff = Math.min(backoff * 2, 1_000)) {
    try {
      return await fn();
    } catch (err) {
      // fetch rejects with a TypeError when no connection could be made.
      if (!(err instanceof TypeError) || clock.now() + backoff > deadline) throw err;
    }
    await sleep(clock, backoff);
  }
}

async function expectOk(res: Response, what: string): Promise<Response> {
  if (res.ok) return res;
  const text = await res.text();
  throw new Error(`${what}: the origin answered HTTP ${res.status}: ${text.slice(0, 300)}`);
}
