/**
 * One simulated run of one mode: warm the caches, then K times commit a new
 * value at a random phase of the TTL cycle and watch every node until it
 * serves it. The exact observer (observer.ts) asks each node at every
 * instant its answer could change, so time-to-fresh is exact, not on a
 * grid; meanwhile clients query the resolvers (a Poisson process at
 * `clientQps` per resolver), and `probeMs`, when given, adds a client per
 * node that asks periodically (as `propagate measure` does). The checkers
 * (checker.ts) watch every answer and ack; the first violation stops the run.
 */
import type { PropagationMode } from "../../core/purge.ts";
import { hashSeed, Random } from "../../core/random.ts";
import type { ZoneConfig } from "../../origin/store.ts";
import { DEFAULT_CACHE } from "../../resolver/policy.ts";
import { type NodePrediction, predict, predictOptions, topologyLinks } from "../predict.ts";
import type { Population, Topology } from "../topology.ts";
import { Checker, type Violation } from "./checker.ts";
import { ClientLoad } from "./clients.ts";
import { SimLoop } from "./loop.ts";
import { Observer } from "./observer.ts";
import type { OriginLoad } from "./origin.ts";
import { assignPopulations } from "./populations.ts";
import { MeasureProber } from "./prober.ts";
import type { RestartRecord } from "./restart.ts";
import { Tracker } from "./tracker.ts";
import { type Faults, World, type WorldEvents } from "./world.ts";

export interface SimOptions {
  topology: Topology;
  mode: PropagationMode;
  /** Changes to commit and follow. */
  changes: number;
  seed: number | string;
  zone: ZoneConfig;
  /** When given, a periodic client per node asks every probeMs until it is fresh. */
  probeMs?: number;
  /**
   * How time-to-fresh is observed: "exact" (default; observer.ts, the first
   * instant a node answers new), or "measure": as `propagate measure` asks,
   * each node again probeMs (default 20) after each answer (prober.ts), to
   * compare with a live run. Then only the prober's answers are timed.
   */
  observe?: "exact" | "measure";
  /** After a failed or stale answer, the observer asks again after this (default 100 ms). */
  retryMs?: number;
  /** Client queries per second per resolver (Poisson). */
  clientQps: number;
  /**
   * Compute change-feed polls that find nothing instead of firing them (same
   * result; sim/lazy-polls.ts). Default true; false is the slow path.
   */
  lazyPolls?: boolean;
  /**
   * Client queries kept out of the clock, and fresh hits answered without
   * the engine's lookup (same result; sim/clients.ts). Default true; false
   * is the slow path.
   */
  lazyClients?: boolean;
  /**
   * Edges answer their children and resolvers with a HopResponse instead of
   * a Web Response (same result; sim/hop.ts). Default true; false is the
   * slow path.
   */
  lightHops?: boolean;
  /**
   * Each instant's promise work settles within the turn of Node's event
   * loop instead of a macrotask later (same result; sim/loop.ts
   * `runInTurn`). Default true; false is the slow path.
   */
  settleInTurn?: boolean;
  /** Origin restarts and bus outages; links carry their own loss and partitions. */
  faults?: Faults;
  /**
   * Check convergence within the predicted bound (default true); fault
   * schedules the predictor does not model turn it off: then every node
   * must still be fresh within the window after the last fault heals.
   */
  checkBound?: boolean;
  /**
   * One change per slot of everyMs after the warm-up, at a random instant in
   * the slot's first half, followed until the next slot starts.
   */
  everyMs?: number;
  /** Called after each change with (done, total). */
  onProgress?: (done: number, total: number) => void;
  /**
   * When `topology` is a shard (sim/shards.ts): the whole topology it was
   * cut from. Predictions, the window and populations are the whole's, so
   * the shard's nodes run exactly as they do in one process.
   */
  whole?: Topology;
  /**
   * When `topology` is a shard: called once per change as the shard's window
   * closes (its nodes all fresh, or the window over), and when it stops on a
   * violation (`broken`). Resolves to the instant the whole run's window
   * closes, the latest shard's, which the shard then follows in the window as
   * one process does; undefined: another shard broke a rule, the run stops.
   * `capped`: the shard's window ran to its cap with nodes still open. The
   * cap is the same instant in every shard (the change's instant, drawn from
   * the run's stream, or the last fault's healing, plus the whole's window
   * and recovery; or the next slot), each shard's loop lands on it exactly,
   * and no window runs past it, so the whole's window closes there too: the
   * shard goes on without waiting for the others (shards.ts checks the claim).
   */
  windowClosed?: (atMs: number, broken: boolean, capped: boolean) => Promise<number | undefined>;
  /**
   * When `topology` is a shard: the whole run's bounds, from the coordinator
   * (which predicts the whole run for the report anyway), so the shard does
   * not predict it again; awaited after the warm-up. Without it, `simulate`
   * predicts.
   */
  bounds?: Promise<Bounds>;
}

