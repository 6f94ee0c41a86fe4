import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { simulate } from "../../infra/sim/run.ts";
import { loadTopology, parseTopology } from "../../infra/topology.ts";

const fixed = (ms: number) => ({ latency: { kind: "fixed", ms } });

/** origin <-20 ms- regional <-5 ms- edge <-3 ms- resolver; no polls, no clients, TTL of an hour. */
const chain = parseTopology({
  seed: 1,
  defaults: { pollIntervalMs: 3_600_000, pollJitter: 0 },
  edges: [
    { id: "regional", parent: "origin", tier: "regional", link: fixed(20) },
    { id: "edge", parent: "regional", link: fixed(5) },
  ],
  resolvers: [{ id: "res", upstream: "edge", link: fixed(3) }],
});

const run = (mode: "push" | "invalidate") =>
  simulate({
    topology: chain,
    mode,
    changes: 3,
    seed: 5,
    zone: { ttl: 3_600, staleWhileRevalidate: 0, staleIfError: 86_400 },
    clientQps: 0,
  });

const times = (r: Awaited<ReturnType<typeof run>>) =>
  Object.fromEntries(r.nodes.map((n) => [n.nodeId, n.timesMs]));

describe("simulate: exact time-to-fresh", () => {
  it("push: each node is fresh the instant the event crosses its own link", async () => {
    // The bus delivers over each node's link; the pushed RRset is served at once.
    const r = await run("push");
    expect(r.violation).toBeUndefined();
    expect(times(r)).toEqual({ regional: [20, 20, 20], edge: [5, 5, 5], res: [3, 3, 3] });
  });

  it("invalidate: the first read-your-writes fill to reach the origin decides", async () => {
    // The first change finds the warm-up's entries expired (the warm-up lasts a
    // TTL, with no clients), so the regional refills from the origin in 20 ms.
    // Later ones find them held: res is purged at 3 ms and refills with
    // X-Min-Serial: edge at 6, regional at 11 (its entry is older, so it
    // misses), origin at 31; that answer fills all three at 31. The regional's
    // own purge (at 20 ms) would only reach the origin at 40.
    const r = await run("invalidate");
    expect(r.violation).toBeUndefined();
    const t = times(r);
    expect(t.regional![0]).toBe(20);
    for (const id of ["regional", "edge", "res"]) expect(t[id]!.slice(1), id).toEqual([31, 31]);
  });

  it("the default topology in push mode is not on a 100 ms grid", async () => {
    const path = fileURLToPath(new URL("../../infra/topologies/default.json", import.meta.url));
    const topology = await loadTopology(path);
    const r = await simulate({
      topology,
      mode: "push",
      changes: 3,
      seed: topology.seed,
      zone: { ttl: 60, staleWhileRevalidate: 30, staleIfError: 86_400 },
      clientQps: 0.05,
    });
    const all = r.nodes.flatMap((n) => n.timesMs);
    expect(all).toHaveLength(3 * r.nodes.length);
    expect(new Set(all).size).toBeGreaterThan(r.nodes.length);
    expect(all.every((t) => t > 0 && t < 100)).toBe(true);
    expect(r.violation).toBeUndefined();
  });
});
