/**
 * The same topology live and simulated, per tier (issue 12 item 5), with the
 * stack's own time measured in the same samples.
 *
 * `npx tsx bench/live-vs-sim.ts [samples=10] [probeMs=10] [rounds=1]`
 *
 * Both sides ask the same way: live, `propagate measure` asks every node
 * every probeMs after each answer (edges by DNS JSON at /resolve, resolvers
 * by DNS), after a warm-up change; the simulator does the same
 * (`observe: "measure"`, infra/sim/prober.ts), one change a second like
 * measure's back-to-back samples, its first change dropped as measure's
 * warm-up is. The exact observer would time something live cannot see (the
 * first instant a node could answer new, and an edge's DoH answer to its
 * children, which its JSON answer does not share).
 *
 * The topology has WAN links: origin -80 ms- regional-1 -30 ms- edge-1/2
 * -10 ms- res-1, and res-2 80 ms from the origin (one-way delays between
 * regions, and within a metro). Live, every node has a zero-latency twin (id
 * `-z`) in the same topology, asked by the same probes after the same change:
 * its time is the stack's own (HTTP, JSON, DNS, the probes, the machine's
 * load at that moment), which the simulator does not model. Simulated: the
 * WAN nodes alone, exact. Prints per tier live, twin and simulated p50/p99,
 * live against simulated, and live against simulated + twin.
 * `test/e2e/live-vs-sim.test.ts` asserts on the same rows.
 */
import { loadavg } from "node:os";
import { measure } from "../infra/measure.ts";
import { quantile } from "../infra/report.ts";
import { simulate } from "../infra/sim/run.ts";
import { parseTopology } from "../infra/topology.ts";
import { ZONE_DEFAULTS } from "../origin/store.ts";
import { startTopology } from "../test/e2e/support.ts";

export const TIERS = ["regional", "edge", "resolver"] as const;

const fixed = (ms: number) => ({ latency: { kind: "fixed", ms } });

/** The WAN topology's nodes; `twin` makes the zero-latency copies (ids end in `-z`). */
function branch(twin: boolean) {
  const s = twin ? "-z" : "";
  const ms = (wan: number) => fixed(twin ? 0 : wan);
  return {
    edges: [
      { id: `regional-1${s}`, tier: "regional", parent: "origin", link: ms(80) },
      { id: `edge-1${s}`, parent: `regional-1${s}`, link: ms(30) },
      { id: `edge-2${s}`, parent: `regional-1${s}`, link: ms(30) },
    ],
    resolvers: [
      { id: `res-1${s}`, upstream: `edge-1${s}`, link: ms(10) },
      { id: `res-2${s}`, upstream: "origin", link: ms(80) },
    ],
  };
}

const defaults = { pollIntervalMs: 60_000 };
/** The WAN topology, as simulated. */
export const WAN = { name: "wan", seed: 5, defaults, ...branch(false) };
/** The WAN topology plus its zero-latency twin, as run live. */
export const WAN_AND_TWIN = {
  name: "wan-and-twin",
  seed: 5,
  defaults,
  edges: [...WAN.edges, ...branch(true).edges],
  resolvers: [...WAN.resolvers, ...branch(true).resolvers],
};

export interface Quantiles {
  p50: number;
  p99: number;
}

export interface TierRow {
  tier: string;
  live: Quantiles;
  /** The zero-latency twin: the stack's own time in the same samples. */
  stack: Quantiles;
  sim: Quantiles;
}

interface Times {
  nodeId: string;
  tier: string;
  timesMs: number[];
}

export interface LiveVsSim {
  rows: TierRow[];
  /** The same per node (`tier` holds the node id; `stack` is its twin's). */
  nodes: TierRow[];
  /** Every live time of the WAN nodes, and of the twins. */
  live: Times[];
  unconverged: number;
}

const q = (ts: number[], p: number) =>
  quantile(
    [...ts].sort((a, b) => a - b),
    p,
  );
const quantiles = (ts: number[]): Quantiles => ({ p50: q(ts, 0.5), p99: q(ts, 0.99) });
const ofTier = (nodes: Times[], tier: string, twin: boolean) =>
  nodes
    .filter((n) => n.tier === tier && n.nodeId.endsWith("-z") === twin)
    .flatMap((n) => n.timesMs);

