/**
 * A shard's per-node results as a few flat arrays, the form they cross from
 * a worker process to the coordinator in (shards.ts). As objects, 50,000
 * nodes of the 100,000-resolver hour, each with an array of its times, were
 * 12.5 MB that V8's serializer wrote field by field and the coordinator
 * read back object by object: the last shard's result reached the
 * coordinator 0.4-0.8 s after its run ended, on the run's critical path
 * (0.2 s packed, 6.8 MB; bench/results/simulate.md). A typed array crosses
 * as its bytes.
 *
 * `unpackNodes(packNodes(nodes))` is `nodes` again: the same values (the
 * times as the same doubles) and each object's keys in the same order, so
 * the report's JSON is the same text (`population` present only where it
 * was).
 */
import type { SimNodeResult } from "./run.ts";

export interface PackedNodes {
  /** The node ids joined by "\n" (an id is `[a-z0-9_-]`, topology.ts). */
  ids: string;
  /** 1 for a resolver, 0 for an edge. */
  resolver: Uint8Array;
  /** Distinct tiers, and each node's index into them. */
  tiers: string[];
  tierOf: Uint16Array;
  /** Distinct populations, and each node's index into them plus one (0: none). */
  populations: string[];
  populationOf: Uint16Array;
  /** How many times each node has, and all of them in node order. */
  counts: Uint32Array;
  times: Float64Array;
  staleSeen: Float64Array;
  unconverged: Float64Array;
}

/** Index of `value` in `table`, added if new (few distinct values: tiers, populations). */
function indexIn(table: string[], index: Map<string, number>, value: string): number {
  let i = index.get(value);
  if (i === undefined) {
    i = table.length;
    if (i > 0xffff) throw new RangeError("more than 65,536 distinct tiers or populations");
    table.push(value);
    index.set(value, i);
  }
  return i;
}

export function packNodes(nodes: readonly SimNodeResult[]): PackedNodes {
  const n = nodes.length;
  const tiers: string[] = [];
  const populations: string[] = [];
  const tierIndex = new Map<string, number>();
  const populationIndex = new Map<string, number>();
  const resolver = new Uint8Array(n);
  const tierOf = new Uint16Array(n);
  const populationOf = new Uint16Array(n);
  const counts = new Uint32Array(n);
  const staleSeen = new Float64Array(n);
  const unconverged = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) total += nodes[i]!.timesMs.length;
  const times = new Float64Array(total);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const node = nodes[i]!;
    resolver[i] = node.kind === "resolver" ? 1 : 0;
    tierOf[i] = indexIn(tiers, tierIndex, node.tier);
    populationOf[i] =
      node.population === undefined
        ? 0
        : indexIn(populations, populationIndex, node.population) + 1;
    counts[i] = node.timesMs.length;
    times.set(node.timesMs, at);
    at += node.timesMs.length;
    staleSeen[i] = node.staleSeen;
    unconverged[i] = node.unconverged;
  }
  const ids = nodes.map((node) => node.nodeId).join("\n");
  return {
    ids,
    resolver,
    tiers,
    tierOf,
    populations,
    populationOf,
    counts,
    times,
    staleSeen,
    unconverged,
  };
}

export function unpackNodes(p: PackedNodes): SimNodeResult[] {
  const n = p.counts.length;
  const ids = n === 0 ? [] : p.ids.split("\n");
  if (ids.length !== n) throw new Error(`packed nodes: ${ids.length} ids for ${n} nodes`);
  const out = new Array<SimNodeResult>(n);
  let at = 0;
  for (let i = 0; i < n; i++) {
    const count = p.counts[i]!;
    // Pushed, not written into `new Array(count)`: that array has holes to
    // V8, and JSON.stringify takes a slower path for it (0.13 against 0.2 s
    // for 50,000 nodes of a dozen times).
    const timesMs: number[] = [];
    for (let k = 0; k < count; k++) timesMs.push(p.times[at + k]!);
    at += count;
    const kind = p.resolver[i] === 1 ? "resolver" : "edge";
    const tier = p.tiers[p.tierOf[i]!]!;
    const population = p.populationOf[i]!;
    // Keys in run.ts's order, `population` only where the node has one.
    out[i] =
      population === 0
        ? {
            nodeId: ids[i]!,
            kind,
            tier,
            timesMs,
            staleSeen: p.staleSeen[i]!,
            unconverged: p.unconverged[i]!,
          }
        : {
            nodeId: ids[i]!,
            kind,
            tier,
            population: p.populations[population - 1]!,
            timesMs,
            staleSeen: p.staleSeen[i]!,
            unconverged: p.unconverged[i]!,
          };
  }
  if (at !== p.times.length) throw new Error(`packed nodes: ${p.times.length} times, ${at} read`);
  return out;
}
