/**
 * The predictor: from a topology, its TTL, stale window, poll interval, mode
 * and every link's delay model, the bound on time-to-fresh and its expected
 * distribution (CDF) for each node, after a change committed at t0.
 *
 * "Time-to-fresh" of a node is the time from t0 until the node first answers
 * with the new value. The node must be asked to answer: an observer asks it
 * every `probeMs` (`propagate measure` polls, `propagate simulate` probes),
 * and resolvers also get client queries at `clientQps` (Poisson).
 *
 * Notation, per node n at depth d (its parent chain n = a0, a1, ..., a(d-1),
 * then the origin); every link carries fetches and purge deliveries alike:
 *   L(a)  the latency of a's link (core/delay.ts closed forms); Lmax(a) its
 *         maximum, or its `quantile` when unbounded (normal, lognormal);
 *   R(n)  = sum over the chain of L(a): one refetch through every tier, since
 *         after a purge every tier misses (latency is paid once per request);
 *   W     = probeMs, the longest wait for the observer's next question;
 *   TTL, SWR the RRset TTL and the zone's stale-while-revalidate window.
 *
 * ttl mode (no purge; caches learn at expiry). Every tier honours Age (RFC
 * 9111 §4.2.3, RFC 8484 §5.1), so a child's copy expires no later than its
 * parent's: the whole chain expires at E, the expiry of the tier-1 copy, and
 * the worst case is the max TTL on the path, not the sum over tiers:
 *   bound = TTL + SWR + W + Rmax(n)
 * (an old copy may still be served stale-while-revalidate until E + SWR; then
 * every tier revalidates, and the next question gets the new value through
 * the chain). Distribution: under continuous client load the tier-1 copy is
 * refilled as soon as it expires, so at a t0 independent of that cycle its
 * remaining lifetime is Uniform(0, TTL); the node follows one observation
 * round per tier later (each edge tier may serve one stale-while-revalidate
 * answer while its refresh runs):  T = U(0, TTL) + d * W / 2 + E[R(n)].
 *
 * invalidate, soft, push: the event reaches n after A(n): one link L(n) on
 * the bus; a lost event (probability loss, or always with the bus off) is
 * found by the next anti-entropy poll: U(0, I) on average, at most
 * I(1+jitter), plus one feed request L(n). Then the next question (V: the
 * first of the observer's, at t0 + kW, and a client's, Exp(clientQps) after
 * A(n); see askedAfter) is answered new: at once with push (the event
 * carries the RRset and caches rewrite it in place), after one refetch
 * through the chain otherwise:  T = A(n) + V (+ E[R(n)] unless push).
 * A cache with a version floor refuses a fill older than the purge, retries,
 * then asks with X-Min-Serial or the origin itself (edge/cache.ts), so it
 * never refills stale:
 *   bound = Amax(n) + W + (1 + floorRetries) * Rmax(n) + Lmax(n)
 * (push keeps this bound: a node holding no entry to rewrite must fetch).
 * A cache without one (`floor: false`, resolvers before they had one) that
 * refetches before its upstream applied the purge (the race
 * X = A(n) + V + L(n) < A(upstream)) stores the old answer again, with the
 * upstream's remaining lifetime, and learns at expiry like ttl mode. So its
 * CDF is the mixture F = (1 - p) * F_purge + p * F_ttl, p = P(X < A(upstream)),
 * and its bound is the ttl bound whenever p > 0.
 *
 * Worker fleets (edge/fleet.ts): an edge that runs as many isolates learns a
 * purge through the fleet's Durable Object, which each isolate reads at most
 * every FLOOR_CACHE_MS = c (its local cache of the floor). So, when the
 * edges are Worker fleets (`workerFloorCacheMs` = c > 0) and a purge is
 * relayed (every mode but ttl), an edge's bound gains c, an additive term,
 * and its CDF is convolved with U(0, c), the wait for the isolate's next
 * read of the floor. The Worker's receipt is held for c, so it stays true.
 */
