/**
 * The edge as a Cloudflare Worker: the same Hono app and engine, with
 * lru-cache storage in the isolate (each isolate is one cache; the Workers
 * Cache API would apply its own freshness rules on top of ours).
 * Vars: PARENT (required), EDGE_ID, TOKEN, ORIGIN, MAX_BYTES, MAX_BODY, READ_REPAIR ("off" disables).
 */
import type { ExecutionContext, Hono } from "hono";
import { RealClock } from "../core/clock.ts";
import { TextRegistry } from "../core/metrics.ts";
import { createEdgeApp } from "./app.ts";
import { Edge } from "./cache.ts";
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
}

let app: Hono | undefined;

/** One edge per isolate, built on the first request (env is only known then). */
function appFor(env: EdgeEnv): Hono {
  if (app) return app;
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
  app = createEdgeApp(edge, {
    token: env.TOKEN,
    executionContext: true,
    metrics: metrics.registry,
    inspect: (q) => inspectEdge(storage, env.PARENT!, clock.now(), q),
  });
  return app;
}

/** A byte-count var: a whole number, or unset. */
function byteVar(value: string | undefined, name: string): number | undefined {
  if (value === undefined || value === "") return undefined;
  if (!/^\d+$/.test(value)) {
    throw new Error(
      `set the ${name} var to a whole number of bytes in wrangler.toml, not "${value}"`,
    );
  }
  return Number(value);
}

export default {
  fetch(req: Request, env: EdgeEnv, ctx: ExecutionContext): Response | Promise<Response> {
    return appFor(env).fetch(req, env, ctx);
  },
};
