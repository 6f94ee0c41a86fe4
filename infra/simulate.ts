/**
 * `propagate simulate`: runs a topology's edges and resolvers (the real
 * engines) under virtual time with modelled delays and synthetic clients,
 * and prints time-to-fresh per node beside the prediction (infra/report.ts).
 */
import { writeFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { flagHelp, parseFlags, UsageError } from "../core/flags.ts";
import type { PropagationMode } from "../core/purge.ts";
import { ZONE_DEFAULTS } from "../origin/store.ts";
import { pooledCurve } from "./predict.ts";
import {
  formatMs,
  printReportJson,
  progressBar,
  type Report,
  renderTable,
  type Summary,
  summarise,
  toJson,
} from "./report.ts";
import { renderSvg } from "./report-svg.ts";
import { fuzz, fuzzLine } from "./sim/fuzz.ts";
import { generateTopology } from "./sim/generate.ts";
import { boundsRecord, type SimResult } from "./sim/run.ts";
import { defaultWorkers, MIN_NODES_PER_WORKER, simulateSharded } from "./sim/shards.ts";
import { loadTopology, MODES, type Topology } from "./topology.ts";

/** Fuzz cases per worker process below which one thread is as fast or faster (bench/results/simulate.md). */
const FUZZ_CASES_PER_WORKER = 2_000;

const DEFAULT_TOPOLOGY = new URL("./topologies/default.json", import.meta.url).pathname;

const FLAGS = {
  topology: { type: "string", help: `topology file (default ${DEFAULT_TOPOLOGY})` },
  mode: { type: "string", help: "ttl | invalidate | soft | push | all (default: the topology's)" },
  changes: { type: "string", help: "changes to commit and follow per mode (default 5)" },
  seed: { type: "string", help: "run seed (default: the topology's); same seed, same result" },
  edges: {
    type: "string",
    help: "generate M edges (sqrt(M) regional) from the topology's defaults",
  },
  resolvers: { type: "string", help: "generate N resolvers spread over the leaf edges" },
  ttl: { type: "string", help: `RRset TTL in seconds (default 60)` },
  swr: {
    type: "string",
    help: `stale-while-revalidate seconds (default ${ZONE_DEFAULTS.staleWhileRevalidate})`,
  },
  every: {
    type: "string",
    help: "commit a change every S seconds (default: at a random phase of the TTL once all are fresh)",
  },
  "probe-ms": {
    type: "string",
    help: "add a client per node asking every MS until fresh (default none: times are exact)",
  },
  "retry-ms": {
    type: "string",
    help: "after a failed or stale answer the observer asks again after MS (default 100)",
  },
  observe: {
    type: "string",
    help: "exact (default: the first instant a node answers new) or measure (asked as `propagate measure` asks, every --probe-ms, default 20, after each answer: to compare with a live run)",
  },
  qps: { type: "string", help: "client queries per second per resolver, Poisson (default 0.05)" },
  "slow-path": {
    type: "boolean",
    help: "fire every poll and client query through the engines, hops as Web Request/Response (same result, slower; to check the fast path)",
  },
  fuzz: {
    type: "string",
    help: "run N random cases (topology, mode, faults) from seed --seed (default 1); a violation names the seed that replays it",
  },
  workers: {
    type: "string",
    help: `worker processes, each running whole subtrees, or fuzz cases (same result at any count; default: one per core, from ${MIN_NODES_PER_WORKER} nodes or ${FUZZ_CASES_PER_WORKER} fuzz cases per worker)`,
  },
  json: { type: "boolean", help: "print the report as JSON instead of a table" },
  svg: { type: "string", help: "write the CDF chart (and origin load) to FILE" },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const;

function num(value: string | undefined, flag: string, fallback: number, min = 0): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min) {
    throw new UsageError(`--${flag} expects a number >= ${min}, got "${value}"`);
  }
  return n;
}

function modes(value: string | undefined, t: Topology): PropagationMode[] {
  if (value === undefined) return [t.defaults.mode];
  if (value === "all") return [...MODES];
  const m = MODES.find((x) => x === value);
  if (!m) throw new UsageError(`--mode is one of ${MODES.join(", ")} or all, got "${value}"`);
  return [m];
}

