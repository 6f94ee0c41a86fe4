import { describe, expect, it } from "vitest";
import { type SimOptions, type SimResult, simulate } from "../../infra/sim/run.ts";
import { parseTopology } from "../../infra/topology.ts";

/** origin <- regional <- 2 edges <- 2 resolvers each; resolvers' links slower than their edges'. */
const topology = parseTopology({
  seed: 3,
  defaults: {
    link: { latency: { kind: "uniform", minMs: 2, maxMs: 6 } },
    pollIntervalMs: 1_000,
    pollJitter: 0.2,
  },
  edges: [
    {
      id: "regional",
      parent: "origin",
      tier: "regional",
      link: { latency: { kind: "lognormal", medianMs: 15, sigma: 0.3 } },
    },
    { id: "edge-1", parent: "regional" },
    { id: "edge-2", parent: "regional" },
  ],
  resolvers: ["edge-1", "edge-1", "edge-2", "edge-2"].map((upstream, i) => ({
    id: `res-${i + 1}`,
    upstream,
    link: { latency: { kind: "uniform", minMs: 8, maxMs: 12 } },
  })),
});

const base: SimOptions = {
  topology,
  mode: "invalidate",
  changes: 4,
  seed: 11,
  zone: { ttl: 10, staleWhileRevalidate: 5, staleIfError: 86_400 },
  clientQps: 0.5,
};

const all = (r: SimResult) => r.nodes.flatMap((n) => n.timesMs).sort((a, b) => a - b);

describe("simulate", () => {
  it("gives the same result for the same seed, and another for another seed", async () => {
    const strip = (r: SimResult) => ({ nodes: r.nodes, load: r.originLoad, events: r.events });
    const a = await simulate(base);
    const b = await simulate(base);
    const c = await simulate({ ...base, seed: 12 });
    expect(strip(b)).toEqual(strip(a));
    expect(all(c)).not.toEqual(all(a));
  });

  it("keeps every node within its predicted bound, in every mode", async () => {
    for (const mode of ["ttl", "invalidate", "soft", "push"] as const) {
      const r = await simulate({ ...base, mode });
      const bound = new Map(r.predicted.map((p) => [p.nodeId, p.boundMs]));
      for (const n of r.nodes) {
        expect(n.unconverged, `${mode} ${n.nodeId}`).toBe(0);
        expect(n.timesMs).toHaveLength(base.changes);
        for (const t of n.timesMs)
          expect(t, `${mode} ${n.nodeId}`).toBeLessThanOrEqual(bound.get(n.nodeId)!);
      }
      expect(r.failures).toBe(0);
    }
  });

  it("propagates in milliseconds with purges and in seconds with TTL expiry", async () => {
    // Steady client load, so every tier refills at expiry (the predictor's ttl assumption).
    const ttl = await simulate({ ...base, mode: "ttl", clientQps: 20 });
    const inv = await simulate({ ...base, clientQps: 20 });
    const median = (r: SimResult) => all(r)[Math.floor(all(r).length / 2)]!;
    expect(median(inv)).toBeLessThan(200);
    expect(median(ttl)).toBeGreaterThan(1_000);
    expect(Math.max(...all(inv))).toBeLessThan(Math.max(...all(ttl)));
    // Old answers keep flowing until expiry in ttl mode.
    const stale = (r: SimResult) => r.nodes.reduce((s, n) => s + n.staleSeen, 0);
    expect(stale(ttl)).toBeGreaterThan(stale(inv));
  });

  it("counts the reads that reach the origin", async () => {
    const r = await simulate(base);
    const reads = r.originLoad.reads.reduce((a, b) => a + b, 0);
    // At least one refill per change through the regional; polls are counted apart.
    expect(reads).toBeGreaterThanOrEqual(base.changes);
    expect(r.originLoad.feed.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });
});
