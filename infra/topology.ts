/**
 * Topology files: which nodes run, who is whose parent, the delay model of
 * every link and the bus. Validated once with zod; an error names the field
 * (`edges.2.parent: node "regional-9" is not defined`).
 */
import { readFile } from "node:fs/promises";
import { z } from "zod";
import { linkModelSchema } from "../core/delay.ts";
import { issueLines } from "../core/issue.ts";
import { normaliseName } from "../core/names.ts";

const id = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "an id is lower-case letters, digits, '-' or '_' (max 63)");
const hostPort = z
  .string()
  .regex(/^(\[[0-9a-f:]+\]|[a-z0-9.-]+):\d{1,5}$/i, "expected HOST:PORT such as 127.0.0.1:8081");

export const MODES = ["ttl", "invalidate", "soft", "push"] as const;

const linkField = linkModelSchema.optional();

/**
 * A share of the resolvers with one behaviour (the simulator draws each
 * resolver's population from the run seed). Defaults are the resolver
 * engine's, which are BIND's: RFC 8767 serve-stale with stale answers at
 * TTL 30 s (stale-answer-ttl), kept up to a day (max-stale-ttl), a failed
 * refresh rechecked after 30 s (stale-refresh-time); negative answers
 * capped at 3 h (RFC 2308 §5, max-ncache-ttl).
 */
export const populationSchema = z.strictObject({
  name: id,
  /** Fraction of the resolvers, in [0, 1]; shares sum to at most 1, the rest keep the defaults. */
  share: z.number().min(0).max(1),
  /** TTL stretching: answers are kept at least this long (s); 0 honours TTLs. */
  minTtl: z.number().int().min(0).default(0),
  /** RFC 8767 serve-stale; false answers only fresh data (SERVFAIL when the upstream fails). */
  serveStale: z.boolean().default(true),
  /** TTL of a stale answer (s). */
  staleTtl: z.number().int().min(0).default(30),
  /** How long past expiry an answer may still be served stale (s). */
  maxStaleSec: z.number().int().min(0).default(86_400),
  /** RFC 2308 §5 cap on negative caching (s). */
  maxNegativeTtl: z.number().int().min(0).default(10_800),
  /** Client queries per second per resolver of this population (default: the run's). */
  qps: z.number().min(0).optional(),
  /**
   * Whether these resolvers follow the purge bus and change feed (resolvers
   * you run) or only TTLs (resolvers on the internet: the default).
   */
  purges: z.boolean().default(false),
});
export type Population = z.output<typeof populationSchema>;

export const topologySchema = z.strictObject({
  name: z.string().default("topology"),
  /** Seed of every link's delay model (each link derives its own from it). */
  seed: z.union([z.number().int(), z.string()]).default(1),
  /** "memory" (one process), "off" (anti-entropy only), a redis:// URL or a cluster's (core/redis-bus.ts). */
  bus: z
    .string()
    .refine((s) => s === "memory" || s === "off" || /^rediss?(\+[a-z]+)?:\/\//.test(s), {
      message: 'bus is "memory", "off" or a redis:// URL (redis+cluster://h1:p1,h2:p2: a cluster)',
    })
    .default("memory"),
  origin: z
    .strictObject({
      id: id.default("origin"),
      http: hostPort.default("127.0.0.1:8053"),
      dns: hostPort.default("127.0.0.1:1054"),
      data: z.string().default(".data/origin"),
      token: z.string().min(16).optional(),
      /** Load the sample zone example.test when the data dir has no zone yet. */
      sample: z.boolean().default(true),
      /** Zones taken from existing primaries by AXFR, NOTIFY and IXFR (origin/follow.ts). */
      follow: z
        .array(
          z.strictObject({
            /** dns://IP:PORT */
            primary: z.string(),
            zones: z.array(z.string()).min(1),
            /** TSIG key name in `tsigKeys`. */
            key: z.string().optional(),
          }),
        )
        .default([]),
      /** TSIG key file (tsig-keygen format) for transfers and NOTIFY to `secondaries`, and for `follow`. */
      tsigKeys: z.string().optional(),
      /** Who may AXFR/IXFR every zone: IPs, IP/prefix, key:NAME (a secondary's key may anyway). */
      allowTransfer: z.array(z.string()).optional(),
      /** Publish a catalog zone (RFC 9432) of every zone under this name. */
      catalog: z.string().optional(),
    })
    .prefault({}),
  /** Per-zone propagation mode; zones not listed use `defaults.mode`. */
  zones: z.record(z.string(), z.strictObject({ mode: z.enum(MODES) })).default({}),
  defaults: z
    .strictObject({
      mode: z.enum(MODES).default("invalidate"),
      link: linkModelSchema.prefault({}),
      /** Anti-entropy: how often each node polls the change feed, and the jitter fraction. */
      pollIntervalMs: z.number().int().min(100).default(5_000),
      pollJitter: z.number().min(0).max(1).default(0.2),
    })
    .prefault({}),
  edges: z
    .array(
      z.strictObject({
        id,
        /** "origin" or the id of another edge. */
        parent: id,
        tier: z.string().default("edge"),
        http: hostPort.default("127.0.0.1:0"),
        maxBytes: z.number().int().positive().optional(),
        /** Link from this edge to its parent: upstream fetches and purge deliveries. */
        link: linkField,
      }),
    )
    .default([]),
  resolvers: z
    .array(
      z.strictObject({
        id,
        /** "origin" (plain DNS) or an edge id (DoH). */
        upstream: id,
        dns: hostPort.default("127.0.0.1:0"),
        admin: hostPort.default("127.0.0.1:0"),
        maxBytes: z.number().int().positive().optional(),
        link: linkField,
      }),
    )
    .default([]),
  /** Resolver behaviours in shares (simulator only); none: every resolver has the defaults. */
  populations: z
    .array(populationSchema)
    .default([])
    .refine((ps) => ps.reduce((s, p) => s + p.share, 0) <= 1 + 1e-9, {
      message: "population shares sum to more than 1",
    })
    .refine((ps) => new Set(ps.map((p) => p.name)).size === ps.length, {
      message: "population names must be unique",
    }),
  /** Real DNS secondaries (Knot, BIND, NSD) run outside: NOTIFYed through their link, receipts by SOA. */
  secondaries: z
    .array(
      z.strictObject({
        id,
        dns: hostPort,
        /** Zones it serves; absent: every zone. */
        zones: z.array(z.string()).optional(),
        /** TSIG key name in origin.tsigKeys. */
        key: z.string().optional(),
        link: linkField,
      }),
    )
    .default([]),
});