/** What a run needs of the predictions: the largest bound of the whole, and each node's (by id). */
export interface Bounds {
  maxMs: number;
  byId: Map<string, number>;
}

/** A run's bounds from its predictions. */
export function boundsOf(predicted: readonly NodePrediction[]): Bounds {
  return {
    maxMs: Math.max(...predicted.map((p) => p.boundMs)),
    byId: new Map(predicted.map((p) => [p.nodeId, p.boundMs])),
  };
}

const records = new WeakMap<readonly NodePrediction[], Record<string, number>>();

/**
 * Each node's predicted bound (ms) by id, as the report reads them
 * (report.ts `boundsMs`); made once per list of predictions, so the
 * coordinator can make it while its workers run (shards.ts).
 */
export function boundsRecord(predicted: readonly NodePrediction[]): Record<string, number> {
  let r = records.get(predicted);
  if (r === undefined) {
    r = Object.fromEntries(predicted.map((p) => [p.nodeId, p.boundMs]));
    records.set(predicted, r);
  }
  return r;
}

export interface SimNodeResult {
  nodeId: string;
  kind: "edge" | "resolver";
  tier: string;
  /** The resolver's population (topology `populations`), if any. */
  population?: string;
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
  /** When it happened (virtual ms). */
  lastFailureAtMs?: number;
  /** The first broken invariant; the run stopped there. */
  violation?: Violation;
  /** Change-feed polls computed instead of fired (counted in `events`). */
  pollsComputed: number;
  /** Node restarts that happened (faults.restarts; sim/restart.ts). */
  restarts: RestartRecord[];
  /** Questions to resolvers answered from the held answer, without the engine's lookup. */
  hitsComputed: number;
  /** Of those, client questions counted without being fired (sim/clients.ts `hold`). */
  arrivalsHeld: number;
  /** Edge answers that crossed a simulated link as a HopResponse (sim/hop.ts). */
  lightHops: number;
  /** Origin reads answered with a held answer of the read routes (sim/origin.ts reuseAnswers). */
  answersReused: number;
  /** Threads the run was split over (sim/shards.ts; 1: this one). */
  workers: number;
  /** Wall time of each part of the run (of the slowest shard, part by part, when split). */
  phasesMs: Phases;
  /** How long each change is followed at most (virtual ms): 1.2 x the largest bound + 2 s. */
  windowMs: number;
}

/**
 * Where a run's wall time went: predicting and building the world, the
 * warm-up (every node's first fill and a TTL of client load), following
 * the changes, and stopping and gathering the results.
 */
export interface Phases {
  build: number;
  warmup: number;
  changes: number;
  stop: number;
}

