/**
 * The edge on Node: the Hono app on @hono/node-server behind the fast path
 * for fresh hits (fast-hit.ts), the engine on the real clock, global fetch
 * to the parent and lru-cache storage.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { getRequestListener } from "@hono/node-server";
import { type Clock, RealClock } from "../core/clock.ts";
import { PromRegistry } from "../core/prom.ts";
import { createEdgeApp } from "./app.ts";
import { Edge, type ParentFetch } from "./cache.ts";
import { type FastHits, fastHits } from "./fast-hit.ts";
import { inspectEdge } from "./inspect.ts";
import { type EdgeInstruments, edgeInstruments, observeEdge } from "./metrics.ts";
import { DEFAULT_MAX_BYTES, LruStorage } from "./storage-lru.ts";

export interface EdgeConfig {
  id: string;
  parent: string;
  origin?: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  maxBytes?: number;
  /** Largest request body forwarded to the parent (default 1 MiB). */
  maxBodyBytes?: number;
  token?: string;
  parentTimeoutMs?: number;
  /** Read repair (default true): see EdgeOptions.readRepair. */
  readRepair?: boolean;
  fetch?: ParentFetch;
  /** Failures no client sees (background refreshes); default stderr. */
  log?: (message: string) => void;
  /** Default the real clock; tests pass a VirtualClock. */
  clock?: Clock;
  /** Answer plain fresh hits before the Hono app (fast-hit.ts; default true). */
  fastHits?: boolean;
}

export interface RunningEdge {
  url: string;
  edge: Edge;
  /** Its Prometheus families (GET /metrics); the fabric adds its own on joining. */
  metrics: EdgeInstruments;
  /** The fast path for fresh hits, when on. */
  fast: FastHits | undefined;
  close(): Promise<void>;
}

export async function startEdge(config: EdgeConfig): Promise<RunningEdge> {
  const clock = config.clock ?? new RealClock();
  const metrics = edgeInstruments(
    new PromRegistry(config.id),
    config.fetch ?? ((req) => fetch(req)),
    clock,
  );
  const storage = new LruStorage(config.maxBytes ?? DEFAULT_MAX_BYTES);
  const edge = new Edge({
    id: config.id,
    parent: config.parent,
    origin: config.origin,
    fetch: metrics.fetch,
    clock,
    storage,
    parentTimeoutMs: config.parentTimeoutMs,
    readRepair: config.readRepair,
    maxBodyBytes: config.maxBodyBytes,
    log: config.log ?? ((m) => console.error(m)),
  });
  observeEdge(edge, metrics);
  const app = createEdgeApp(edge, {
    token: config.token,
    metrics: metrics.registry,
    inspect: (q) => inspectEdge(storage, config.parent, clock.now(), q),
  });
  const host = config.host ?? "127.0.0.1";
  // @hono/node-server's listener, as serve() builds it, behind the fast path.
  const appListener = getRequestListener(app.fetch, { hostname: host });
  const fast = config.fastHits === false ? undefined : fastHits(edge, clock, appListener);
  const server = createServer(fast?.listener ?? appListener);
  const port = await new Promise<number>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port ?? 0, host, () => resolve((server.address() as AddressInfo).port));
  });
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}`,
    edge,
    metrics,
    fast,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive connections would hold close() open until they time out.
        server.closeAllConnections();
      }),
  };
}
