/**
 * The edge as a Cloudflare Worker: the same Hono app and engine, with
 * lru-cache storage in the isolate (each isolate is one cache; the Workers
 * Cache API would apply its own freshness rules on top of ours).
 * Vars: PARENT (required), EDGE_ID, TOKEN, ORIGIN, MAX_BYTES, MAX_BODY, READ_REPAIR ("off" disables),
 * FLEET (the fleet floor's name, default EDGE_ID), FLOOR_CACHE_MS (default 1000), FLOOR_LOG (default 1000).
 * Binding FLOOR (Durable Object, class FleetFloor): the fleet floor (edge/fleet.ts);
 * without it each isolate knows only the purges relayed to itself.
 */
import type { ExecutionContext, Hono } from "hono";
import { RealClock } from "../core/clock.ts";
import { TextRegistry } from "../core/metrics.ts";
import type { PurgeEvent } from "../core/purge.ts";
import { createEdgeApp } from "./app.ts";
import { Edge } from "./cache.ts";
import {
  DEFAULT_FLOOR_CACHE_MS,
  FleetFloorClient,
  type FloorNamespace,
  MAX_FLOOR_CACHE_MS,
} from "./fleet.ts";
import { inspectEdge } from "./inspect.ts";
import { edgeInstruments, observeEdge } from "./metrics.ts";
import { DEFAULT_MAX_BYTES, LruStorage } from "./storage-lru.ts";

export interface EdgeEnv {
  PARENT?: string;
  EDGE_ID?: string;
  TOKEN?: string;
  ORIGIN?: string;
  MAX_BYTES?: string;
  MAX_BODY?: string;
  READ_REPAIR?: string;
  FLEET?: string;
  FLOOR_CACHE_MS?: string;
  /** Events the fleet floor keeps (edge/floor-do.ts), default 1000. */
  FLOOR_LOG?: string;
  FLOOR?: FloorNamespace;
}

export { FleetFloor } from "./floor-do.ts";

interface Isolate {
  app: Hono;
  edge: Edge;
  fleet: FleetFloorClient | undefined;
  floorCacheMs: number;
}

let isolate: Isolate | undefined;

/** One edge per isolate, built on the first request (env is only known then). */
function isolateFor(env: EdgeEnv): Isolate {
  if (isolate) return isolate;
  if (!env.PARENT) throw new Error("set the PARENT var to the parent's base URL in wrangler.toml");
  const id = env.EDGE_ID ?? "worker-edge";
  const clock = new RealClock();
  // prom-client needs Node's process and perf_hooks: the Worker renders the same names itself.
  const metrics = edgeInstruments(new TextRegistry(id), (req) => fetch(req), clock);
  const storage = new LruStorage(byteVar(env.MAX_BYTES, "MAX_BYTES") ?? DEFAULT_MAX_BYTES);
  const edge = new Edge({
    id,
    parent: env.PARENT,
    origin: env.ORIGIN,
    fetch: metrics.fetch,
    clock,
    storage,
    readRepair: env.READ_REPAIR !== "off",
    maxBodyBytes: byteVar(env.MAX_BODY, "MAX_BODY"),
    // Workers send console output to the runtime's logs (wrangler tail).
    log: (m) => console.error(m),
  });
  observeEdge(edge, metrics);
  const app = createEdgeApp(edge, {
    token: env.TOKEN,
    executionContext: true,
    metrics: metrics.registry,
    inspect: (q) => inspectEdge(storage, env.PARENT!, clock.now(), q),
  });
  const floorCacheMs = byteVar(env.FLOOR_CACHE_MS, "FLOOR_CACHE_MS") ?? DEFAULT_FLOOR_CACHE_MS;
  // The relay's 2xx is held this long, and the relay gives up on a POST after 5 s.
  if (floorCacheMs > MAX_FLOOR_CACHE_MS) {
    throw new Error(
      `set the FLOOR_CACHE_MS var to at most ${MAX_FLOOR_CACHE_MS} ms in wrangler.toml, not ${floorCacheMs}: the origin's relay waits 5 s for the purge's answer`,
    );
  }
  const fleet =
    env.FLOOR &&
    new FleetFloorClient({
      ns: env.FLOOR,
      fleet: env.FLEET ?? id,
      cacheMs: floorCacheMs,
      target: edge,
      now: () => Date.now(),
    });
  isolate = { app, edge, fleet, floorCacheMs };
  return isolate;
}

/** A whole-number var (bytes, ms), or unset. */
function byteVar(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (!/^\d+$/.test(value)) {
    throw new Error(
      `set the ${name} var to a whole number of bytes in wrangler.toml, not "${value}"`,
    );
  }
  return Number(value);
}

/** The edge's own paths, answered without consulting the fleet floor. */
const OWN = new Set(["/metrics", "/cache"]);

/**
 * With a fleet floor: a relayed event (POST /purge `{event}`) is applied
 * here by the app, then stored in the fleet's Durable Object, and the 2xx
 * (the relay's receipt) is held for FLOOR_CACHE_MS, after which no isolate
 * serves without having applied it. A GET or HEAD first applies the events
 * this isolate has not seen. If the Durable Object cannot be asked,
 * nothing cached is trusted: every entry is marked stale (revalidated with
 * the parent, whose version floor still holds), and the request goes on.
 */
async function fleetFetch(
  i: Isolate,
  fleet: FleetFloorClient,
  req: Request,
  env: EdgeEnv,
  ctx: ExecutionContext,
) {
  const path = new URL(req.url).pathname;
  if (req.method === "POST" && path === "/purge") {
    const copy = req.clone();
    const res = await i.app.fetch(req, env, ctx);
    if (!res.ok) return res;
    const answer = (await res.clone().json()) as { applied?: string };
    if (answer.applied === undefined) return res; // a manual purge: this isolate only
    const { event } = (await copy.json()) as { event: PurgeEvent };
    try {
      await fleet.record(event);
    } catch (err) {
      const reason = `${i.edge.id}: could not store ${event.changeId} in the fleet floor: ${String(err)}`;
      return Response.json({ error: "fleet floor unavailable", reason }, { status: 503 });
    }
    await new Promise((r) => setTimeout(r, i.floorCacheMs));
    return res;
  }
  // Only GET and HEAD are served from the cache (or store a fill); the rest pass through.
  if ((req.method === "GET" || req.method === "HEAD") && !OWN.has(path)) {
    try {
      await fleet.fresh();
    } catch (err) {
      console.error(
        `${i.edge.id}: fleet floor unreachable, revalidating everything: ${String(err)}`,
      );
      i.edge.purge({ all: true, mode: "soft" });
    }
  }
  return i.app.fetch(req, env, ctx);
}

export default {
  fetch(req: Request, env: EdgeEnv, ctx: ExecutionContext): Response | Promise<Response> {
    const i = isolateFor(env);
    return i.fleet ? fleetFetch(i, i.fleet, req, env, ctx) : i.app.fetch(req, env, ctx);
  },
};
