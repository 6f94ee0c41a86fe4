/**
 * `propagate simulate --fuzz N`: N seeds, each a random topology, mode and
 * fault schedule (TigerBeetle's VOPR is the model). One seed decides the
 * whole case, so `--fuzz 1 --seed S` replays case S exactly. Every run is
 * watched by the checkers (checker.ts); a case with faults the predictor
 * does not model (loss on fetches, partitions, origin restarts, bus
 * outages, node restarts) is held to convergence once the faults heal
 * instead of the bound.
 */
import type { LinkModelInput } from "../../core/delay.ts";
import type { PropagationMode } from "../../core/purge.ts";
import { hashSeed, Random } from "../../core/random.ts";
import type { ZoneConfig } from "../../origin/store.ts";
import { MODES, type Population, parseTopology, type Topology } from "../topology.ts";
import type { Window } from "./origin.ts";
import type { NodeRestart } from "./restart.ts";
import { type SimOptions, type SimResult, simulate } from "./run.ts";
import { prepareWorkers, SimWorker } from "./shards.ts";
import type { Faults } from "./world.ts";

export interface FuzzCase {
  seed: number;
  topology: Topology;
  mode: PropagationMode;
  zone: ZoneConfig;
  clientQps: number;
  changes: number;
  faults: Faults;
  /** Whether any fault is scheduled (then the bound is not checked). */
  faulty: boolean;
  /** One line: what the case is. */
  summary: string;
}

/** The case seed `seed` stands for. */
export function fuzzCase(seed: number): FuzzCase {
  const r = new Random(hashSeed(seed, "fuzz"));
  const int = (min: number, max: number) => Math.floor(r.uniform(min, max + 1));
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;
  const ttl = int(5, 60);
  const changes = int(2, 4);
  // Faults fall within the first few TTLs, where the changes are.
  const horizonMs = (changes + 2) * ttl * 1000;
  const window = (): Window => {
    const startMs = r.uniform(0, horizonMs);
    return { startMs, endMs: startMs + r.uniform(200, 15_000) };
  };
  let faulty = false;
  const link = (): LinkModelInput => {
    const minMs = r.uniform(0.5, 10);
    const latency = r.bernoulli(0.5)
      ? { kind: "uniform" as const, minMs, maxMs: minMs + r.uniform(0, 40) }
      : { kind: "lognormal" as const, medianMs: minMs * 2, sigma: r.uniform(0.1, 0.8) };
    const loss = r.bernoulli(0.25) ? r.uniform(0, 0.1) : 0;
    const partitions = r.bernoulli(0.15) ? [window()] : [];
    if (loss > 0 || partitions.length > 0) faulty = true;
    return { latency, loss, partitions };
  };
  const edges = [];
  const regionals = int(1, 3);
  for (let i = 1; i <= regionals; i++) {
    edges.push({ id: `regional-${i}`, parent: "origin", tier: "regional", link: link() });
  }
  for (let i = 1, n = int(0, 4); i <= n; i++) {
    edges.push({ id: `edge-${i}`, parent: `regional-${int(1, regionals)}`, link: link() });
  }
  const resolvers = [];
  for (let i = 1, n = int(0, 5); i <= n; i++) {
    resolvers.push({ id: `res-${i}`, upstream: pick(edges).id, link: link() });
  }
  const bus = r.bernoulli(0.2) ? "off" : "memory";
  const faults: Faults = {
    originDown: r.bernoulli(0.2) ? [window()] : [],
    busDown: bus === "memory" && r.bernoulli(0.2) ? [window()] : [],
  };
  if (faults.originDown!.length > 0 || faults.busDown!.length > 0) faulty = true;
  const mode = pick(MODES);
  const populations = resolverPopulations(seed, resolvers.length, ttl);
  const topology = parseTopology(
    {
      name: `fuzz-${seed}`,
      seed,
      bus,
      defaults: { mode, pollIntervalMs: int(500, 10_000), pollJitter: r.uniform(0, 0.5) },
      edges,
      resolvers,
      populations,
    },
    `fuzz case ${seed}`,
  );
  const zone: ZoneConfig = {
    ttl,
    staleWhileRevalidate: r.bernoulli(0.5) ? int(0, 30) : 0,
    staleIfError: 86_400,
  };
  const clientQps = r.bernoulli(0.3) ? 0 : r.uniform(0.01, 2);
  // Drawn after everything else, so adding them left every earlier case's
  // topology, mode, zone, load and other faults as they were.
  const ids = [...edges, ...resolvers].map((n) => n.id);
  const restarts = nodeRestarts(r, ids, ttl * 1000, horizonMs);
  if (restarts.length > 0) {
    faults.restarts = restarts;
    faulty = true;
  }
  const faultWords = [
    faulty ? "" : "no faults",
    ...(faults.originDown!.length > 0 ? ["origin restart"] : []),
    ...(faults.busDown!.length > 0 ? ["bus outage"] : []),
    ...restarts.map((x) => `node restart (${x.nodeId})`),
  ].filter(Boolean);
  return {
    seed,
    topology,
    mode,
    zone,
    clientQps,
    changes,
    faults,
    faulty,
    summary: `${mode}, ${edges.length} edges, ${resolvers.length} resolvers${populations.length > 0 ? ` (${populations.map(populationWords).join("; ")})` : ""}, bus ${bus}, TTL ${ttl} s, ${faultWords.join(", ") || "link faults"}`,
  };
}