/** One live run (WAN + twin, `samples` changes, probed every `probeMs`) and the simulated WAN run. */
export async function liveVsSim(samples: number, probeMs: number): Promise<LiveVsSim> {
  const t = await startTopology(WAN_AND_TWIN);
  let live: Times[];
  let unconverged = 0;
  try {
    const m = await measure({
      originUrl: t.originUrl,
      token: t.token,
      zone: "example.test",
      label: "www",
      ttl: ZONE_DEFAULTS.ttl,
      samples,
      intervalMs: probeMs,
      timeoutMs: 10_000,
    });
    live = m.nodes;
    unconverged = m.nodes.reduce((a, n) => a + (n.unconverged ?? 0), 0);
  } finally {
    await t.close();
  }
  const run = await simulate({
    topology: parseTopology(WAN),
    mode: "invalidate",
    // One more than live: the first follows the warm-up with every copy expired,
    // and is dropped as measure drops its warm-up change.
    changes: samples + 1,
    everyMs: 1_000,
    seed: 5,
    zone: ZONE_DEFAULTS,
    clientQps: 0,
    // Asked as `measure` asks the live nodes: the same quantity on both sides.
    observe: "measure",
    probeMs,
  });
  if (run.violation) throw new Error(`simulation broke ${run.violation.rule}`);
  const sim = run.nodes.map((n) => ({ ...n, timesMs: n.timesMs.slice(1) }));
  unconverged += run.nodes.reduce((a, n) => a + n.unconverged, 0);
  const rows = TIERS.map((tier) => ({
    tier,
    live: quantiles(ofTier(live, tier, false)),
    stack: quantiles(ofTier(live, tier, true)),
    sim: quantiles(ofTier(sim, tier, false)),
  }));
  const nodes = sim.map((n) => ({
    tier: n.nodeId,
    live: quantiles(live.find((x) => x.nodeId === n.nodeId)?.timesMs ?? []),
    stack: quantiles(live.find((x) => x.nodeId === `${n.nodeId}-z`)?.timesMs ?? []),
    sim: quantiles(n.timesMs),
  }));
  return { rows, nodes, live, unconverged };
}

function pct(a: number, b: number): string {
  const x = (a / b - 1) * 100;
  return `${x >= 0 ? "+" : ""}${x.toFixed(0)} %`;
}

/** A markdown table of the rows. */
export function table(rows: TierRow[]): string {
  const f = (x: number) => x.toFixed(0);
  return [
    "| tier | live p50 | live p99 | twin (stack) p50 | twin p99 | sim p50 | sim p99 | live/sim p50 | live/sim p99 | live/(sim+twin) p50 | live/(sim+twin) p99 |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    ...rows.map(
      (r) =>
        `| ${r.tier} | ${f(r.live.p50)} | ${f(r.live.p99)} | ${f(r.stack.p50)} | ${f(r.stack.p99)} | ${f(r.sim.p50)} | ${f(r.sim.p99)} | ${pct(r.live.p50, r.sim.p50)} | ${pct(r.live.p99, r.sim.p99)} | ${pct(r.live.p50, r.sim.p50 + r.stack.p50)} | ${pct(r.live.p99, r.sim.p99 + r.stack.p99)} |`,
    ),
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const samples = Number(process.argv[2] ?? 10);
  const probeMs = Number(process.argv[3] ?? 10);
  const rounds = Number(process.argv[4] ?? 1);
  for (let i = 1; i <= rounds; i++) {
    const before = loadavg()[0]!.toFixed(1);
    const r = await liveVsSim(samples, probeMs);
    const after = loadavg()[0]!.toFixed(1);
    console.log(
      `round ${i}: ${samples} samples, probe ${probeMs} ms, load average ${before} -> ${after}${r.unconverged ? `, ${r.unconverged} unconverged` : ""}`,
    );
    console.log(table(r.rows));
    console.log(table(r.nodes).replace("| tier |", "| node |"));
  }
}