/** Every node's prediction for a run (the whole topology's, when `o.topology` is a shard). */
export function predictRun(o: SimOptions): NodePrediction[] {
  const whole = o.whole ?? o.topology;
  // One walk of the topology's links for both lists (`withPopulations`).
  const links = topologyLinks(whole);
  const predictIn = (mode: PropagationMode, only?: (resolverIndex: number) => boolean) =>
    predict(
      whole,
      predictOptions(whole, {
        mode,
        ttlSec: o.zone.ttl,
        swrSec: o.zone.staleWhileRevalidate,
        // The exact observer has no grid: it waits for nothing between changes.
        probeMs: o.observe === "measure" ? (o.probeMs ?? 20) : 0,
        clientQps: o.clientQps,
      }),
      only,
      links,
    );
  return withPopulations(o, whole, predictIn);
}

export async function simulate(o: SimOptions): Promise<SimResult> {
  const wallStart = performance.now();
  const measureLike = o.observe === "measure";
  const probeEvery = o.probeMs ?? 20;
  const whole = o.whole ?? o.topology;
  const predicted = o.bounds ? [] : predictRun(o);
  const healedAt = lastFaultEnd(o, whole);
  const loop = new SimLoop(0, o.settleInTurn ?? true);
  const n = o.topology.edges.length + o.topology.resolvers.length;
  const now = () => loop.now();
  const tracker = new Tracker(n, now);
  let observer: Observer | undefined;
  let prober: MeasureProber | undefined;
  let checker: Checker | undefined;
  const events: WorldEvents = {
    served: (i, version, stale, asked) => {
      if (!prober) tracker.served(i, version);
      else if (asked !== false && prober.asking(i)) {
        tracker.served(i, version);
        prober.answered(i, tracker.isFresh(i));
      }
      checker?.served(i, version, stale);
      observer?.answered(i, tracker.isFresh(i), version === undefined || stale);
    },
    // One answer's checks, the count n times: the same version again in the
    // same instant changes nothing else (the checker keeps the highest
    // version, the observer schedules the same next question).
    servedTimes: (i, version, n) => {
      if (n <= 0) return;
      if (prober) {
        for (let k = 0; k < n; k++) events.served(i, version, false);
        return;
      }
      tracker.servedTimes(i, version, n);
      checker?.served(i, version, false);
      observer?.answered(i, tracker.isFresh(i), version === undefined);
    },
    failed: (i, err) => {
      tracker.failed(i, err);
      if (i >= 0) observer?.answered(i, false, true);
      if (i >= 0) prober?.failed(i);
    },
    touched: (i) => observer?.touch(i),
    acked: (i, _zone, serial) => {
      // Its held questions before the ack were answered before it (clients.ts).
      clients.releaseNode(i);
      checker?.acked(i, serial);
    },
  };
  const world = new World(
    {
      ...o,
      lazyPolls: o.lazyPolls ?? true,
      lazyClients: o.lazyClients ?? true,
      askEdgesJson: measureLike,
      lightHops: o.lightHops ?? true,
    },
    loop,
    events,
  );
  await world.start();
  const built = performance.now();
  checker = new Checker(n, (i) => world.nodes[i]!.id, now);
  checker.changed(world.origin.zones()[0]!.serial);
  if (measureLike) prober = new MeasureProber(loop, world, probeEvery);
  else {
    observer = new Observer(loop, world, o.retryMs ?? 100);
    loop.onSettled = observer.flush;
  }
  const broken = () => checker.violation !== undefined;
  // The commits' instants have a stream of their own; each resolver's clients
  // another (clients.ts), so a shard of the topology draws what one process does.
  const random = new Random(hashSeed(o.seed, "run", o.mode));
  // A question a held answer settles is answered without the node's closures (world.ts).
  const clients = new ClientLoad(
    loop,
    hashSeed(o.seed, "run", o.mode),
    o.lazyClients ?? true,
    (i) => world.ask(i),
  );
  // Questions a held answer settles are counted, not fired, where nothing
  // but a count could tell them apart (clients.ts `hold`): not with the
  // prober (it times only its own questions) nor with node restarts.
  if ((o.lazyClients ?? true) && !prober && (o.faults?.restarts?.length ?? 0) === 0) {
    clients.held = {
      until: (i) => world.heldUntil(i),
      count: (i, n) => world.heldAnswers(i, n),
    };
    world.heldEnds = (i) => clients.releaseNode(i);
  }
  const rateOf = new Map(o.topology.populations.map((p) => [p.name, p.qps ?? o.clientQps]));
  for (const [i, node] of world.nodes.entries()) {
    if (node.kind !== "resolver") continue;
    const rate =
      (node.population !== undefined ? rateOf.get(node.population) : undefined) ?? o.clientQps;
    clients.add(i, node.id, rate);
  }

  // Warm-up: every node asked once within the first TTL, under its clients'
  // load. The edges at once; each resolver at an instant of its own, uniform
  // over the TTL and drawn from its id (a shard draws what one process does):
  // a fleet's resolvers are not filled in one instant, and asking 50,000 of
  // a shard's at t = 0 held 50,000 requests in flight at once, which grew
  // the heap to its limits for the rest of the run (bench/results/simulate.md,
  // "A fleet filled over its first TTL").
  const ttlMs = o.zone.ttl * 1000;
  for (const node of world.nodes) {
    if (node.kind !== "resolver") node.ask();
    else {
      const at = (hashSeed(o.seed, node.id, "warm-up") / 2 ** 32) * ttlMs;
      loop.at(at, () => {
        node.ask();
        loop.markDirty();
      });
    }
  }
  await loop.runUntil(loop.now() + ttlMs, broken);
  const warmed = performance.now();

  const times: Float64Array[] = [];
  const bounds = o.bounds ? await o.bounds : boundsOf(predicted);
  const windowMs = bounds.maxMs * 1.2 + 2_000;
  // By id: the world builds edges parents first (topology.ts edgesInStartOrder).
  const bound = world.nodes.map((node) => bounds.byId.get(node.id)!);
  const warm = loop.now();
  // Slot k starts at warm + (k - 1) x every; the next slot's start ends the window.
  const slot = (k: number) => warm + (k - 1) * o.everyMs!;
  for (let k = 1; k <= o.changes && !broken(); k++) {
    // A random phase (of the TTL cycle, or of the first half of the slot on a
    // fixed schedule), so the entries' ages at t0 are spread: a fixed instant
    // every minute would meet every TTL cycle at the same phase.
    const at = o.everyMs
      ? slot(k) + random.uniform(0, o.everyMs / 2)
      : loop.now() + random.uniform(0, o.zone.ttl * 1000);
    await loop.runUntil(at, broken);
    if (broken()) break;
    const serial = await world.commit(k);
    clients.settle();
    checker.changed(serial);
    tracker.begin(serial);
    observer?.begin(serial);
    prober?.begin();
    loop.markDirty();
    const stopProbes =
      o.probeMs && !measureLike ? probe(loop, world, tracker, o.probeMs) : () => {};
    // Under faults the predictor does not model, convergence is owed once the
    // last has healed, and after the slowest ways back (a missed event found
    // by the next poll, a held copy running out, a resolver's failure recheck).
    let until =
      o.checkBound === false
        ? Math.max(loop.now(), healedAt) + windowMs + recoveryMs(o, whole)
        : loop.now() + windowMs;
    // On a fixed schedule the next slot ends the window.
    const cut = o.everyMs !== undefined && slot(k + 1) < until;
    if (cut) until = slot(k + 1);
    await loop.runUntil(until, () => tracker.pending === 0 || broken());
    if (o.windowClosed) {
      // In one process the window closes when the last node of the whole is
      // fresh: a shard whose own nodes were all fresh earlier runs on to that
      // instant (its first event there included), its window still open.
      const capped = tracker.pending !== 0 && !broken();
      const end = await o.windowClosed(loop.now(), broken(), capped);
      if (end === undefined) break;
      if (end > loop.now()) await loop.runUntil(end, () => loop.now() >= end);
    }
    stopProbes();
    clients.settle();
    observer?.end();
    prober?.end();
    const t = tracker.end();
    times.push(t);
    // Faults the predictor does not model owe no bound, in a window cut short
    // by the next change as in one that runs its course; a cut window owes
    // no convergence either (the next change has come).
    checkConvergence(checker, t, o.checkBound === false ? undefined : bound, k, !cut);
    o.onProgress?.(k, o.changes);
  }
  // The other shards must not wait for this one's next window.
  if (broken()) await o.windowClosed?.(loop.now(), true, false);
  const simulatedMs = loop.now();
  const followed = performance.now();
  await world.stop();
  clients.settle();
  const nodes = world.nodes.map((node, i): SimNodeResult => {
    const mine = times.map((t) => t[i]!);
    return {
      nodeId: node.id,
      kind: node.kind,
      tier: node.tier,
      ...(node.population !== undefined ? { population: node.population } : {}),
      timesMs: mine.filter((t) => !Number.isNaN(t)),
      staleSeen: tracker.stale[i]!,
      unconverged: mine.filter((t) => Number.isNaN(t)).length,
    };
  });
  const end = performance.now();
  return {
    mode: o.mode,
    nodes,
    predicted,
    originLoad: world.origin.load,
    events: loop.events + tracker.answers,
    simulatedMs,
    wallMs: end - wallStart,
    failures: tracker.failures,
    pollsComputed: world.lazy?.skipped ?? 0,
    restarts: world.restarts,
    hitsComputed: world.hitsComputed,
    arrivalsHeld: clients.stats.held,
    lightHops: world.carried.hops,
    answersReused: world.origin.answersReused,
    workers: 1,
    windowMs,
    phasesMs: {
      build: built - wallStart,
      warmup: warmed - built,
      changes: followed - warmed,
      stop: end - followed,
    },
    ...(tracker.lastFailure !== undefined
      ? { lastFailure: String(tracker.lastFailure), lastFailureAtMs: tracker.lastFailureAt }
      : {}),
    ...(checker.violation ? { violation: checker.violation } : {}),
  };
}

