/**
 * Resolver populations (topology `populations`): which resolver has which
 * behaviour, and what that means for the resolver engine's configuration.
 * Shares are exact: resolvers are ordered by a hash of (topology seed, id)
 * and the first share x N go to the first population, and so on; the rest
 * keep the engine's defaults.
 */
import { hashSeed } from "../../core/random.ts";
import type { CacheConfig } from "../../resolver/policy.ts";
import type { Population, Topology } from "../topology.ts";

/** Each resolver's population (by index in `t.resolvers`); undefined: the defaults. */
export function assignPopulations(t: Topology): (Population | undefined)[] {
  const n = t.resolvers.length;
  const out: (Population | undefined)[] = new Array(n).fill(undefined);
  if (t.populations.length === 0) return out;
  const order = orderByHash(t);
  let next = 0;
  for (const p of t.populations) {
    const count = Math.round(p.share * n);
    for (let k = 0; k < count && next < n; k++) out[order(next++)] = p;
  }
  return out;
}

/** Resolvers up to this many: an index fits beside a 32-bit hash in a double's 53 bits. */
const PACKED_MAX = 2 ** 21;

/**
 * The resolvers' indices ordered by (hash of topology seed and id, index).
 * Both packed in one double (hash x 2^21 + index, exact below 2^53) and
 * sorted as numbers: every simulator worker and the predictor order the
 * whole topology's resolvers, and an object per resolver sorted by a
 * comparator took 95-104 ms of 100,000 warm, 0.63 s of a worker's build
 * (against 24-30 ms; bench/results/simulate.md, "The start of a shard").
 */
function orderByHash(t: Topology): (k: number) => number {
  const n = t.resolvers.length;
  if (n > PACKED_MAX) {
    // 2 million resolvers would hold ~46 GB in the simulator (~23 KB a node).
    throw new RangeError(
      `populations are assigned to at most ${PACKED_MAX} resolvers; the topology has ${n}`,
    );
  }
  const keys = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    keys[i] = hashSeed(t.seed, t.resolvers[i]!.id, "population") * PACKED_MAX + i;
  }
  keys.sort();
  return (k) => keys[k]! % PACKED_MAX;
}

/** The engine configuration a population asks for (resolver/policy.ts CacheConfig). */
export function cacheConfigOf(p: Population | undefined): Partial<CacheConfig> {
  if (!p) return {};
  return {
    minTtl: p.minTtl,
    maxNegativeTtl: p.maxNegativeTtl,
    staleTtl: p.staleTtl,
    // RFC 8767 §5: no stale answers at all is a maximum stale timer of 0.
    maxStaleMs: p.serveStale ? p.maxStaleSec * 1000 : 0,
  };
}

/** Each resolver's population by id (see assignPopulations); absent: the defaults. */
export function populationsById(t: Topology): Map<string, Population> {
  const out = new Map<string, Population>();
  const pops = assignPopulations(t);
  for (const [j, r] of t.resolvers.entries()) {
    const p = pops[j];
    if (p) out.set(r.id, p);
  }
  return out;
}
