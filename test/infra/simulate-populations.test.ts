import { describe, expect, it } from "vitest";
import { hashSeed } from "../../core/random.ts";
import { predict, predictOptions } from "../../infra/predict.ts";
import { assignPopulations } from "../../infra/sim/populations.ts";
import { predictRun, simulate } from "../../infra/sim/run.ts";
import { populationRows } from "../../infra/simulate.ts";
import { parseTopology, type Topology, TopologyError } from "../../infra/topology.ts";

const resolvers = Array.from({ length: 40 }, (_, i) => ({
  id: `res-${i + 1}`,
  upstream: i % 2 ? "edge-1" : "edge-2",
  link: { latency: { kind: "uniform", minMs: 5, maxMs: 15 } },
}));

const topology = parseTopology({
  seed: 7,
  defaults: { link: { latency: { kind: "uniform", minMs: 2, maxMs: 6 } }, pollIntervalMs: 2_000 },
  edges: [
    { id: "regional", parent: "origin", tier: "regional" },
    { id: "edge-1", parent: "regional" },
    { id: "edge-2", parent: "regional" },
  ],
  resolvers,
  populations: [
    { name: "stretch", share: 0.25, minTtl: 120 },
    { name: "honour", share: 0.5, serveStale: false, qps: 0.5 },
    { name: "stale", share: 0.25 },
  ],
});