/**
 * Resolvers of a population that does not follow purges are predicted as in
 * ttl mode, their held copy living max(TTL, minTtl): the bound grows by the
 * stretch and the expected curve is stretched in time by minTtl / TTL; so
 * are those of every population in a ttl-mode run, where no purge ends a
 * copy before its minimum TTL (fuzz seeds 1297, 3753, 4836). Each
 * resolver is predicted once, in the mode it follows (a population follows
 * no purges unless it says so, topology.ts): every resolver in the run's
 * mode and again in ttl mode took the coordinator 0.75-1.0 s at 100,000
 * resolvers, against 0.53-0.75 s (bench/results/simulate.md).
 */
function withPopulations(
  o: SimOptions,
  t: Topology,
  predictIn: (mode: PropagationMode, only?: (resolverIndex: number) => boolean) => NodePrediction[],
): NodePrediction[] {
  const pops = assignPopulations(t);
  // Whose copies no purge ends: a population that follows none, and in ttl
  // mode (no purges at all) every one; its minimum TTL holds them.
  const unpurged = (p: Population | undefined) =>
    p !== undefined && (!p.purges || o.mode === "ttl");
  if (!pops.some(unpurged)) return predictIn(o.mode);
  const held = (j: number) => pops[j]?.purges === false;
  // Edges and the resolvers that follow purges in the run's mode; the others
  // in ttl mode (all in one list when the run's mode is ttl). Both lists keep
  // the topology's order: its edges, then its resolvers.
  const all = o.mode === "ttl";
  const own = all ? predictIn("ttl") : predictIn(o.mode, (j) => !held(j));
  const ttl = all ? own : predictIn("ttl", held);
  // One stretched curve per (curve, stretch), shared as the predictor shares
  // curves: the report pools curves by identity (predict.ts pooledCurve), and
  // one per resolver took 1.2 s at 100,000 resolvers.
  const stretched = new Map<NodePrediction["cdf"], Map<number, NodePrediction["cdf"]>>();
  const curve = (cdf: NodePrediction["cdf"], stretch: number) => {
    let byStretch = stretched.get(cdf);
    if (!byStretch) {
      byStretch = new Map();
      stretched.set(cdf, byStretch);
    }
    let f = byStretch.get(stretch);
    if (!f) {
      f = (ms: number) => cdf(ms / stretch);
      byStretch.set(stretch, f);
    }
    return f;
  };
  const ttlMs = o.zone.ttl * 1000;
  const edges = t.edges.length;
  const out = own.slice(0, edges);
  // The resolvers in the topology's order, each from the list it is in.
  let mine = edges;
  let theirs = edges;
  for (const [j, r] of t.resolvers.entries()) {
    const pop = pops[j];
    const p = all ? own[edges + j] : held(j) ? ttl[theirs++] : own[mine++];
    if (p?.nodeId !== r.id) throw new Error(`no prediction for resolver ${r.id} in its place`);
    if (pop === undefined || !unpurged(pop)) {
      out.push(p);
      continue;
    }
    const heldMs = Math.max(ttlMs, pop.minTtl * 1000);
    const stretch = heldMs / ttlMs;
    out.push({ ...p, boundMs: p.boundMs + (heldMs - ttlMs), cdf: curve(p.cdf, stretch) });
  }
  return out;
}

