/**
 * Generated topologies for scale runs: `--edges M --resolvers N` keeps the
 * base topology's defaults, bus and seed, and lays out ceil(sqrt(M))
 * regional edges under the origin (links copied in turn from the base's
 * first-tier edges), the other edges spread over them, and the resolvers
 * spread over the leaf edges.
 */
import type { LinkModel } from "../../core/delay.ts";
import { parseTopology, type Topology } from "../topology.ts";

export function generateTopology(base: Topology, edges: number, resolvers: number): Topology {
  if (!Number.isInteger(edges) || edges < 1) {
    throw new RangeError(`--edges ${edges}: give a whole number of edges, at least 1`);
  }
  if (!Number.isInteger(resolvers) || resolvers < 0) {
    throw new RangeError(`--resolvers ${resolvers}: give a whole number of resolvers, 0 or more`);
  }
  const regionalLinks: (LinkModel | undefined)[] = base.edges
    .filter((e) => e.parent === base.origin.id)
    .map((e) => e.link);
  const regionals = Math.ceil(Math.sqrt(edges));
  const out = [];
  for (let i = 0; i < regionals; i++) {
    const link = regionalLinks.length > 0 ? regionalLinks[i % regionalLinks.length] : undefined;
    out.push({
      id: `regional-${i + 1}`,
      tier: "regional",
      parent: base.origin.id,
      ...(link ? { link } : {}),
    });
  }
  for (let i = 0; i < edges - regionals; i++) {
    out.push({ id: `edge-${i + 1}`, tier: "edge", parent: `regional-${(i % regionals) + 1}` });
  }
  const leaves = edges > regionals ? out.slice(regionals) : out;
  const res = [];
  for (let i = 0; i < resolvers; i++) {
    res.push({ id: `res-${i + 1}`, upstream: leaves[i % leaves.length]!.id });
  }
  return parseTopology(
    {
      name: `${base.name}-generated-${edges}e-${resolvers}r`,
      seed: base.seed,
      bus: base.bus,
      zones: base.zones,
      populations: base.populations,
      defaults: base.defaults,
      edges: out,
      resolvers: res,
    },
    "generated topology",
  );
}