/** A simulation result as a report series. */
export function seriesOf(r: SimResult): Report["series"][number] {
  return {
    label: r.mode,
    nodes: r.nodes,
    boundsMs: boundsRecord(r.predicted),
    predicted: pooledCurve(r.predicted),
    originLoad: r.originLoad,
  };
}

export async function main(argv: string[]): Promise<void> {
  const { values: v } = parseFlags(argv, FLAGS, "simulate");
  if (v.help) {
    console.log(flagHelp(FLAGS, "simulate"));
    return;
  }
  if (v.fuzz !== undefined) {
    const first = v.seed === undefined ? 1 : Number(v.seed);
    if (!Number.isInteger(first))
      throw new UsageError(`--fuzz takes an integer --seed, got "${v.seed}"`);
    const n = num(v.fuzz, "fuzz", 1, 1);
    // Cases are independent but small, one process's collector already uses
    // the other core, and a worker process starts and sends each case's
    // result back: two workers took 1,000 cases from 9.3-10.2 to 10.9-11.2 s,
    // 3,000 from 25.3-32.5 to 24.9-28.9 s, 6,000 from 52.9 to 37.6 s
    // (bench/results/simulate.md, "Fuzz cases over worker processes").
    const workers =
      v.workers === undefined
        ? Math.max(1, Math.min(availableParallelism(), Math.floor(n / FUZZ_CASES_PER_WORKER)))
        : Math.floor(num(v.workers, "workers", 1, 1));
    const outcomes = await fuzz(first, n, (o) => console.log(fuzzLine(o)), workers);
    const broken = outcomes.filter((o) => o.result.violation);
    console.log(`${outcomes.length} cases, ${broken.length} with a violation`);
    if (broken.length > 0) process.exitCode = 1;
    return;
  }
  let topology = await loadTopology(v.topology ?? DEFAULT_TOPOLOGY);
  if (v.edges !== undefined || v.resolvers !== undefined) {
    topology = generateTopology(
      topology,
      num(v.edges, "edges", topology.edges.length, 1),
      num(v.resolvers, "resolvers", topology.resolvers.length),
    );
  }
  const changes = num(v.changes, "changes", 5, 1);
  const zone = {
    ...ZONE_DEFAULTS,
    ttl: num(v.ttl, "ttl", 60, 1),
    staleWhileRevalidate: num(v.swr, "swr", ZONE_DEFAULTS.staleWhileRevalidate),
  };
  const nodes = topology.edges.length + topology.resolvers.length;
  const workers =
    v.workers === undefined ? defaultWorkers(nodes) : Math.floor(num(v.workers, "workers", 1, 1));
  const results: SimResult[] = [];
  for (const mode of modes(v.mode, topology)) {
    const bar = progressBar(`simulating ${mode}`, changes);
    results.push(
      await simulateSharded(
        {
          topology,
          mode,
          changes,
          seed: v.seed ?? topology.seed,
          zone,
          ...(v["probe-ms"] !== undefined ? { probeMs: num(v["probe-ms"], "probe-ms", 0, 1) } : {}),
          retryMs: num(v["retry-ms"], "retry-ms", 100, 1),
          ...(v.observe !== undefined ? { observe: observeFlag(v.observe) } : {}),
          ...(v.every !== undefined ? { everyMs: num(v.every, "every", 0, 0.001) * 1000 } : {}),
          clientQps: num(v.qps, "qps", 0.05),
          ...(v["slow-path"]
            ? { lazyPolls: false, lazyClients: false, lightHops: false, settleInTurn: false }
            : {}),
          onProgress: (done) => bar.update(done),
        },
        workers,
      ),
    );
    bar.finish();
  }
  const series = results.map(seriesOf);
  const report: Report = {
    title: `${topology.name}: ${nodes} nodes, ${changes} changes per mode, TTL ${zone.ttl} s (simulated)`,
    series,
    notes: results.map(
      (r) =>
        `${r.mode}: ${r.events} events in ${(r.wallMs / 1000).toFixed(1)} s wall${r.workers > 1 ? ` on ${r.workers} worker processes` : ""} (${Math.round(r.events / (r.wallMs / 1000))} events/s, ${r.pollsComputed} of them change-feed polls computed, not fired; ${r.hitsComputed} fresh hits answered from the held copy, ${r.arrivalsHeld} of them client questions counted, not fired; ${r.lightHops} edge answers carried without a Web Response, ${r.answersReused} origin reads answered from a held answer; ${Math.round((nodes * r.simulatedMs) / r.wallMs)} simulated node-seconds per wall second), ${(r.simulatedMs / 1000).toFixed(0)} s simulated; ${phasesNote(r)}${r.failures > 0 ? `, ${r.failures} queries failed (last: ${r.lastFailure})` : ""}`,
    ),
  };
  if (v.svg) await writeFile(v.svg, renderSvg(report));
  const byPopulation = topology.populations.length > 0;
  if (v.json) {
    // The series' bounds by node, made once (101,000 ids at 100,000 resolvers).
    const populations = Object.fromEntries(
      results.map((r, i) => [r.mode, populationRows(r, series[i]!.boundsMs!)]),
    );
    const json = toJson(report) as object;
    printReportJson(byPopulation ? { ...json, populations } : json);
  } else {
    console.log(renderTable(report));
    if (byPopulation) for (const r of results) console.log(`\n${populationTable(r)}`);
  }
  const broken = results.filter((r) => r.violation);
  for (const r of broken) console.error(counterexample(r, String(v.seed ?? topology.seed), argv));
  if (broken.length > 0) process.exitCode = 1;
}

