/**
 * Which delay model each node's link has, and the LinkDelay instances the
 * simulator and the predictor build from a topology. A node's link is the
 * one to its parent (edge) or upstream (resolver); it carries that node's
 * upstream fetches and its purge deliveries alike (core/README.md, "Delay model").
 */
import type { Clock } from "../../core/clock.ts";
import { LinkDelay, type LinkModel } from "../../core/delay.ts";
import { hashSeed } from "../../core/random.ts";
import type { Topology } from "../topology.ts";

/** What crosses a link: each use draws from its own seeded stream. */
export type LinkUse = "fetch" | "bus" | "feed";

/** Every node's link model: its own, else the topology's default. */
export function linkModels(t: Topology): Map<string, LinkModel> {
  const out = new Map<string, LinkModel>();
  for (const n of [...t.edges, ...t.resolvers]) out.set(n.id, n.link ?? t.defaults.link);
  return out;
}

/** Each node's parent (edge) or upstream (resolver); the origin has none. */
export function parents(t: Topology): Map<string, string> {
  const out = new Map<string, string>();
  for (const e of t.edges) out.set(e.id, e.parent);
  for (const r of t.resolvers) out.set(r.id, r.upstream);
  return out;
}

/** A LinkDelay for one use of a node's link, seeded from (run seed, node, use). */
export function linkDelay(
  model: LinkModel,
  runSeed: number | string,
  nodeId: string,
  use: LinkUse,
  clock: Clock,
): LinkDelay {
  return new LinkDelay(model, hashSeed(runSeed, nodeId, use), clock, { startMs: clock.now() });
}