import { VirtualClock } from "../core/clock.ts";
import { LinkDelay, type LinkModel } from "../core/delay.ts";
import type { PropagationMode } from "../core/purge.ts";
import { DEFAULT_FLOOR_RETRIES } from "../edge/cache.ts";
import { ZONE_DEFAULTS } from "../origin/store.ts";
import { linkModels, parents } from "./sim/links.ts";
import type { Topology } from "./topology.ts";

export interface PredictOptions {
  mode: PropagationMode;
  /** RRset TTL (s); every tier sees the same max-age. */
  ttlSec: number;
  /** The zone's stale-while-revalidate window (s). */
  swrSec: number;
  /** Purge events travel on a bus (false: anti-entropy only). */
  bus: boolean;
  pollIntervalMs: number;
  pollJitter: number;
  /** The observer's interval between questions to each node (0: asked at every instant). */
  probeMs: number;
  /** Client queries per second per resolver, besides the observer. */
  clientQps: number;
  /** Fills below the version floor retried at the parent before the origin. */
  floorRetries: number;
  /** Quantile taken as the maximum of an unbounded latency (normal, lognormal). */
  quantile: number;
  /** Resolvers keep a version floor like edges (core/floor.ts). */
  resolverFloor: boolean;
  /** Edges are Worker fleets whose isolates cache the fleet floor this long (FLOOR_CACHE_MS); 0: not Workers. */
  workerFloorCacheMs: number;
}

/** The defaults, from the topology and the origin's zone defaults. */
export function predictOptions(t: Topology, o: Partial<PredictOptions> = {}): PredictOptions {
  return {
    mode: t.defaults.mode,
    ttlSec: ZONE_DEFAULTS.ttl,
    swrSec: ZONE_DEFAULTS.staleWhileRevalidate,
    bus: t.bus !== "off",
    pollIntervalMs: t.defaults.pollIntervalMs,
    pollJitter: t.defaults.pollJitter,
    probeMs: 100,
    clientQps: 0,
    floorRetries: DEFAULT_FLOOR_RETRIES,
    quantile: 0.999,
    resolverFloor: true,
    workerFloorCacheMs: 0,
    ...o,
  };
}

export interface NodePrediction {
  nodeId: string;
  kind: "edge" | "resolver";
  tier: string;
  depth: number;
  boundMs: number;
  /** P(time-to-fresh <= tMs). */
  cdf: (tMs: number) => number;
  /** Resolvers: probability of refilling from a not yet purged upstream (0 for edges). */
  raceProbability: number;
  /** What the chain's partition windows and loss add to the bound, in words (empty: nothing). */
  boundNotes: string[];
}

/** A time in ms known by its CDF and an upper bound (P(X <= bound) >= the quantile). */
export interface Dist {
  cdf(t: number): number;
  bound: number;
}

/** Quadrature points when one distribution is integrated against another. */
const STEPS = 64;

export function constant(c: number): Dist {
  return { cdf: (t) => (t >= c ? 1 : 0), bound: c };
}

export function uniform(a: number, b: number): Dist {
  if (b <= a) return constant(a);
  return { cdf: (t) => (t <= a ? 0 : t >= b ? 1 : (t - a) / (b - a)), bound: b };
}

/** A link's latency, bounded by its maximum or, when unbounded, its `quantile`. */
export function linkDist(model: LinkModel, quantile: number): Dist {
  const link = new LinkDelay(model, 0, new VirtualClock());
  const max = link.quantileMs(1);
  return {
    cdf: (t) => link.cdf(t),
    bound: Number.isFinite(max) ? max : link.quantileMs(quantile),
  };
}

export function shift(d: Dist, c: number): Dist {
  return c === 0 ? d : { cdf: (t) => d.cdf(t - c), bound: d.bound + c };
}

/**
 * X + Y for independent X, Y: F(t) = E[F_X(t - Y)], integrated over Y's CDF
 * on STEPS cells of [0, Y.bound] (Y's mass beyond its bound is put at it).
 */