/** Where the wall time went (run.ts Phases; of the slowest shard, part by part). */
export function phasesNote(r: SimResult): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const p = r.phasesMs;
  const parts = `building ${s(p.build)}, warm-up ${s(p.warmup)}, changes ${s(p.changes)}, stopping ${s(p.stop)}`;
  const rest = r.wallMs - (p.build + p.warmup + p.changes + p.stop);
  return r.workers > 1 ? `${parts}, workers and merge ${s(Math.max(0, rest))}` : parts;
}

/** The broken rule, where and when, and the command that replays it. */
export function counterexample(r: SimResult, seed: string, argv: string[]): string {
  const x = r.violation!;
  const replay = ["propagate simulate", ...withFlag(argv, "mode", r.mode), "--seed", seed];
  return [
    `VIOLATION ${x.rule} (${r.mode}, seed ${seed}): node ${x.nodeId} at ${x.atMs.toFixed(3)} ms: ${x.detail}`,
    `replay: ${replay.join(" ")}`,
  ].join("\n");
}

/** argv without --seed, with --flag set to value. */
function withFlag(argv: string[], flag: string, value: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = a.replace(/^--/, "").split("=")[0]!;
    if (a.startsWith("--") && (name === "seed" || name === flag)) {
      if (!a.includes("=")) i++;
      continue;
    }
    out.push(a);
  }
  return [...out, `--${flag}`, value];
}

/** Summaries per resolver population (edges and resolvers without one apart). */
export function populationRows(r: SimResult, bounds = boundsRecord(r.predicted)): Summary[] {
  const groups = new Map<string, SimResult["nodes"]>();
  for (const n of r.nodes) {
    const key = n.kind === "edge" ? "edges" : (n.population ?? "resolvers");
    const g = groups.get(key);
    if (g) g.push(n);
    else groups.set(key, [n]);
  }
  return [...groups].map(([key, ns]) => summarise(`${key} (${ns.length})`, ns, bounds));
}

/** How each population shapes the tail: p50, p99, max, stale answers, per population. */
export function populationTable(r: SimResult): string {
  const head = ["population", "nodes", "p50", "p99", "max", "stale", "unconv", "bound", "within"];
  const body = populationRows(r).map((s) => [
    s.label,
    String(s.nodes),
    formatMs(s.p50),
    formatMs(s.p99),
    formatMs(s.max),
    String(s.staleSeen),
    String(s.unconverged),
    formatMs(s.boundMs),
    s.exceeded === 0 && s.unconverged === 0 ? "yes" : "NO",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join("  ");
  return [
    `${r.mode}: per population`,
    line(head),
    line(widths.map((w) => "-".repeat(w))),
    ...body.map(line),
  ].join("\n");
}

function observeFlag(v: string): "exact" | "measure" {
  if (v === "exact" || v === "measure") return v;
  throw new UsageError(`--observe takes exact or measure, got "${v}"`);
}