/**
 * Risk accepted that a lossy link drops a node's refresh more times in a
 * row than the window allows for (per node and change).
 */
const LOSS_RISK = 1e-6;

/**
 * The longest way back after a fault: two polls, a TTL and SWR, and the
 * failure rechecks. A resolver whose refresh is lost answers stale and asks
 * again after its recheck time (RFC 8767's stale-refresh-time); loss on a
 * link never heals, so as many rechecks as consecutive losses are likely:
 * k with loss^k under LOSS_RISK (one without loss). Seed 232 in ttl mode
 * lost two refreshes in a row at 10 % loss, and one recheck was allowed.
 */
function recoveryMs(o: SimOptions, t: Topology): number {
  const d = t.defaults;
  const loss = Math.max(
    ...[d.link, ...t.edges.map((e) => e.link), ...t.resolvers.map((r) => r.link)].map(
      (l) => l?.loss ?? 0,
    ),
  );
  const rechecks = loss > 0 ? Math.ceil(Math.log(LOSS_RISK) / Math.log(loss)) : 1;
  return (
    2 * d.pollIntervalMs * (1 + d.pollJitter) +
    (o.zone.ttl + o.zone.staleWhileRevalidate) * 1000 +
    rechecks * DEFAULT_CACHE.failureRecheckMs
  );
}