/**
 * Resolver populations (topology `populations`, sim/populations.ts) for a
 * third of the cases with resolvers: one to three, each a share of them
 * that stretches TTLs (a minimum TTL up to twice the zone's), serves stale
 * or not (RFC 8767, its stale TTL 1-30 s), caps negative answers (RFC 2308),
 * follows purges or only TTLs, and asks at its own client rate. Drawn from
 * a stream of their own, so every other draw of a case (its topology, mode,
 * zone, load and faults) is what it was before populations were drawn.
 */
function resolverPopulations(seed: number, resolvers: number, ttl: number): PopulationInput[] {
  const r = new Random(hashSeed(seed, "fuzz-populations"));
  if (resolvers === 0 || !r.bernoulli(1 / 3)) return [];
  const int = (min: number, max: number) => Math.floor(r.uniform(min, max + 1));
  const out: PopulationInput[] = [];
  let left = 1;
  for (let i = 1, n = int(1, 3); i <= n; i++) {
    const share = i === n && r.bernoulli(0.5) ? left : r.uniform(0, left);
    left -= share;
    out.push({
      name: `pop-${i}`,
      share,
      minTtl: r.bernoulli(0.4) ? int(1, 2 * ttl) : 0,
      serveStale: r.bernoulli(0.7),
      staleTtl: int(1, 30),
      maxNegativeTtl: int(0, 3_600),
      purges: r.bernoulli(0.5),
      ...(r.bernoulli(0.3) ? { qps: r.uniform(0, 2) } : {}),
    });
  }
  return out;
}

type PopulationInput = Omit<Population, "maxStaleSec" | "qps"> & { qps?: number };

/** A population in a case's summary: its share and what it does. */
function populationWords(p: PopulationInput): string {
  return [
    `${Math.round(p.share * 100)} %`,
    p.minTtl > 0 ? `min TTL ${p.minTtl} s` : "",
    p.serveStale ? `stale ${p.staleTtl} s` : "no stale",
    p.purges ? "purges" : "TTLs only",
  ]
    .filter(Boolean)
    .join(" ");
}

/**
 * Node restarts (sim/restart.ts) for a quarter of the cases: one or two
 * nodes, each down for 50 ms to 5 s (a supervised process back after its
 * backoff), starting after most of the warm-up (a TTL) and a TTL before the
 * horizon, where the changes are.
 */