export function plus(x: Dist, y: Dist): Dist {
  const h = y.bound / STEPS;
  if (h === 0) return shift(x, y.cdf(0) >= 1 ? 0 : y.bound);
  const weights: number[] = [];
  let prev = 0;
  for (let k = 1; k <= STEPS; k++) {
    const f = k === STEPS ? 1 : y.cdf(k * h);
    weights.push(f - prev);
    prev = f;
  }
  return {
    cdf: (t) => {
      let sum = y.cdf(0) * x.cdf(t);
      for (let k = 0; k < STEPS; k++) sum += weights[k]! * x.cdf(t - (k + 0.5) * h);
      return Math.min(1, sum);
    },
    bound: x.bound + y.bound,
  };
}

/** With probability p, b; else a. */
export function mixture(a: Dist, b: Dist, p: number): Dist {
  if (p <= 0) return a;
  if (p >= 1) return b;
  return { cdf: (t) => (1 - p) * a.cdf(t) + p * b.cdf(t), bound: Math.max(a.bound, b.bound) };
}

/** P(X < Y) for independent X, Y, integrated over X's CDF. */
export function probabilityLess(x: Dist, y: Dist): number {
  const end = Math.max(x.bound, y.bound);
  if (end === 0) return 0;
  const h = end / (STEPS * 4);
  let p = x.cdf(0) * (1 - y.cdf(0));
  let prev = x.cdf(0);
  for (let k = 1; k <= STEPS * 4; k++) {
    const f = x.cdf(k * h);
    p += (f - prev) * (1 - y.cdf((k - 0.5) * h));
    prev = f;
  }
  return Math.min(1, Math.max(0, p));
}

/** The first question after an instant: the observer's within U(0, W), a client's Exp(qps). */
export function firstQuestion(probeMs: number, qps: number): Dist {
  if (probeMs <= 0) return constant(0);
  const rate = qps / 1000;
  return {
    cdf: (v) => (v <= 0 ? 0 : v >= probeMs ? 1 : 1 - (1 - v / probeMs) * Math.exp(-rate * v)),
    bound: probeMs,
  };
}

/**
 * When a node that became ready at A is first asked: the observer asks at
 * t0, t0 + W, t0 + 2W... (as `measure` polls from the write's ack), a
 * client at A + Exp(qps). With s = W * floor(t / W), the last observer
 * question by t:  P(T > t) = (1 - F_A(t)) + integral over (s, t] of
 * e^(-qps (t - a)) dF_A(a)   (no question in (a, t]).
 */
export function askedAfter(a: Dist, probeMs: number, qps: number): Dist {
  if (probeMs <= 0) return a;
  const rate = qps / 1000;
  return {
    cdf: (t) => {
      if (t < 0) return 0;
      const s = probeMs * Math.floor(t / probeMs);
      let later = 1 - a.cdf(t);
      const h = (t - s) / 16;
      for (let k = 0; k < 16 && h > 0; k++) {
        const mass = a.cdf(s + (k + 1) * h) - a.cdf(s + k * h);
        later += mass * Math.exp(-rate * (t - s - (k + 0.5) * h));
      }
      return Math.min(1, Math.max(0, 1 - later));
    },
    bound: a.bound + probeMs,
  };
}

/** When the purge reaches a node: the bus, else (lost, or no bus) the next anti-entropy poll. */
export function arrival(link: Dist, loss: number, o: PredictOptions): Dist {
  const poll = plus(link, {
    ...uniform(0, o.pollIntervalMs),
    bound: o.pollIntervalMs * (1 + o.pollJitter),
  });
  return o.bus ? mixture(link, poll, loss) : poll;
}

interface Chain {
  links: LinkModel[];
  depth: number;
  /** Client queries per second reaching the chain's tier-1 node (0: not modelled). */
  tier1Qps: number;
}