export type Topology = z.output<typeof topologySchema>;
export type EdgeSpec = Topology["edges"][number];
export type ResolverSpec = Topology["resolvers"][number];

export class TopologyError extends Error {
  override readonly name = "TopologyError";
}

/** Validates a parsed topology; checks ids, parents and cycles beyond the schema. */
export function parseTopology(input: unknown, source = "topology"): Topology {
  const result = topologySchema.safeParse(input);
  if (!result.success) {
    const lines = issueLines(result.error.issues, "(root)").map((l) => `  ${l}`);
    throw new TopologyError(`${source} is not a valid topology:\n${lines.join("\n")}`);
  }
  const t = result.data;
  const problems: string[] = [];
  for (const zone of Object.keys(t.zones)) {
    try {
      normaliseName(zone);
    } catch (e) {
      problems.push(`  zones.${zone}: ${(e as Error).message}`);
    }
  }
  const ids = new Set<string>([t.origin.id]);
  const all = [
    ...t.edges.map((e) => e.id),
    ...t.resolvers.map((r) => r.id),
    ...t.secondaries.map((s) => s.id),
  ];
  for (const [i, nodeId] of all.entries()) {
    if (ids.has(nodeId)) problems.push(`  node "${nodeId}" (#${i + 1}) is defined twice`);
    ids.add(nodeId);
  }
  const edgeIds = new Set([t.origin.id, ...t.edges.map((e) => e.id)]);
  for (const [i, e] of t.edges.entries()) {
    if (!edgeIds.has(e.parent)) {
      problems.push(`  edges.${i}.parent: "${e.parent}" is neither the origin nor an edge`);
    }
  }
  for (const [i, r] of t.resolvers.entries()) {
    if (!edgeIds.has(r.upstream)) {
      problems.push(`  resolvers.${i}.upstream: "${r.upstream}" is neither the origin nor an edge`);
    }
  }
  if (problems.length === 0) {
    const cycle = findCycle(t);
    if (cycle) problems.push(`  edges: parents form a cycle: ${cycle.join(" -> ")}`);
  }
  if (problems.length > 0) {
    throw new TopologyError(`${source} is not a valid topology:\n${problems.join("\n")}`);
  }
  return t;
}

function findCycle(t: Topology): string[] | undefined {
  const parent = new Map(t.edges.map((e) => [e.id, e.parent]));
  for (const start of parent.keys()) {
    const path = [start];
    for (let cur = parent.get(start); cur !== undefined; cur = parent.get(cur)) {
      if (path.includes(cur)) return [...path, cur];
      path.push(cur);
    }
  }
  return undefined;
}

/** The edges in an order where every parent comes before its children. */
export function edgesInStartOrder(t: Topology): EdgeSpec[] {
  const placed = new Set([t.origin.id]);
  const out: EdgeSpec[] = [];
  while (out.length < t.edges.length) {
    for (const e of t.edges) {
      if (!placed.has(e.id) && placed.has(e.parent)) {
        placed.add(e.id);
        out.push(e);
      }
    }
  }
  return out;
}

/** Depth of each node below the origin (origin 0, its children 1, ...). */
export function depths(t: Topology): Map<string, number> {
  const d = new Map<string, number>([[t.origin.id, 0]]);
  for (const e of edgesInStartOrder(t)) d.set(e.id, (d.get(e.parent) ?? 0) + 1);
  for (const r of t.resolvers) d.set(r.id, (d.get(r.upstream) ?? 0) + 1);
  return d;
}

export async function loadTopology(path: string): Promise<Topology> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new TopologyError(`cannot read topology file ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TopologyError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  return parseTopology(json, path);
}