describe("simulate: resolver populations", () => {
  it("gives each population its exact share, the same for the same topology seed", () => {
    const a = assignPopulations(topology).map((p) => p?.name);
    const count = (name: string) => a.filter((x) => x === name).length;
    expect([count("stretch"), count("honour"), count("stale")]).toEqual([10, 20, 10]);
    expect(assignPopulations(topology).map((p) => p?.name)).toEqual(a);
  });

  it("orders the resolvers by the hash of (topology seed, id), then by index, and takes the shares in that order", () => {
    const byHash = topology.resolvers
      .map((r, i) => ({ i, h: hashSeed(topology.seed, r.id, "population") }))
      .sort((a, b) => a.h - b.h || a.i - b.i);
    const want = Array<string | undefined>(topology.resolvers.length);
    byHash.forEach(({ i }, k) => {
      want[i] = k < 10 ? "stretch" : k < 30 ? "honour" : "stale";
    });
    expect(assignPopulations(topology).map((p) => p?.name)).toEqual(want);
  });

  it("refuses to assign populations to more resolvers than an index packs beside a hash", () => {
    const many = { ...topology, resolvers: { length: 2 ** 21 + 1 } as Topology["resolvers"] };
    expect(() => assignPopulations(many)).toThrow(
      /at most 2097152 resolvers; the topology has 2097153/,
    );
  });

  it("refuses shares that sum to more than 1", () => {
    const bad = {
      populations: [
        { name: "a", share: 0.7 },
        { name: "b", share: 0.4 },
      ],
    };
    expect(() => parseTopology(bad)).toThrow(TopologyError);
    expect(() => parseTopology(bad)).toThrow(/shares sum to more than 1/);
  });

  it("shows how each population shapes the tail: stretched TTLs hold the old answer longest", async () => {
    const r = await simulate({
      topology,
      mode: "invalidate",
      changes: 3,
      seed: 3,
      zone: { ttl: 30, staleWhileRevalidate: 0, staleIfError: 86_400 },
      clientQps: 0.05,
    });
    expect(r.violation).toBeUndefined();
    const rows = new Map(populationRows(r).map((s) => [s.label.split(" ")[0], s]));
    const stretch = rows.get("stretch")!;
    const honour = rows.get("honour")!;
    // Resolvers on the internet follow no purges: TTLs only, stretched to 120 s.
    expect(honour.max).toBeLessThanOrEqual(30_000 + 1_000);
    expect(stretch.max).toBeGreaterThan(30_000);
    expect(stretch.max).toBeLessThanOrEqual(120_000 + 1_000);
    expect(stretch.p99).toBeGreaterThan(honour.p99);
    // The edges follow purges and stay in milliseconds.
    expect(rows.get("edges")!.max).toBeLessThan(1_000);
    expect(stretch.exceeded + honour.exceeded).toBe(0);
  }, 60_000);
  it("predicts each resolver in the mode its population follows, in the topology's order", () => {
    // One population follows purges, two do not (the default), one resolver in ten has none.
    // The one that follows purges stretches TTLs too: a purge ends its copies, but a
    // ttl-mode run sends none, so there its minimum TTL holds them (fuzz seeds 1297, 3753).
    const mixed = parseTopology({
      ...topology,
      resolvers: [...topology.resolvers, { id: "res-41", upstream: "edge-1" }],
      populations: [
        { name: "stretch", share: 0.25, minTtl: 120 },
        { name: "purged", share: 0.5, purges: true, minTtl: 60 },
        { name: "stale", share: 0.2 },
      ],
    });
    const zone = { ttl: 30, staleWhileRevalidate: 0, staleIfError: 86_400 };
    const o = { topology: mixed, changes: 1, seed: 3, zone, clientQps: 0.05 };
    const pops = assignPopulations(mixed);
    expect(new Set(pops.map((p) => p?.name))).toEqual(
      new Set(["stretch", "purged", "stale", undefined]),
    );
    for (const mode of ["invalidate", "ttl"] as const) {
      const opts = (m: typeof mode) =>
        predictOptions(mixed, { mode: m, ttlSec: 30, swrSec: 0, probeMs: 0, clientQps: 0.05 });
      const inMode = new Map(predict(mixed, opts(mode)).map((p) => [p.nodeId, p]));
      const inTtl = new Map(predict(mixed, opts("ttl")).map((p) => [p.nodeId, p]));
      const got = predictRun({ ...o, mode });
      expect(got.map((p) => p.nodeId)).toEqual(
        [...mixed.edges, ...mixed.resolvers].map((n) => n.id),
      );
      for (const p of got) {
        const j = mixed.resolvers.findIndex((r) => r.id === p.nodeId);
        const pop = j < 0 ? undefined : pops[j];
        if (pop === undefined || (pop.purges && mode !== "ttl")) {
          // An edge, a resolver with no population, or one whose copies purges end: the run's mode.
          const want = inMode.get(p.nodeId)!;
          expect([p.boundMs, p.cdf(5_000)]).toEqual([want.boundMs, want.cdf(5_000)]);
          continue;
        }
        // ttl mode, its copy held max(TTL, minTtl): bound and curve stretched.
        const base = inTtl.get(p.nodeId)!;
        const stretch = Math.max(30, pop.minTtl) / 30;
        expect(p.boundMs).toBe(base.boundMs + (stretch - 1) * 30_000);
        for (const ms of [1_000, 20_000, 90_000]) expect(p.cdf(ms)).toBe(base.cdf(ms / stretch));
      }
    }
  });

  it("shares one predicted curve among resolvers of a population with the same chain", () => {
    const predicted = predictRun({
      topology,
      mode: "invalidate",
      changes: 1,
      seed: 3,
      zone: { ttl: 30, staleWhileRevalidate: 0, staleIfError: 86_400 },
      clientQps: 0.05,
    });
    const pops = assignPopulations(topology);
    const curves = new Map<string, Set<unknown>>();
    for (const [j, r] of topology.resolvers.entries()) {
      const p = predicted.find((x) => x.nodeId === r.id)!;
      const name = `${pops[j]!.name} ${r.upstream}`;
      curves.set(name, (curves.get(name) ?? new Set()).add(p.cdf));
    }
    // The report pools curves by identity (predict.ts pooledCurve): one per
    // resolver made pooling 100,000 resolvers take 1.2 s.
    expect([...curves.values()].map((c) => c.size)).toEqual(Array(curves.size).fill(1));
    const stretch = predicted.find(
      (x) => x.nodeId === topology.resolvers[pops.findIndex((p) => p!.name === "stretch")]!.id,
    )!;
    expect(stretch.cdf(120_000 + 1_000)).toBeGreaterThan(stretch.cdf(30_000));
  });
});
