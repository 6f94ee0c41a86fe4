/**
 * `propagate up`: starts every node of a topology on loopback, wires each one
 * to the bus and the origin's receipts, prints a table of nodes, and stops
 * cleanly on Ctrl-C. With the memory bus all nodes share this process; with
 * `--processes` (Redis bus) every node runs as its own `propagate node`.
 */
import type { PurgeBus } from "../core/bus.ts";
import { type Clock, RealClock } from "../core/clock.ts";
import { LinkDelay, type LinkModel, wrapFetch } from "../core/delay.ts";
import type { PropagationMode } from "../core/purge.ts";
import { hashSeed, type Seed } from "../core/random.ts";
import { startEdge } from "../edge/node.ts";
import { startOrigin } from "../origin/server.ts";
import { startResolver } from "../resolver/server.ts";
import { dohUpstream } from "../resolver/upstream.ts";
import { createBus } from "./bus.ts";
import { flagHelp, parseFlags, parseHostPort, printReady, UsageError } from "./flags.ts";
import { connectNode, type NodeLink } from "./node-link.ts";
import { edgesInStartOrder, loadTopology, type Topology } from "./topology.ts";

export const DEFAULT_TOPOLOGY = new URL("./topologies/default.json", import.meta.url).pathname;

export interface RunningNode {
  id: string;
  kind: "origin" | "edge" | "resolver";
  tier: string;
  parent?: string;
  /** Main address: HTTP URL for origin and edges, host:port for resolvers. */
  address: string;
  /** Extra addresses: the origin's DNS, a resolver's admin URL. */
  extra: Record<string, string>;
  link: string;
  close(): Promise<void>;
}

export interface RunningTopology {
  topology: Topology;
  nodes: RunningNode[];
  originUrl: string;
  token: string;
  bus: PurgeBus | undefined;
  close(): Promise<void>;
}

export interface UpOptions {
  clock?: Clock;
  log?: (message: string) => void;
  /** Overrides the topology's data dir (tests). */
  dataDir?: string;
  /** Overrides every fixed port with 0 (tests). */
  anyPort?: boolean;
}

