/**
 * Wires the resolver together: config -> cache policy + upstream client ->
 * DNS handler on UDP and TCP, plus the admin HTTP endpoint.
 */
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { type Clock, RealClock } from "../core/clock.ts";
import { startDnsServer } from "../core/dns-transport.ts";
import type { FabricMetrics } from "../core/metrics.ts";
import { normaliseName } from "../core/names.ts";
import { PromRegistry } from "../core/prom.ts";
import { ResponseRateLimiter, truncatedResponse } from "../core/rate-limit.ts";
import { adminApp } from "./admin.ts";
import { ResolverCache, type Upstream } from "./cache.ts";
import { parseResolverConfig, type ResolverConfig, type ResolverConfigInput } from "./config.ts";
import { createHandler, type HandlerMetrics } from "./handler.ts";
import { inspectResolver } from "./inspect.ts";
import { observeResolver, timedUpstream } from "./metrics.ts";
import { LruStorage } from "./storage-lru.ts";
import { upstreamFromUrl } from "./upstream.ts";

export interface RunningResolver {
  /** "host:port" of the DNS listener (UDP and TCP). */
  dnsAddr: string;
  /** Admin base URL, when enabled. */
  adminUrl: string | undefined;
  /** The admin bearer token (generated when none was configured). */
  token: string;
  config: ResolverConfig;
  resolver: ResolverCache;
  metrics: HandlerMetrics;
  /** Its Prometheus families (admin GET /metrics): the fabric's part, for joining. */
  fabric: FabricMetrics;
  /** The zones answered now: `config.zones` until `setZones` replaces them. */
  zones(): readonly string[];
  /**
   * Replaces the zones answered, at runtime: a zone the origin created is
   * answered at once, a deleted one is REFUSED and its entries dropped.
   * Throws on a name that is not a valid domain name (nothing changes then).
   */
  setZones(zones: readonly string[]): void;
  close(): Promise<void>;
}

export interface ResolverDeps {
  clock?: Clock;
  /** Replaces the upstream built from config.upstream (tests). */
  upstream?: Upstream;
  onUpstreamError?: (err: unknown, name: string) => void;
}

export async function startResolver(
  input: ResolverConfigInput,
  deps: ResolverDeps = {},
): Promise<RunningResolver> {
  const config = parseResolverConfig(input);
  const clock = deps.clock ?? new RealClock();
  const registry = new PromRegistry(config.id);
  const upstream = timedUpstream(
    registry,
    deps.upstream ?? upstreamFromUrl(config.upstream, config.upstreamTimeoutMs, config.udpPayload),
    clock,
  );
  const resolver = new ResolverCache(
    config.id,
    config,
    clock,
    upstream,
    deps.onUpstreamError,
    new LruStorage(config.maxBytes),
  );
  const { handler, metrics, setZones } = createHandler(resolver, {
    zones: config.zones,
    staleTtl: config.staleTtl,
    wire: { udpPayload: config.udpPayload, nsid: Buffer.from(config.id) },
  });
  const fabric = observeResolver(registry, resolver, metrics, clock);
  const rrl = config.rrl && new ResponseRateLimiter(clock, config.rrl);
  // RRL judges UDP answers only: TCP cannot be spoofed (RFC 7766), so a slip's TC sends clients there.
  const limited: typeof handler = rrl
    ? async (query, info) => {
        const wire = await handler(query, info);
        if (!Buffer.isBuffer(wire) || info.transport !== "udp") return wire;
        const verdict = rrl.judge(info.address, wire);
        return verdict === "send" ? wire : verdict === "slip" ? truncatedResponse(wire) : undefined;
      }
    : handler;
  const dns = await startDnsServer(config.dns, limited);
  const token = config.token ?? randomBytes(18).toString("base64url");
  let adminUrl: string | undefined;
  let closeAdmin = async () => {};
  if (config.admin) {
    const app = adminApp(resolver, token, {
      registry,
      fabric,
      inspect: (name) =>
        inspectResolver(resolver, name, config.upstream, config.maxStaleMs, clock.now()),
    });
    const { host, port } = config.admin;
    const server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, hostname: host, port }, () => resolve(s));
      s.once("error", reject);
    });
    adminUrl = `http://${host}:${(server.address() as AddressInfo).port}`;
    closeAdmin = () => new Promise<void>((resolve) => server.close(() => resolve()));
  }
  let zones: readonly string[] = config.zones;
  return {
    dnsAddr: `${dns.host}:${dns.port}`,
    adminUrl,
    token,
    config,
    resolver,
    metrics,
    fabric,
    zones: () => zones,
    setZones: (names) => {
      const next = [...new Set(names.map((n) => normaliseName(n)))];
      resolver.setZones(next);
      setZones(next);
      zones = next;
    },
    close: async () => {
      await Promise.all([dns.close(), closeAdmin()]);
    },
  };
}
