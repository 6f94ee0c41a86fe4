/**
 * `propagate up`: starts every node of a topology on loopback, wires each one
 * to the bus and the origin's receipts, prints a table of nodes, and stops
 * cleanly on Ctrl-C. By default all nodes share this process; with
 * `--processes` (Redis bus, or none) every node runs as its own `propagate
 * node`, as it would in production.
 */

import type { PurgeBus } from "../core/bus.ts";
import { type Clock, RealClock } from "../core/clock.ts";
import {
  flagHelp,
  LOG_LEVEL_FLAG,
  logging,
  parseFlags,
  printReady,
  serveUntilSignal,
  UsageError,
} from "../core/flags.ts";
import type { Logger } from "../core/log.ts";
import { createBus } from "./bus.ts";
import {
  type NodeContext,
  type RunningNode,
  startEdgeNode,
  startOriginNode,
  startResolverNode,
} from "./nodes.ts";
import { spawnNodes } from "./processes.ts";
import { writeScrapeConfig } from "./prometheus.ts";
import { edgesInStartOrder, loadTopology, type Topology } from "./topology.ts";

export type { RunningNode } from "./nodes.ts";

export const DEFAULT_TOPOLOGY = new URL("./topologies/default.json", import.meta.url).pathname;

export interface RunningTopology {
  topology: Topology;
  nodes: RunningNode[];
  originUrl: string;
  /** The write token (zones, purges). */
  token: string;
  /** The nodes' token: registry, acks, and every edge's and resolver's own purge and admin. */
  nodeToken: string;
  bus: PurgeBus | undefined;
  close(): Promise<void>;
}

export interface UpOptions {
  clock?: Clock;
  log?: (message: string) => void;
  /** Structured logs of every node (core/log.ts). */
  logger?: Logger;
  /** Overrides the topology's data dir (tests). */
  dataDir?: string;
  /** Overrides every fixed port with 0 (tests). */
  anyPort?: boolean;
}

/** Starts a whole topology in this process. */
export async function up(t: Topology, opts: UpOptions = {}): Promise<RunningTopology> {
  const clock = opts.clock ?? new RealClock();
  const log = opts.log ?? ((m: string) => console.error(m));
  const bus = await createBus(t.bus, clock, log);
  const ctx: NodeContext = {
    topology: t,
    clock,
    bus,
    startMs: clock.now(),
    log,
    ...(opts.logger && { logger: opts.logger }),
    ...(opts.anyPort && { anyPort: true }),
  };
  const nodes: RunningNode[] = [];
  const close = async () => {
    for (const n of nodes.reverse()) await n.close();
    await bus?.close();
  };
  try {
    const started = await startOriginNode(ctx, opts.dataDir ?? t.origin.data);
    nodes.push(started.node);
    const { origin } = started;
    const urls = new Map([[t.origin.id, origin.url]]);
    for (const e of edgesInStartOrder(t)) {
      const node = await startEdgeNode({ ...ctx, origin, parentUrl: urls.get(e.parent)! }, e);
      urls.set(e.id, node.address);
      nodes.push(node);
    }
    for (const r of t.resolvers) {
      const parentUrl = urls.get(r.upstream)!;
      nodes.push(await startResolverNode({ ...ctx, origin, parentUrl }, r, started.zones()));
    }
    return {
      topology: t,
      nodes,
      originUrl: origin.url,
      token: started.writeToken,
      nodeToken: origin.token,
      bus,
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** The table `propagate up` prints. */
export function nodeTable(
  nodes: Pick<RunningNode, "id" | "tier" | "parent" | "address" | "extra" | "link">[],
): string {
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

/**
 * Tells a newcomer what to try against the topology just started; `measure`
 * is the exact command for this origin and data dir (where its write token is).
 */
export function tryLines(
  nodes: Pick<RunningNode, "kind" | "tier" | "address">[],
  measure?: { originUrl: string; dataDir: string },
): string[] {
  const out: string[] = [];
  const res = nodes.find((n) => n.kind === "resolver");
  const edge =
    nodes.find((n) => n.kind === "edge" && n.tier === "edge") ??
    nodes.find((n) => n.kind === "edge");
  if (res) {
    const i = res.address.lastIndexOf(":");
    out.push(
      `try:   dig @${res.address.slice(0, i)} -p ${res.address.slice(i + 1)} www.example.test`,
    );
  }
  if (edge) out.push(`       curl -i '${edge.address}/resolve?name=www.example.test&type=A'`);
  out.push(
    measure
      ? `       npx propagate measure --origin ${measure.originUrl} --data ${measure.dataDir}`
      : "       npx propagate measure",
  );
  return out;
}

const FLAGS = {
  topology: { type: "string", help: "topology file (default infra/topologies/default.json)" },
  bus: { type: "string", help: 'override the bus: "memory", "off" or redis://host:port' },
  data: { type: "string", help: "override the origin's data directory" },
  processes: {
    type: "boolean",
    help: "run every node as its own process (needs a Redis bus or none)",
  },
  prometheus: { type: "string", help: "write a Prometheus scrape config for every node to FILE" },
  "log-level": LOG_LEVEL_FLAG,
  help: { type: "boolean", help: "show this help" },
} as const;

export async function main(argv: string[]): Promise<void> {
  const { values } = parseFlags(argv, FLAGS, "up");
  if (values.help) {
    console.log(flagHelp(FLAGS, "up"));
    return;
  }
  const file = values.topology ?? DEFAULT_TOPOLOGY;
  const t = await loadTopology(file);
  if (values.bus) t.bus = values.bus;
  if (t.bus !== "memory" && t.bus !== "off" && !/^rediss?(\+[a-z]+)?:\/\//.test(t.bus)) {
    throw new UsageError(`--bus must be "memory", "off" or a redis:// URL, got "${t.bus}"`);
  }
  if (values.processes && t.bus === "memory") {
    throw new UsageError(
      '--processes needs a bus that processes share: --bus redis://HOST:PORT (or "off")',
    );
  }
  // `propagate node` children read the level from the environment.
  if (values["log-level"]) process.env.PROPAGATE_LOG_LEVEL = values["log-level"];
  const running = values.processes
    ? await spawnNodes(file, t, values.data, (nodes) => {
        // A supervised child was restarted: the table again, with its new pid.
        console.log(`
${nodeTable(nodes)}`);
      })
    : await up(t, {
        ...(values.data && { dataDir: values.data }),
        ...logging(values["log-level"], "up"),
      });
  const where = values.processes ? "one process per node" : "one process";
  console.log(
    `topology "${t.name}": ${running.nodes.length} nodes, bus ${t.bus}, mode ${t.defaults.mode}, ${where}\n`,
  );
  console.log(nodeTable(running.nodes));
  if (values.prometheus) {
    await writeScrapeConfig(values.prometheus, running.nodes);
    console.log(`\nprometheus scrape config: ${values.prometheus}`);
  }
  console.log(`\nwrite token: ${running.token}`);
  const dataDir = values.data ?? t.origin.data;
  for (const l of tryLines(running.nodes, { originUrl: running.originUrl, dataDir }))
    console.log(l);
  printReady({
    origin: running.originUrl,
    token: running.token,
    nodes: String(running.nodes.length),
  });
  await serveUntilSignal("propagate up", running.close);
}