function nodeRestarts(r: Random, ids: string[], ttlMs: number, horizonMs: number): NodeRestart[] {
  if (!r.bernoulli(0.25)) return [];
  const out: NodeRestart[] = [];
  for (let i = 0, n = r.bernoulli(0.5) ? 1 : 2; i < n; i++) {
    const nodeId = ids[Math.floor(r.uniform(0, ids.length))]!;
    const startMs = r.uniform(0.8 * ttlMs, horizonMs - ttlMs);
    out.push({ nodeId, window: { startMs, endMs: startMs + r.uniform(50, 5_000) } });
  }
  return out;
}

/** The simulation options of a case. */
export function fuzzOptions(c: FuzzCase): SimOptions {
  return {
    topology: c.topology,
    mode: c.mode,
    changes: c.changes,
    seed: c.seed,
    zone: c.zone,
    clientQps: c.clientQps,
    faults: c.faults,
    checkBound: !c.faulty,
  };
}

/** A case's result; run in a worker process it comes without the predictions. */
export type FuzzResult = Omit<SimResult, "predicted">;

export interface FuzzOutcome {
  case: FuzzCase;
  result: FuzzResult;
}

/**
 * Runs seeds first..first+n-1 and calls `onCase` after each, in seed order.
 * With `workers` > 1 the cases run in that many worker processes, each taking
 * the next seed when it is free; a case is decided by its seed alone, so the
 * outcomes are the same as on one thread (test/infra/simulate-shards.test.ts).
 */
export async function fuzz(
  first: number,
  n: number,
  onCase?: (o: FuzzOutcome) => void,
  workers = 1,
): Promise<FuzzOutcome[]> {
  const out: FuzzOutcome[] = [];
  if (workers <= 1 || n < 2) {
    for (let seed = first; seed < first + n; seed++) {
      const c = fuzzCase(seed);
      const o = { case: c, result: await simulate(fuzzOptions(c)) };
      onCase?.(o);
      out.push(o);
    }
    return out;
  }
  const done = new Map<number, FuzzResult>();
  let next = first;
  let shown = first;
  const show = () => {
    for (let r = done.get(shown); r !== undefined; r = done.get(shown)) {
      done.delete(shown);
      const o = { case: fuzzCase(shown), result: r };
      onCase?.(o);
      out.push(o);
      shown++;
    }
  };
  const script = await prepareWorkers();
  const pool = Array.from(
    { length: Math.min(workers, n) },
    () => new SimWorker(script, { kind: "fuzz" }),
  );
  try {
    await Promise.all(
      pool.map(
        (worker) =>
          new Promise<void>((resolve, reject) => {
            worker.onMessage((m: FuzzMessage) => {
              if (m.kind === "ready") {
                worker.send({ seed: next < first + n ? next++ : undefined });
              } else if (m.kind === "case") {
                done.set(m.seed, m.result);
                show();
              } else if (m.kind === "done") resolve();
              else reject(new Error(`fuzz worker failed: ${m.message}`));
            });
            worker.process.on("error", reject);
            void worker.closed.then(({ code, signal }) =>
              reject(new Error(`fuzz worker exited with ${signal ?? `code ${code}`}`)),
            );
          }),
      ),
    );
  } finally {
    await Promise.all(pool.map((w) => w.stop()));
  }
  return out;
}

/** Messages from a fuzz worker (worker.mjs). */
type FuzzMessage =
  | { kind: "ready" }
  | { kind: "case"; seed: number; result: FuzzResult }
  | { kind: "done" }
  | { kind: "failed"; message: string };

/** One line per case; a violation adds its counterexample and the command that replays it. */
export function fuzzLine(o: FuzzOutcome): string {
  const c = o.case;
  const r = o.result;
  const head = `seed ${c.seed}: ${c.summary}: ${r.events} events`;
  const x = r.violation;
  if (!x) return `${head}: ok`;
  return [
    `${head}: VIOLATION ${x.rule}: node ${x.nodeId} at ${x.atMs.toFixed(3)} ms: ${x.detail}`,
    `  replay: propagate simulate --fuzz 1 --seed ${c.seed}`,
  ].join("\n");
}
