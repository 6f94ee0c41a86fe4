/**
 * Starting one node of a topology, wired into the fabric: the origin (with
 * the bus and receipts), an edge or a resolver (each with its link's delay
 * on upstream fetches, registered with the origin and following the bus and
 * the change feed). `propagate up` calls these for every node in one
 * process; `propagate node` calls one of them in a process of its own.
 */
import type { PurgeBus } from "../core/bus.ts";
import type { Clock } from "../core/clock.ts";
import { LinkDelay, type LinkModel, wrapFetch } from "../core/delay.ts";
import { parseHostPort } from "../core/flags.ts";
import { type Logger, logApplies } from "../core/log.ts";
import type { PropagationMode } from "../core/purge.ts";
import { hashSeed, type Seed } from "../core/random.ts";
import type { SyncStats } from "../core/sync.ts";
import { startEdge } from "../edge/node.ts";
import { logChanges } from "../origin/log.ts";
import { startOrigin } from "../origin/server.ts";
import { startResolver } from "../resolver/server.ts";
import { dohUpstream } from "../resolver/upstream.ts";
import { dashboardInfo } from "./dashboard-info.ts";
import { connectNode } from "./node-link.ts";
import type { EdgeSpec, ResolverSpec, Topology } from "./topology.ts";

export interface RunningNode {
  id: string;
  kind: "origin" | "edge" | "resolver";
  tier: string;
  parent?: string;
  /** Main address: HTTP URL for origin and edges, host:port for resolvers. */
  address: string;
  /** Extra addresses: the origin's DNS, a resolver's admin URL. */
  extra: Record<string, string>;
  /** The delay model of the node's link, described. */
  link: string;
  /** Bus events, feed changes, gaps and acks of an edge or resolver. */
  sync?: () => SyncStats;
  /** An edge's or resolver's own token (issued by the origin): its /purge and admin, its acks. */
  token?: string;
  close(): Promise<void>;
}

export interface NodeContext {
  topology: Topology;
  clock: Clock;
  bus: PurgeBus | undefined;
  /** The run's start: partition windows of every link count from it. */
  startMs: number;
  log: (message: string) => void;
  /** Structured logs: each node logs the changes it applies under its own id. */
  logger?: Logger;
  /** Replaces fixed ports with 0 (tests). */
  anyPort?: boolean;
}

/** Where the origin is, once it runs; needed by every other node. */
export interface OriginAddress {
  url: string;
  /**
   * Without `tokenFor`: this node's own token (issued by the origin), for its
   * registration, acks and its own purge/admin endpoint.
   */
  token: string;
  /** In the origin's process: issues each node its own token. */
  tokenFor?: (id: string) => string;
}

/** The node's own credential: one issued for it, or the one it was given. */
function ownToken(ctx: JoinContext, id: string): string {
  return ctx.origin.tokenFor?.(id) ?? ctx.origin.token;
}

export function modeOf(t: Topology): (zone: string) => PropagationMode {
  return (zone) => t.zones[zone]?.mode ?? t.defaults.mode;
}

function hostPort(ctx: NodeContext, value: string) {
  const { host, port } = parseHostPort(value, "address");
  return { host, port: ctx.anyPort ? 0 : port };
}

function linkOf(ctx: NodeContext, id: string, model: LinkModel | undefined): LinkDelay {
  const t = ctx.topology;
  return new LinkDelay(model ?? t.defaults.link, hashSeed(t.seed as Seed, id), ctx.clock, {
    startMs: ctx.startMs,
  });
}

export async function startOriginNode(
  ctx: NodeContext,
  dataDir: string,
): Promise<{
  node: RunningNode;
  origin: OriginAddress;
  /** The operators' write token (zones and purges). */
  writeToken: string;
  zones: () => string[];
}> {
  const t = ctx.topology;
  const origin = await startOrigin(
    {
      http: hostPort(ctx, t.origin.http),
      dns: hostPort(ctx, t.origin.dns),
      dataDir,
      sample: t.origin.sample,
      follow: t.origin.follow,
      nsid: t.origin.id,
      ...(t.origin.token !== undefined && { token: t.origin.token }),
      ...(t.origin.tsigKeys !== undefined && { tsigKeys: t.origin.tsigKeys }),
      ...(t.origin.allowTransfer && { allowTransfer: { "*": t.origin.allowTransfer } }),
      ...(t.origin.catalog !== undefined && { catalog: t.origin.catalog }),
      secondaries: t.secondaries,
    },
    {
      clock: ctx.clock,
      log: ctx.log,
      ...(ctx.bus && { bus: ctx.bus }),
      modeOf: modeOf(t),
      // NOTIFYs to a secondary pass through its link, seeded like every other link.
      linkOf: (s) => linkOf(ctx, s.id, t.secondaries.find((x) => x.id === s.id)?.link),
      dashboard: dashboardInfo(t, ctx.clock),
    },
  );
  if (ctx.logger)
    logChanges(origin.store, origin.receipts, ctx.logger.child({ node: t.origin.id }));
  return {
    node: {
      id: t.origin.id,
      kind: "origin",
      tier: "origin",
      address: origin.httpUrl,
      extra: { dns: origin.dnsAddr },
      link: "-",
      close: origin.close,
    },
    origin: {
      url: origin.httpUrl,
      token: origin.nodeToken,
      tokenFor: origin.issueNodeToken,
    },
    writeToken: origin.token,
    zones: () => origin.store.zones().map((z) => z.zone.name),
  };
}