/**
 * ttl mode: see the header. When the client load is known, the tier-1 copy
 * cycles through TTL fresh, then Exp(rate) until the next query refills it,
 * so it is held fresh at t0 with probability f = TTL / (TTL + 1 / rate), with
 * remaining lifetime U(0, TTL); otherwise the observer's question at t0
 * refreshes it (served stale-while-revalidate) and the next one, W later,
 * gets the new value through the chain. Unknown load (rate 0): f = 1, the
 * steady-load worst case.
 */
function ttlDist(chain: Dist[], o: PredictOptions, tier1Qps: number): Dist {
  const ttl = o.ttlSec * 1000;
  const meanR = chain.reduce((s, l) => s + mean(l), 0);
  const maxR = chain.reduce((s, l) => s + l.bound, 0);
  const held = shift(uniform(0, ttl), (chain.length * o.probeMs) / 2 + meanR);
  const f = tier1Qps > 0 ? ttl / (ttl + 1000 / tier1Qps) : 1;
  const d = mixture(constant(o.probeMs + meanR), held, f);
  return { cdf: d.cdf, bound: ttl + o.swrSec * 1000 + o.probeMs + maxR };
}

/** E[X] from the CDF: the integral of 1 - F over [0, bound]. */
export function mean(d: Dist): number {
  const h = d.bound / (STEPS * 4);
  let m = 0;
  for (let k = 0; k < STEPS * 4; k++) m += (1 - d.cdf((k + 0.5) * h)) * h;
  return m;
}

/**
 * What a chain's faults add to a bound. A partition window drops everything
 * on its link, bus events, feed polls and refetches alike, so a change made
 * at its start waits the whole window, then the first poll after it: the
 * longest window on the chain is added. Loss drops each poll too, so with
 * loss p the poll that finds a lost event is the k-th with P(k-1 lost) =
 * p^(k-1) < 1 - quantile: k - 1 more poll intervals are added.
 */
export function faultAllowance(
  links: readonly LinkModel[],
  o: PredictOptions,
): { ms: number; notes: string[] } {
  const notes: string[] = [];
  let ms = 0;
  const windows = links.flatMap((l) => l.partitions.map((w) => w.endMs - w.startMs));
  if (windows.length > 0) {
    const longest = Math.max(...windows);
    ms += longest;
    notes.push(
      `partitions: + ${longest} ms (the longest window on the chain; a change made at its start waits it out)`,
    );
  }
  const loss = Math.max(0, ...links.map((l) => l.loss));
  if (loss > 0 && o.mode !== "ttl") {
    const lost = loss >= 1 ? Number.POSITIVE_INFINITY : Math.log(1 - o.quantile) / Math.log(loss);
    const extra = Math.max(0, Math.ceil(lost) - 1);
    const poll = o.pollIntervalMs * (1 + o.pollJitter);
    ms += extra * poll;
    notes.push(
      loss >= 1
        ? "loss 100 %: no poll gets through, no bound"
        : `loss ${Math.round(loss * 1000) / 10} %: + ${extra} poll interval(s) (${Math.round(extra * poll)} ms), polls lost in a row at the ${o.quantile} quantile`,
    );
  }
  return { ms, notes };
}

function predictChain(
  kind: "edge" | "resolver",
  c: Chain,
  o: PredictOptions,
): Omit<NodePrediction, "nodeId" | "tier"> {
  const p = predictChainFaultless(kind, c, o);
  const f = faultAllowance(c.links, o);
  const fleet = kind === "edge" && o.mode !== "ttl" ? o.workerFloorCacheMs : 0;
  if (fleet <= 0) return { ...p, boundMs: p.boundMs + f.ms, boundNotes: f.notes };
  const cdf = plus({ cdf: p.cdf, bound: p.boundMs }, uniform(0, fleet)).cdf;
  const note = `Worker fleet: + ${fleet} ms, the isolates' cache of the fleet floor (FLOOR_CACHE_MS)`;
  return { ...p, cdf, boundMs: p.boundMs + f.ms + fleet, boundNotes: [...f.notes, note] };
}

