/**
 * The edge on Node: the Hono app on @hono/node-server, the engine on the
 * real clock, global fetch to the parent and lru-cache storage.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { RealClock } from "../core/clock.ts";
import { PromRegistry } from "../core/prom.ts";
import { createEdgeApp } from "./app.ts";
import { Edge, type ParentFetch } from "./cache.ts";
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
}

export interface RunningEdge {
  url: string;
  edge: Edge;
  /** Its Prometheus families (GET /metrics); the fabric adds its own on joining. */
  metrics: EdgeInstruments;
  close(): Promise<void>;
}

export async function startEdge(config: EdgeConfig): Promise<RunningEdge> {
  const clock = new RealClock();
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
  const { server, port } = await new Promise<{ server: ReturnType<typeof serve>; port: number }>(
    (resolve, reject) => {
      const s = serve({ fetch: app.fetch, hostname: host, port: config.port ?? 0 }, (info) =>
        resolve({ server: s, port: (info as AddressInfo).port }),
      );
      s.once("error", reject);
    },
  );
  const shown = host.includes(":") ? `[${host}]` : host;
  return {
    url: `http://${shown}:${port}`,
    edge,
    metrics,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // Keep-alive connections would hold close() open until they time out.
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      }),
  };
}
