/**
 * `observe: "measure"` (infra/sim/prober.ts) times each node as `propagate
 * measure` does: asked at t0, then again intervalMs after each answer, and
 * only those answers count. Against the exact observer on the same seed, a
 * node can only come out later, by at most one interval and one refetch
 * through its chain (the question that finds the purge waits for the next
 * probe, then for the fetch it starts).
 */
import { describe, expect, it } from "vitest";
import { WAN } from "../../bench/live-vs-sim.ts";
import { simulate } from "../../infra/sim/run.ts";
import { parseTopology } from "../../infra/topology.ts";
import { ZONE_DEFAULTS } from "../../origin/store.ts";

const PROBE_MS = 10;
/** One-way delay summed over each node's chain to the origin (bench/live-vs-sim.ts). */
const CHAIN_MS: Record<string, number> = {
  "regional-1": 80,
  "edge-1": 110,
  "edge-2": 110,
  "res-1": 120,
  "res-2": 80,
};

const run = (observe: "exact" | "measure") =>
  simulate({
    topology: parseTopology(WAN),
    mode: "invalidate",
    changes: 6,
    seed: 5,
    zone: ZONE_DEFAULTS,
    clientQps: 0,
    observe,
    probeMs: PROBE_MS,
  });

describe("the simulator observing as propagate measure does", () => {
  it("is never earlier than exact, and later by at most one interval and one refetch", async () => {
    const [exact, measured] = [await run("exact"), await run("measure")];
    expect(measured.violation).toBeUndefined();
    for (const [i, m] of measured.nodes.entries()) {
      const e = exact.nodes[i]!;
      expect(m.nodeId).toBe(e.nodeId);
      expect(m.unconverged).toBe(0);
      expect(m.timesMs).toHaveLength(e.timesMs.length);
      for (const [k, t] of m.timesMs.entries()) {
        expect(t, `${m.nodeId} change ${k + 1}`).toBeGreaterThanOrEqual(e.timesMs[k]!);
        expect(t, `${m.nodeId} change ${k + 1}`).toBeLessThanOrEqual(
          e.timesMs[k]! + PROBE_MS + CHAIN_MS[m.nodeId]!,
        );
      }
    }
    // res-2, 80 ms from the origin: the purge lands at 80 ms; the exact observer asks
    // then (fresh at 80 + 80), measure's next question comes 10 ms later (+ 80).
    const res2 = (r: typeof exact) => r.nodes.find((n) => n.nodeId === "res-2")!.timesMs;
    expect(res2(exact)).toContain(160);
    expect(res2(measured)).toContain(170);
  });
});
