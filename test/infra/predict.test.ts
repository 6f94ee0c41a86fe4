import { describe, expect, it } from "vitest";
import {
  askedAfter,
  constant,
  firstQuestion,
  mixture,
  type PredictOptions,
  plus,
  pooledCurve,
  predict,
  predictOptions,
  probabilityLess,
  uniform,
} from "../../infra/predict.ts";
import { parseTopology } from "../../infra/topology.ts";

/** origin <- regional (fixed 20 ms) <- edge (fixed 5 ms) <- resolver (fixed 2 ms). */
const chain = parseTopology({
  defaults: { link: { latency: { kind: "fixed", ms: 5 } }, pollIntervalMs: 1_000, pollJitter: 0.2 },
  edges: [
    {
      id: "regional",
      parent: "origin",
      tier: "regional",
      link: { latency: { kind: "fixed", ms: 20 } },
    },
    { id: "edge", parent: "regional" },
  ],
  resolvers: [{ id: "res", upstream: "edge", link: { latency: { kind: "fixed", ms: 2 } } }],
});

function opts(o: Partial<PredictOptions>): PredictOptions {
  return predictOptions(chain, { ttlSec: 60, swrSec: 30, probeMs: 0, ...o });
}

function byId(o: Partial<PredictOptions>) {
  return new Map(predict(chain, opts(o)).map((p) => [p.nodeId, p]));
}

describe("distribution helpers", () => {
  it("adds a uniform to a constant exactly", () => {
    const d = plus(constant(10), uniform(0, 100));
    expect(d.bound).toBe(110);
    expect(d.cdf(60)).toBeCloseTo(0.5, 2);
    expect(d.cdf(9)).toBe(0);
    expect(d.cdf(110)).toBe(1);
  });

  it("P(U(0,1) < U(0,1)) is 1/2 and P(0 < U(1,2)) is 1", () => {
    expect(probabilityLess(uniform(0, 1000), uniform(0, 1000))).toBeCloseTo(0.5, 2);
    expect(probabilityLess(constant(0), uniform(1, 2))).toBe(1);
    expect(probabilityLess(constant(5), constant(2))).toBe(0);
  });

  it("the first question comes within the probe interval, sooner with client load", () => {
    expect(firstQuestion(100, 0).cdf(50)).toBeCloseTo(0.5);
    // 1 - (1 - 0.5) * e^(-10 q/s * 0.05 s) = 1 - 0.5 e^-0.5
    expect(firstQuestion(100, 10).cdf(50)).toBeCloseTo(1 - 0.5 * Math.exp(-0.5));
    expect(mixture(constant(0), constant(10), 0.25).cdf(5)).toBe(0.75);
  });

  it("a node ready at 30 ms is asked by the observer at 100 ms, or by a client before", () => {
    expect(askedAfter(constant(30), 100, 0).cdf(99)).toBe(0);
    expect(askedAfter(constant(30), 100, 0).cdf(100)).toBe(1);
    // 10 client queries/s: asked by 80 ms with probability 1 - e^(-10 * 0.05).
    expect(askedAfter(constant(30), 100, 10).cdf(80)).toBeCloseTo(1 - Math.exp(-0.5), 1);
  });
});

describe("ttl mode", () => {
  it("bounds every tier by max TTL + SWR (not the sum over tiers), plus the refetch", () => {
    const p = byId({ mode: "ttl", probeMs: 100 });
    // 60 s + 30 s + one probe (100 ms) + refetch: regional 20, edge 5 + 20, resolver 2 + 5 + 20.
    expect(p.get("regional")!.boundMs).toBe(90_000 + 100 + 20);
    expect(p.get("edge")!.boundMs).toBe(90_000 + 100 + 25);
    expect(p.get("res")!.boundMs).toBe(90_000 + 100 + 27);
  });

  it("expects Uniform(0, TTL) shifted by d probe rounds / 2 and the mean refetch", () => {
    const res = byId({ mode: "ttl", probeMs: 100 }).get("res")!;
    // depth 3: shift = 3 * 100 / 2 + 27 = 177 ms; median = 30 s + 177 ms.
    expect(res.cdf(177)).toBeCloseTo(0, 6);
    expect(res.cdf(30_177)).toBeCloseTo(0.5, 2);
    expect(res.cdf(60_177)).toBeCloseTo(1, 6);
  });
});

describe("ttl mode under sparse client load", () => {
  it("holds the tier-1 copy fresh for TTL / (TTL + 1 / rate) of the time", () => {
    // 1 resolver at 1/60 q/s: cycles of 60 s fresh + 60 s on average without a copy, f = 1/2.
    const res = byId({ mode: "ttl", probeMs: 100, clientQps: 1 / 60 }).get("res")!;
    // not held: refreshed by the question at t0, new at the next one: 100 + 27 ms.
    expect(res.cdf(126)).toBeCloseTo(0, 6);
    expect(res.cdf(127)).toBeCloseTo(0.5, 6);
    // held: U(0, 60 s) + 3 * 100 / 2 + 27 ms, half of it by 30.177 s.
    expect(res.cdf(30_177)).toBeCloseTo(0.75, 2);
  });
});