/** When the last scheduled fault ends (ms since the start; 0: none). */
function lastFaultEnd(o: SimOptions, t: Topology): number {
  const windows = [
    ...(o.faults?.originDown ?? []),
    ...(o.faults?.busDown ?? []),
    ...(o.faults?.restarts ?? []).map((r) => r.window),
    ...[t.defaults.link, ...t.edges.map((e) => e.link), ...t.resolvers.map((r) => r.link)].flatMap(
      (l) => l?.partitions ?? [],
    ),
  ];
  return Math.max(0, ...windows.map((w) => w.endMs));
}

/**
 * Every node fresh within its predicted bound (infra/predict.ts), else the
 * run stops; without a bound (faults the predictor does not model), fresh
 * within the window that follows the last fault.
 */
function checkConvergence(
  checker: Checker,
  times: Float64Array,
  bound: number[] | undefined,
  k: number,
  owed = true,
): void {
  for (let i = 0; i < times.length; i++) {
    const t = times[i]!;
    if (Number.isNaN(t)) {
      // A window cut short by the next commit owes no convergence.
      if (!owed) continue;
      checker.fail("bound", i, `change ${k}: not fresh within the window`);
    } else if (bound && t > bound[i]!) {
      checker.fail("bound", i, `change ${k}: fresh after ${t.toFixed(3)} ms, bound ${bound[i]} ms`);
    }
  }
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