function predictChainFaultless(
  kind: "edge" | "resolver",
  c: Chain,
  o: PredictOptions,
): Omit<NodePrediction, "nodeId" | "tier" | "boundNotes"> {
  const dists = c.links.map((l) => linkDist(l, o.quantile));
  const own = dists[0]!;
  const ttl = ttlDist(dists, o, c.tier1Qps);
  if (o.mode === "ttl")
    return { kind, depth: c.depth, boundMs: ttl.bound, cdf: ttl.cdf, raceProbability: 0 };
  const meanR = dists.reduce((s, l) => s + mean(l), 0);
  const maxR = dists.reduce((s, l) => s + l.bound, 0);
  const a = arrival(own, c.links[0]!.loss, o);
  const qps = kind === "resolver" ? o.clientQps : 0;
  const purge = shift(askedAfter(a, o.probeMs, qps), o.mode === "push" ? 0 : meanR);
  const floored = a.bound + o.probeMs + (1 + o.floorRetries) * maxR + own.bound;
  const upstream = c.links[1];
  if (kind === "edge" || o.resolverFloor || upstream === undefined) {
    return { kind, depth: c.depth, boundMs: floored, cdf: purge.cdf, raceProbability: 0 };
  }
  const race = probabilityLess(
    shift(plus(a, firstQuestion(o.probeMs, qps)), mean(own)),
    arrival(linkDist(upstream, o.quantile), upstream.loss, o),
  );
  const bound = race > 1e-9 ? ttl.bound : a.bound + o.probeMs + maxR;
  const f = mixture(purge, ttl, race);
  return { kind, depth: c.depth, boundMs: bound, cdf: f.cdf, raceProbability: race };
}

/** An edge's chain of links up to the origin (its own first), its text of numbers and its number, the tier-1 node on top. */
interface Up {
  links: LinkModel[];
  chain: string;
  number?: number;
  top: string;
}

/** Each node's link model and its parent or upstream, by id (sim/links.ts): what `predict` walks. */
export interface TopologyLinks {
  models: ReadonlyMap<string, LinkModel>;
  parents: ReadonlyMap<string, string>;
}

export function topologyLinks(t: Topology): TopologyLinks {
  return { models: linkModels(t), parents: parents(t) };
}

/**
 * Predictions for every edge and resolver (or the resolvers `only` keeps, by
 * their index in `t.resolvers`: every resolver's client load still counts);
 * nodes with the same chain of link models share one. `links` made once
 * serves several predictions of one topology (two maps of every node: 0.1 s
 * each at 100,000 resolvers).
 */