describe("a prediction for some resolvers", () => {
  it("is the whole prediction's for those, edges included, with every resolver's client load", () => {
    // Four resolvers below one edge: the edge's copy is held by their questions together.
    const four = parseTopology({
      defaults: { link: { latency: { kind: "fixed", ms: 5 } }, pollIntervalMs: 1_000 },
      edges: [
        { id: "regional", parent: "origin", tier: "regional" },
        { id: "edge", parent: "regional" },
      ],
      resolvers: ["a", "b", "c", "d"].map((id) => ({
        id,
        upstream: "edge",
        link: { latency: { kind: "fixed", ms: 2 + id.charCodeAt(0) - 97 } },
      })),
    });
    const o = predictOptions(four, { mode: "ttl", ttlSec: 60, probeMs: 100, clientQps: 1 / 60 });
    const whole = predict(four, o);
    const some = predict(four, o, (j) => ["b", "d"].includes(four.resolvers[j]!.id));
    expect(some.map((p) => p.nodeId)).toEqual(["regional", "edge", "b", "d"]);
    for (const p of some) {
      const w = whole.find((q) => q.nodeId === p.nodeId)!;
      expect(p.boundMs).toBe(w.boundMs);
      for (const ms of [100, 1_000, 20_000, 45_000]) expect(p.cdf(ms)).toBe(w.cdf(ms));
    }
    // The client load of the two left out counts: alone, b and d hold the edge's copy less.
    const alone = predict({ ...four, resolvers: four.resolvers.filter((r) => r.id !== "a") }, o);
    const b = (ps: typeof whole) => ps.find((p) => p.nodeId === "b")!.cdf(20_000);
    expect(b(alone)).not.toBe(b(some));
  });
});