/** What an edge or resolver needs to join: the origin, and its parent's address. */
interface JoinContext extends NodeContext {
  origin: OriginAddress;
  parentUrl: string;
}

function fabric(ctx: JoinContext, id: string, link: LinkDelay, token: string) {
  const t = ctx.topology;
  return {
    originUrl: ctx.origin.url,
    token,
    clock: ctx.clock,
    ...(ctx.bus && { bus: ctx.bus }),
    modeOf: modeOf(t),
    pollIntervalMs: t.defaults.pollIntervalMs,
    pollJitter: t.defaults.pollJitter,
    log: ctx.log,
    link,
    seed: hashSeed(t.seed as Seed, id, "poll"),
  };
}

export async function startEdgeNode(ctx: JoinContext, e: EdgeSpec): Promise<RunningNode> {
  const link = linkOf(ctx, e.id, e.link);
  const token = ownToken(ctx, e.id);
  const { host, port } = hostPort(ctx, e.http);
  const edge = await startEdge({
    id: e.id,
    parent: ctx.parentUrl,
    origin: ctx.origin.url,
    host,
    port,
    token,
    ...(e.maxBytes !== undefined && { maxBytes: e.maxBytes }),
    fetch: wrapFetch((req) => fetch(req), link, ctx.clock) as (req: Request) => Promise<Response>,
  });
  if (ctx.logger) logApplies(edge.edge, ctx.logger.child({ node: e.id }));
  try {
    const joined = await connectNode({
      ...fabric(ctx, e.id, link, token),
      nodeId: e.id,
      tier: e.tier,
      address: edge.url,
      parent: e.parent,
      target: edge.edge,
      metrics: edge.metrics.fabric,
    });
    return {
      id: e.id,
      kind: "edge",
      tier: e.tier,
      parent: e.parent,
      address: edge.url,
      extra: {},
      link: link.describe(),
      sync: () => joined.sync.stats(),
      token,
      close: async () => {
        await joined.close();
        await edge.close();
      },
    };
  } catch (err) {
    await edge.close();
    throw err;
  }
}

export async function startResolverNode(
  ctx: JoinContext,
  r: ResolverSpec,
  zones: string[],
): Promise<RunningNode> {
  const link = linkOf(ctx, r.id, r.link);
  const token = ownToken(ctx, r.id);
  // DoH to its edge or to the origin itself, through its link: the link delays
  // every upstream fetch (infra/README.md, "link"), and answers carry X-Serial,
  // so the version floor and read-your-writes work on this hop too. (Plain DNS
  // to the origin, as before, crossed no modelled link and carried no serial:
  // a resolver under the origin saw changes before its 80 ms link allowed.)
  const upstream = ctx.parentUrl;
  const res = await startResolver(
    {
      id: r.id,
      dns: hostPort(ctx, r.dns),
      admin: hostPort(ctx, r.admin),
      upstream,
      token,
      zones: zones.length > 0 ? zones : ["example.test"],
      ...(r.maxBytes !== undefined && { maxBytes: r.maxBytes }),
    },
    {
      clock: ctx.clock,
      upstream: dohUpstream(upstream, {
        timeoutMs: 5_000,
        fetch: wrapFetch(fetch, link, ctx.clock) as typeof fetch,
      }),
    },
  );
  if (ctx.logger) logApplies(res.resolver, ctx.logger.child({ node: r.id }));
  try {
    const joined = await connectNode({
      ...fabric(ctx, r.id, link, token),
      nodeId: r.id,
      tier: "resolver",
      address: res.dnsAddr,
      parent: r.upstream,
      target: res.resolver,
      metrics: res.fabric,
      // A zone created (or deleted) at the origin is served (or refused) from the next poll on.
      onZones: (zones) => {
        const key = (zs: readonly string[]) => [...zs].sort().join();
        if (key(zones) !== key(res.zones())) res.setZones(zones);
      },
    });
    return {
      id: r.id,
      kind: "resolver",
      tier: "resolver",
      parent: r.upstream,
      address: res.dnsAddr,
      extra: res.adminUrl ? { admin: res.adminUrl } : {},
      link: link.describe(),
      sync: () => joined.sync.stats(),
      token,
      close: async () => {
        await joined.close();
        await res.close();
      },
    };
  } catch (err) {
    await res.close();
    throw err;
  }
}
