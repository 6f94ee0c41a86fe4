import { afterEach, describe, expect, it } from "vitest";
import { NodeSync } from "../../core/sync.ts";
import { Checker } from "../../infra/sim/checker.ts";
import { fuzz, fuzzCase, fuzzLine } from "../../infra/sim/fuzz.ts";
import { SimLoop } from "../../infra/sim/loop.ts";
import { World } from "../../infra/sim/world.ts";
import { parseTopology } from "../../infra/topology.ts";

const realStart = NodeSync.prototype.start;
afterEach(() => {
  NodeSync.prototype.start = realStart;
});

/** Takes the version floor at start away (core/sync.ts `floorAtStart`), as before it existed. */
function startWithoutFloor(): void {
  NodeSync.prototype.start = function (this: NodeSync) {
    (this as unknown as { o: { floorAtStart?: boolean } }).o.floorAtStart = false;
    return realStart.call(this);
  };
}

const fixed = (ms: number, partitions: { startMs: number; endMs: number }[] = []) => ({
  latency: { kind: "fixed", ms },
  partitions,
});

/**
 * origin <-20 ms- regional-1 <-5 ms- edge-1 <-3 ms- res-1, invalidate over
 * the bus, TTL of an hour, no polls. The regional's link is cut from 4 s to
 * 60 s: it misses the change committed at 5 s and keeps the old version,
 * while edge-1 applies the purge, acks it and serves the new version (its
 * refill with X-Min-Serial goes around the regional to the origin). Then
 * edge-1 restarts at 20 s and is back, empty, at 20.5 s.
 */
async function restartUnderAStaleParent() {
  const topology = parseTopology({
    seed: 3,
    defaults: { pollIntervalMs: 3_600_000, pollJitter: 0 },
    edges: [
      {
        id: "regional-1",
        parent: "origin",
        tier: "regional",
        link: fixed(20, [{ startMs: 4_000, endMs: 60_000 }]),
      },
      { id: "edge-1", parent: "regional-1", link: fixed(5) },
    ],
    resolvers: [{ id: "res-1", upstream: "edge-1", link: fixed(3) }],
  });
  const loop = new SimLoop();
  const served: { id: string; atMs: number; version: number | undefined }[] = [];
  const acked: { id: string; atMs: number; serial: number }[] = [];
  let checker: Checker | undefined;
  const world: World = new World(
    {
      topology,
      mode: "invalidate",
      seed: 3,
      zone: { ttl: 3_600, staleWhileRevalidate: 0, staleIfError: 86_400 },
      faults: { restarts: [{ nodeId: "edge-1", window: { startMs: 20_000, endMs: 20_500 } }] },
    },
    loop,
    {
      served: (i, version, stale) => {
        if (!stale) served.push({ id: world.nodes[i]!.id, atMs: loop.now(), version });
        checker?.served(i, version, stale);
      },
      // Questions are counted in bulk only without node restarts (run.ts).
      servedTimes: () => {
        throw new Error("no held questions with node restarts");
      },
      failed: () => {},
      touched: () => loop.markDirty(),
      acked: (i, _zone, serial) => {
        acked.push({ id: world.nodes[i]!.id, atMs: loop.now(), serial });
        checker?.acked(i, serial);
      },
    },
  );
  await world.start();
  checker = new Checker(
    world.size,
    (i) => world.nodes[i]!.id,
    () => loop.now(),
  );
  checker.changed(world.origin.zones()[0]!.serial);
  for (const n of world.nodes) n.ask();
  await loop.runUntil(5_000);
  const serial = await world.commit(1);
  checker.changed(serial);
  loop.markDirty();
  await loop.runUntil(10_000);
  for (const n of world.nodes) n.ask();
  await loop.runUntil(30_000);
  await world.stop();
  const edge1 = (from: number) =>
    served.filter((s) => s.id === "edge-1" && s.atMs >= from).map((s) => s.version);
  return { world, checker, serial, acked, edge1 };
}

describe("simulate: node restarts", () => {
  it("a node restarted under a stale parent comes back empty and serves nothing older than it acked", async () => {
    const { world, checker, serial, acked, edge1 } = await restartUnderAStaleParent();
    expect(world.restarts).toEqual([{ nodeId: "edge-1", downAtMs: 20_000, upAtMs: 20_500 }]);
    // Before the restart edge-1 acked the change and served it.
    expect(acked.some((a) => a.id === "edge-1" && a.serial === serial && a.atMs < 20_000)).toBe(
      true,
    );
    expect(edge1(10_000)[0]).toBe(serial);
    // Back empty, asked once: its floor refuses the regional's old copy and it
    // fills from the origin (regional-1 still serves the old version).
    expect(edge1(20_500)).toEqual([serial]);
    // Registering again acks nothing: it applied no change since.
    expect(acked.filter((a) => a.id === "edge-1" && a.atMs >= 20_000)).toEqual([]);
    expect(checker.violation).toBeUndefined();
  });

  it("without the floor at start, the checker catches the restarted node serving the old version", async () => {
    startWithoutFloor();
    const { checker, edge1 } = await restartUnderAStaleParent();
    expect(edge1(20_500)).toEqual([1]);
    expect(checker.violation).toEqual({
      rule: "monotonic-reads",
      nodeId: "edge-1",
      atMs: 20_505,
      detail: "served version 1 after serving version 2 at 10015.000 ms",
    });
  });

  it("cases the fuzz found: a resolver back empty behind a lossy link; a restart due after the run", async () => {
    // Seed 795: res-1 restarts with nothing cached and its link drops requests;
    // a failed refresh used to touch it, so it was asked again in the same
    // virtual instant, forever. Seed 851: a restart due while the world was
    // stopping subscribed to the closed bus and crashed the process.
    for (const seed of [795, 851]) {
      const [o] = await fuzz(seed, 1);
      expect(o!.case.faults.restarts?.length, `seed ${seed}`).toBeGreaterThan(0);
      expect(o!.result.violation, `seed ${seed}`).toBeUndefined();
    }
  }, 30_000);

  it("the fuzz schedules node restarts of edges and resolvers, and the checkers stay clean", async () => {
    // The short fuzz run (simulate-check.test.ts, seeds 1-25) has node restarts.
    const short = Array.from({ length: 25 }, (_, i) => fuzzCase(i + 1));
    expect(short.filter((c) => c.faults.restarts?.length).length).toBeGreaterThanOrEqual(3);
    // Six cases with restarts, run here: each restart happens (down, then back) and nothing breaks.
    const seeds: number[] = [];
    for (let s = 1; seeds.length < 6; s++) if (fuzzCase(s).faults.restarts?.length) seeds.push(s);
    const outcomes = [];
    for (const s of seeds) outcomes.push(...(await fuzz(s, 1)));
    expect(outcomes.filter((o) => o.result.violation).map(fuzzLine)).toEqual([]);
    const restarted = outcomes.flatMap((o) => o.result.restarts);
    expect(restarted.some((r) => r.nodeId.startsWith("res-"))).toBe(true);
    expect(restarted.some((r) => !r.nodeId.startsWith("res-"))).toBe(true);
    for (const r of restarted) expect(r.upAtMs).toBeGreaterThan(r.downAtMs);
    expect(outcomes.map((o) => o.case.summary).join("\n")).toContain("node restart");
  }, 60_000);
});