describe("purge modes with the bus", () => {
  it("an edge is fresh after its own link, the next question and one refetch through the chain", () => {
    const edge = byId({ mode: "invalidate" }).get("edge")!;
    // arrival 5 ms, question at once, refetch 5 + 20 ms: a step at 30 ms.
    expect(edge.cdf(29.9)).toBe(0);
    expect(edge.cdf(30)).toBe(1);
    // bound: 5 + 0 + (1 + 1 floor retry) * 25 + 5 = 60 ms.
    expect(edge.boundMs).toBe(60);
    expect(edge.raceProbability).toBe(0);
  });

  it("a resolver without a floor purged before its edge refills the old value: ttl bound", () => {
    const res = byId({ mode: "soft", resolverFloor: false }).get("res")!;
    // resolver link 2 ms < edge link 5 ms: X = 2 + 0 + 2 = 4 ms < 5 ms, the refill races the edge.
    expect(res.raceProbability).toBe(1);
    expect(res.boundMs).toBe(90_000 + 27);
  });

  it("a resolver with a version floor does not race: arrival + retries through the chain", () => {
    const res = byId({ mode: "soft" }).get("res")!;
    expect(res.raceProbability).toBe(0);
    // 2 + 0 + (1 + 1) * (2 + 5 + 20) + 2
    expect(res.boundMs).toBe(58);
    expect(res.cdf(29)).toBe(1);
  });

  it("push rewrites in place: fresh at the event's arrival, no refetch", () => {
    const p = byId({ mode: "push" });
    expect(p.get("edge")!.cdf(4.9)).toBe(0);
    expect(p.get("edge")!.cdf(5)).toBe(1);
    expect(p.get("regional")!.cdf(20)).toBe(1);
  });

  it("a resolver without a floor purged after its edge refills the new value: no race", () => {
    const slow = parseTopology({
      ...chain,
      resolvers: [{ id: "res", upstream: "edge", link: { latency: { kind: "fixed", ms: 8 } } }],
    });
    const res = predict(
      slow,
      predictOptions(slow, { mode: "invalidate", ttlSec: 60, probeMs: 10, resolverFloor: false }),
    ).find((p) => p.nodeId === "res")!;
    expect(res.raceProbability).toBe(0);
    // 8 ms arrival + 10 ms probe + 8 + 5 + 20 ms refetch.
    expect(res.boundMs).toBe(51);
    // purged at 8 ms, asked by the observer at 10 ms, then 33 ms of refetch.
    expect(res.cdf(42.9)).toBe(0);
    expect(res.cdf(43)).toBe(1);
  });

  it("with the bus off, anti-entropy bounds the edge: poll interval (1 + jitter) + feed + refetch", () => {
    const edge = byId({ mode: "invalidate", bus: false }).get("edge")!;
    // 1000 * 1.2 + 5 (feed) + 0 + 2 * 25 + 5.
    expect(edge.boundMs).toBe(1_200 + 5 + 50 + 5);
    // a poll U(0, 1000) after t0, then 5 + 25 ms: half by 530 ms.
    expect(edge.cdf(530)).toBeCloseTo(0.5, 1);
  });

  it("nodes whose chains of link models read the same share one prediction, others do not", () => {
    const fast = { latency: { kind: "fixed" as const, ms: 2 } };
    const t = parseTopology({
      ...chain,
      edges: [
        ...chain.edges,
        // A second edge whose link is equal to the first's, as another object.
        { id: "edge-2", parent: "regional", link: { latency: { kind: "fixed", ms: 5 } } },
        { id: "edge-3", parent: "regional", link: { latency: { kind: "fixed", ms: 7 } } },
      ],
      resolvers: [
        { id: "r1", upstream: "edge", link: fast },
        { id: "r2", upstream: "edge-2", link: { ...fast } },
        { id: "r3", upstream: "edge", link: fast },
        { id: "r4", upstream: "edge-3", link: fast },
        { id: "r5", upstream: "edge", link: { latency: { kind: "fixed", ms: 3 } } },
        { id: "r6", upstream: "origin", link: fast },
      ],
    });
    const p = new Map(
      predict(t, predictOptions(t, { ttlSec: 60, probeMs: 0, clientQps: 0 })).map((x) => [
        x.nodeId,
        x,
      ]),
    );
    const cdf = (id: string) => p.get(id)!.cdf;
    expect(cdf("edge-2")).toBe(cdf("edge"));
    expect(cdf("edge-3")).not.toBe(cdf("edge"));
    expect(cdf("r2")).toBe(cdf("r1"));
    expect(cdf("r3")).toBe(cdf("r1"));
    expect(cdf("r4")).not.toBe(cdf("r1"));
    expect(cdf("r5")).not.toBe(cdf("r1"));
    expect(cdf("r6")).not.toBe(cdf("r1"));
    // A resolver straight under the origin is its own tier-1 node: one link.
    expect(p.get("r6")!.depth).toBe(1);
    expect(p.get("r1")!.depth).toBe(3);
  });

  it("pools node CDFs into one curve for the report", () => {
    const curve = pooledCurve(predict(chain, opts({ mode: "invalidate", resolverFloor: false })));
    expect(curve.boundMs).toBe(90_027);
    const at = (t: number) => curve.points.find(([x]) => x >= t)![1];
    // regional (20 + 20 ms) and edge (5 + 25 ms) are fresh by 100 ms; the racing resolver is not.
    expect(at(100)).toBeCloseTo(2 / 3, 2);
  });
});

describe("what partitions and loss do to the bound", () => {
  const faulty = parseTopology({
    defaults: {
      link: { latency: { kind: "fixed", ms: 5 } },
      pollIntervalMs: 1_000,
      pollJitter: 0.2,
    },
    edges: [
      {
        id: "regional",
        parent: "origin",
        tier: "regional",
        link: {
          latency: { kind: "fixed", ms: 20 },
          partitions: [
            { startMs: 1_000, endMs: 3_000 },
            { startMs: 10_000, endMs: 10_500 },
          ],
        },
      },
      { id: "edge", parent: "regional", link: { latency: { kind: "fixed", ms: 5 }, loss: 0.1 } },
    ],
    resolvers: [],
  });
  const clean = byId({ mode: "invalidate" });
  const p = new Map(
    predict(faulty, predictOptions(faulty, { ttlSec: 60, swrSec: 30, probeMs: 0 })).map((x) => [
      x.nodeId,
      x,
    ]),
  );

  it("adds the longest partition window on the chain, and says so", () => {
    const regional = p.get("regional")!;
    expect(regional.boundMs).toBe(clean.get("regional")!.boundMs + 2_000);
    expect(regional.boundNotes).toEqual([expect.stringContaining("partitions: + 2000 ms")]);
    expect(clean.get("regional")!.boundNotes).toEqual([]);
  });

  it("adds the polls that loss may drop in a row at the quantile", () => {
    const edge = p.get("edge")!;
    // loss 0.1 at the 0.999 quantile: 3 polls, 2 more than the one already counted (1.2 s each).
    expect(edge.boundNotes).toEqual([
      expect.stringContaining("partitions: + 2000 ms"),
      expect.stringContaining("loss 10 %: + 2 poll interval(s) (2400 ms)"),
    ]);
    // The first poll after a lost event (1.2 s) is in the bound already.
    expect(edge.boundMs).toBe(clean.get("edge")!.boundMs + 1_200 + 2_000 + 2_400);
  });
});