/** Starts a whole topology in this process. */
export async function up(t: Topology, opts: UpOptions = {}): Promise<RunningTopology> {
  const clock = opts.clock ?? new RealClock();
  const log = opts.log ?? ((m: string) => console.error(m));
  const port = (hp: string) => {
    const { host, port } = parseHostPort(hp, "address");
    return { host, port: opts.anyPort ? 0 : port };
  };
  const modeOf = (zone: string): PropagationMode => t.zones[zone]?.mode ?? t.defaults.mode;
  // One run start for every link, so partition windows line up across nodes.
  const startMs = clock.now();
  const linkOf = (id: string, model: LinkModel | undefined) =>
    new LinkDelay(model ?? t.defaults.link, hashSeed(t.seed as Seed, id), clock, { startMs });

  const bus = await createBus(t.bus, clock);
  const nodes: RunningNode[] = [];
  const links: NodeLink[] = [];
  const closeAll = async () => {
    for (const l of links.reverse()) await l.close();
    for (const n of nodes.reverse()) await n.close();
    await bus?.close();
  };
  try {
    const origin = await startOrigin(
      {
        http: port(t.origin.http),
        dns: port(t.origin.dns),
        dataDir: opts.dataDir ?? t.origin.data,
        sample: t.origin.sample,
        nsid: t.origin.id,
        ...(t.origin.token !== undefined && { token: t.origin.token }),
      },
      { clock, log, ...(bus && { bus }), modeOf },
    );
    nodes.push({
      id: t.origin.id,
      kind: "origin",
      tier: "origin",
      address: origin.httpUrl,
      extra: { dns: origin.dnsAddr },
      link: "-",
      close: origin.close,
    });
    const urls = new Map([[t.origin.id, origin.httpUrl]]);
    const common = {
      originUrl: origin.httpUrl,
      token: origin.token,
      clock,
      ...(bus && { bus }),
      modeOf,
      pollIntervalMs: t.defaults.pollIntervalMs,
      pollJitter: t.defaults.pollJitter,
      log,
    };

    for (const e of edgesInStartOrder(t)) {
      const link = linkOf(e.id, e.link);
      const { host, port: p } = port(e.http);
      const edge = await startEdge({
        id: e.id,
        parent: urls.get(e.parent)!,
        origin: origin.httpUrl,
        host,
        port: p,
        token: origin.token,
        ...(e.maxBytes !== undefined && { maxBytes: e.maxBytes }),
        fetch: wrapFetch((req) => fetch(req), link, clock) as (req: Request) => Promise<Response>,
      });
      urls.set(e.id, edge.url);
      nodes.push({
        id: e.id,
        kind: "edge",
        tier: e.tier,
        parent: e.parent,
        address: edge.url,
        extra: {},
        link: link.describe(),
        close: edge.close,
      });
      links.push(
        await connectNode({
          ...common,
          nodeId: e.id,
          tier: e.tier,
          address: edge.url,
          parent: e.parent,
          target: edge.edge,
          link,
          seed: hashSeed(t.seed as Seed, e.id, "poll"),
        }),
      );
    }

    const zones = origin.store.zones().map((z) => z.zone.name);
    for (const r of t.resolvers) {
      const link = linkOf(r.id, r.link);
      const upstreamUrl =
        r.upstream === t.origin.id ? `dns://${origin.dnsAddr}` : urls.get(r.upstream)!;
      const res = await startResolver(
        {
          id: r.id,
          dns: port(r.dns),
          admin: port(r.admin),
          upstream: upstreamUrl,
          token: origin.token,
          zones: zones.length > 0 ? zones : ["example.test"],
          ...(r.maxBytes !== undefined && { maxBytes: r.maxBytes }),
        },
        upstreamUrl.startsWith("http")
          ? {
              clock,
              upstream: dohUpstream(upstreamUrl, {
                timeoutMs: 5_000,
                fetch: wrapFetch(fetch, link, clock) as typeof fetch,
              }),
            }
          : { clock },
      );
      nodes.push({
        id: r.id,
        kind: "resolver",
        tier: "resolver",
        parent: r.upstream,
        address: res.dnsAddr,
        extra: res.adminUrl ? { admin: res.adminUrl } : {},
        link: link.describe(),
        close: res.close,
      });
      links.push(
        await connectNode({
          ...common,
          nodeId: r.id,
          tier: "resolver",
          address: res.dnsAddr,
          parent: r.upstream,
          target: res.resolver,
          link,
          seed: hashSeed(t.seed as Seed, r.id, "poll"),
        }),
      );
    }
    return {
      topology: t,
      nodes,
      originUrl: origin.httpUrl,
      token: origin.token,
      bus,
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}

/** The table `propagate up` prints. */
export function nodeTable(nodes: RunningNode[]): string {
  const rows = nodes.map((n) => [
    n.id,
    n.tier,
    n.parent ?? "-",
    [n.address, ...Object.entries(n.extra).map(([k, v]) => `${k} ${v}`)].join("  "),
    n.link,
  ]);
  const head = ["NODE", "TIER", "PARENT", "ADDRESS", "LINK (delay model)"];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join("  ")
      .trimEnd();
  return [line(head), ...rows.map(line)].join("\n");
}

const FLAGS = {
  topology: { type: "string", help: "topology file (default infra/topologies/default.json)" },
  bus: { type: "string", help: 'override the bus: "memory", "off" or redis://host:port' },
  data: { type: "string", help: "override the origin's data directory" },
  help: { type: "boolean", help: "show this help" },
} as const;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, FLAGS, "up");
  if (values.help) {
    console.log(flagHelp(FLAGS, "up"));
    return;
  }
  const t = await loadTopology(values.topology ?? DEFAULT_TOPOLOGY);
  if (values.bus) t.bus = values.bus;
  if (t.bus !== "memory" && t.bus !== "off" && !/^rediss?:\/\//.test(t.bus)) {
    throw new UsageError(`--bus must be "memory", "off" or a redis:// URL, got "${t.bus}"`);
  }
  const running = await up(t, values.data ? { dataDir: values.data } : {});
  console.log(
    `topology "${t.name}": ${running.nodes.length} nodes, bus ${t.bus}, mode ${t.defaults.mode}\n`,
  );
  console.log(nodeTable(running.nodes));
  console.log(`\nwrite token: ${running.token}`);
  const res = running.nodes.find((n) => n.kind === "resolver");
  const edge =
    running.nodes.find((n) => n.kind === "edge" && n.tier === "edge") ??
    running.nodes.find((n) => n.kind === "edge");
  if (res) {
    const [h, p] = [
      res.address.slice(0, res.address.lastIndexOf(":")),
      res.address.slice(res.address.lastIndexOf(":") + 1),
    ];
    console.log(`try:   dig @${h} -p ${p} www.example.test`);
  }
  if (edge) console.log(`       curl -i '${edge.address}/resolve?name=www.example.test&type=A'`);
  printReady({
    origin: running.originUrl,
    token: running.token,
    nodes: String(running.nodes.length),
  });
  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  console.error("stopping...");
  await running.close();
}