export function predict(
  t: Topology,
  o: PredictOptions,
  only?: (resolverIndex: number) => boolean,
  links: TopologyLinks = topologyLinks(t),
): NodePrediction[] {
  const { models, parents: parent } = links;
  const memo = new Map<string, Omit<NodePrediction, "nodeId" | "tier">>();
  const out: NodePrediction[] = [];
  // Nodes with the same chain of link models, as text, share a prediction.
  // Each model is written out once (the topology's default link is one
  // object: 100,000 resolvers took 1.4 s), and each distinct text gets a
  // number: a chain is its first link's number and the number of the
  // chain above it (a text of JSON objects splits into those two one way
  // only), so equal texts get equal numbers without a node's whole chain
  // written out (200,000 texts of a few hundred characters, hashed anew).
  const numbers = new Map<string, number>();
  const numberOf = (text: string) => {
    let n = numbers.get(text);
    if (n === undefined) {
      n = numbers.size;
      numbers.set(text, n);
    }
    return n;
  };
  const written = new Map<LinkModel, number>();
  const linkNumber = (l: LinkModel) => {
    let n = written.get(l);
    if (n === undefined) {
      n = numberOf(JSON.stringify(l));
      written.set(l, n);
    }
    return n;
  };
  // Each edge's chain up to the origin (its links, its number, the tier-1
  // node on top), made from its parent's.
  const chains = new Map<string, Up>();
  const above = (id: string): Up | undefined => {
    const p = parent.get(id);
    return p === undefined || p === t.origin.id ? undefined : edgeChain(p);
  };
  const edgeChain = (id: string): Up => {
    let up = chains.get(id);
    if (!up) {
      const rest = above(id);
      const own = models.get(id)!;
      up = rest
        ? { links: [own, ...rest.links], chain: `${linkNumber(own)},${rest.number}`, top: rest.top }
        : { links: [own], chain: `${linkNumber(own)}`, top: id };
      up.number = numberOf(up.chain);
      chains.set(id, up);
    }
    return up;
  };
  // Client load reaching each tier-1 node: the resolvers below it.
  const below = new Map<string, number>();
  for (const r of t.resolvers) {
    const top = above(r.id)?.top ?? r.id;
    below.set(top, (below.get(top) ?? 0) + 1);
  }
  const shared = (
    kind: "edge" | "resolver",
    chain: string,
    top: string,
    links: () => LinkModel[],
  ): Omit<NodePrediction, "nodeId" | "tier"> => {
    const tier1Qps = o.clientQps * (below.get(top) ?? 0);
    const key = `${kind}:${tier1Qps}:${chain}`;
    let p = memo.get(key);
    if (!p) {
      const l = links();
      p = predictChain(kind, { links: l, depth: l.length, tier1Qps }, o);
      memo.set(key, p);
    }
    return p;
  };
  for (const e of t.edges) {
    const up = edgeChain(e.id);
    out.push({ nodeId: e.id, tier: e.tier, ...shared("edge", up.chain, up.top, () => up.links) });
  }
  // A resolver's prediction by its edge's chain and its own link object
  // first (most resolvers share both), by text only when that pair is new.
  const byEdge = new Map<Up, Map<LinkModel, Omit<NodePrediction, "nodeId" | "tier">>>();
  for (const [j, r] of t.resolvers.entries()) {
    if (only !== undefined && !only(j)) continue;
    const rest = above(r.id);
    const own = models.get(r.id)!;
    let p: Omit<NodePrediction, "nodeId" | "tier"> | undefined;
    if (rest) {
      let byLink = byEdge.get(rest);
      if (!byLink) {
        byLink = new Map();
        byEdge.set(rest, byLink);
      }
      p = byLink.get(own);
      if (!p) {
        p = shared("resolver", `${linkNumber(own)},${rest.number}`, rest.top, () => [
          own,
          ...rest.links,
        ]);
        byLink.set(own, p);
      }
    } else p = shared("resolver", `${linkNumber(own)}`, r.id, () => [own]);
    out.push({ nodeId: r.id, tier: "resolver", ...p });
  }
  return out;
}

/**
 * The CDF pooled over nodes (each node weighs the same: the mean of their
 * CDFs), as points for the report; nodes sharing a prediction are counted once.
 */
export function pooledCurve(preds: readonly NodePrediction[]): {
  boundMs: number;
  points: [number, number][];
} {
  const groups = new Map<NodePrediction["cdf"], number>();
  for (const p of preds) groups.set(p.cdf, (groups.get(p.cdf) ?? 0) + 1);
  const boundMs = Math.max(0, ...preds.map((p) => p.boundMs));
  const grid = new Set<number>([0, boundMs]);
  for (let k = 1; k < 150; k++) grid.add((boundMs * k) / 150);
  for (let k = 0; k <= 100; k++) grid.add(boundMs * 10 ** (-4 + (4 * k) / 100));
  const points = [...grid]
    .sort((a, b) => a - b)
    .map((t): [number, number] => {
      let sum = 0;
      for (const [cdf, count] of groups) sum += cdf(t) * count;
      return [t, preds.length > 0 ? sum / preds.length : 0];
    });
  return { boundMs, points };
}
