/**
 * One simulated run of one mode: warm the caches, then K times commit a new
 * value at a random phase of the TTL cycle and watch every node until it
 * serves it. Like `propagate measure`, an observer asks each node every
 * `probeMs` from t0 until it answers with the new value; meanwhile clients
 * query the resolvers (a Poisson process at `clientQps` per resolver).
 */
import type { PropagationMode } from "../../core/purge.ts";
import { hashSeed, Random } from "../../core/random.ts";
import type { ZoneConfig } from "../../origin/store.ts";
import { type NodePrediction, predict, predictOptions } from "../predict.ts";
import type { Topology } from "../topology.ts";
import { SimLoop } from "./loop.ts";
import type { OriginLoad } from "./origin.ts";
import { Tracker } from "./tracker.ts";
import { World } from "./world.ts";

export interface SimOptions {
  topology: Topology;
  mode: PropagationMode;
  /** Changes to commit and follow. */
  changes: number;
  seed: number | string;
  zone: ZoneConfig;
  /** The observer's interval between questions to a node not yet fresh. */
  probeMs: number;
  /** Client queries per second per resolver (Poisson). */
  clientQps: number;
  /** Called after each change with (done, total). */
  onProgress?: (done: number, total: number) => void;
}

export interface SimNodeResult {
  nodeId: string;
  kind: "edge" | "resolver";
  tier: string;
  /** Time-to-fresh per change that reached the node within the window (ms). */
  timesMs: number[];
  /** Answers with an older version after a change was committed. */
  staleSeen: number;
  /** Changes the node had not served within the window. */
  unconverged: number;
}

export interface SimResult {
  mode: PropagationMode;
  nodes: SimNodeResult[];
  predicted: NodePrediction[];
  originLoad: OriginLoad;
  /** Timers fired plus answers observed. */
  events: number;
  simulatedMs: number;
  wallMs: number;
  /** Queries that got no answer (upstream failures); the last one's message. */
  failures: number;
  lastFailure?: string;
}

export async function simulate(o: SimOptions): Promise<SimResult> {
  const wallStart = performance.now();
  const predicted = predict(
    o.topology,
    predictOptions(o.topology, {
      mode: o.mode,
      ttlSec: o.zone.ttl,
      swrSec: o.zone.staleWhileRevalidate,
      probeMs: o.probeMs,
      clientQps: o.clientQps,
    }),
  );
  const windowMs = Math.max(...predicted.map((p) => p.boundMs)) * 1.2 + 2_000;
  const loop = new SimLoop();
  const n = o.topology.edges.length + o.topology.resolvers.length;
  const tracker = new Tracker(n, () => loop.now());
  const world = new World({ ...o }, loop, tracker);
  await world.start();
  const random = new Random(hashSeed(o.seed, "run", o.mode));
  const resolvers = world.nodes.filter((x) => x.kind === "resolver");
  startClientLoad(loop, random, resolvers, o.clientQps * resolvers.length);

  // Warm-up: every node asked once, then a TTL of client load.
  for (const node of world.nodes) node.ask();
  await loop.runUntil(loop.now() + o.zone.ttl * 1000);

  const times: Float64Array[] = [];
  for (let k = 1; k <= o.changes; k++) {
    // A random phase of the TTL cycle, so entry ages at t0 are spread.
    await loop.runUntil(loop.now() + random.uniform(0, o.zone.ttl * 1000));
    const serial = await world.origin.change(k);
    tracker.begin(serial);
    loop.markDirty();
    const stopProbes = probe(loop, world, tracker, o.probeMs);
    await loop.runUntil(loop.now() + windowMs, () => tracker.pending === 0);
    stopProbes();
    times.push(tracker.end());
    o.onProgress?.(k, o.changes);
  }
  const simulatedMs = loop.now();
  await world.stop();
  const nodes = world.nodes.map((node, i): SimNodeResult => {
    const mine = times.map((t) => t[i]!);
    return {
      nodeId: node.id,
      kind: node.kind,
      tier: node.tier,
      timesMs: mine.filter((t) => !Number.isNaN(t)),
      staleSeen: tracker.stale[i]!,
      unconverged: mine.filter((t) => Number.isNaN(t)).length,
    };
  });
  return {
    mode: o.mode,
    nodes,
    predicted,
    originLoad: world.origin.load,
    events: loop.events + tracker.answers,
    simulatedMs,
    wallMs: performance.now() - wallStart,
    failures: tracker.failures,
    ...(tracker.lastFailure !== undefined ? { lastFailure: String(tracker.lastFailure) } : {}),
  };
}

/** Clients: one Poisson process at the total rate, each query to a resolver drawn at random. */
function startClientLoad(
  loop: SimLoop,
  random: Random,
  resolvers: { ask(): void }[],
  perSecond: number,
): void {
  if (perSecond <= 0 || resolvers.length === 0) return;
  const next = () => {
    const gapMs = (-Math.log(1 - random.next()) / perSecond) * 1000;
    loop.at(loop.now() + gapMs, () => {
      resolvers[Math.floor(random.next() * resolvers.length)]!.ask();
      next();
    });
  };
  next();
}

/** Asks every node not yet fresh, now and every probeMs, until stopped. */
function probe(loop: SimLoop, world: World, tracker: Tracker, probeMs: number): () => void {
  let stopped = false;
  let open = world.nodes.map((_, i) => i);
  const round = () => {
    if (stopped) return;
    open = open.filter((i) => !tracker.isFresh(i));
    for (const i of open) world.nodes[i]!.ask();
    loop.at(loop.now() + probeMs, round);
  };
  round();
  return () => {
    stopped = true;
  };
}
