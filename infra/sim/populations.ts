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
  const order = t.resolvers
    .map((r, i) => ({ i, h: hashSeed(t.seed, r.id, "population") }))
    .sort((a, b) => a.h - b.h || a.i - b.i);
  let next = 0;
  for (const p of t.populations) {
    const count = Math.round(p.share * n);
    for (let k = 0; k < count && next < n; k++) out[order[next++]!.i] = p;
  }
  return out;
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
