/**
 * The same topology, live and simulated (issue 12 item 5). The run is
 * `bench/live-vs-sim.ts` (its header has the topology): WAN links, which the
 * simulator models exactly, asked the same way on both sides (as
 * `propagate measure` asks: every 10 ms after each answer, edges by DNS JSON,
 * resolvers by DNS; the simulator with `observe: "measure"`). Live, every
 * node also has a zero-latency twin probed after the same changes, whose time
 * is the stack's own (HTTP, JSON, DNS, acks, the machine's load), which the
 * simulator does not model.
 *
 * Per node, live against simulated: p50 within [sim - 10 %, sim + 10 % +
 * the twin's p50], p99 (of 10: the maximum) at least sim - 20 %. The lower
 * ends are the tolerances as they stand: a live node can be no
 * faster than its links. The upper p50 end adds the stack's time measured in
 * the same run, so the check holds with the other core busy (CI runs two
 * suites at once); the upper tail is the per-node bound (every live time
 * within its predicted bound plus the twin's slowest time, one of ten within
 * twice that). On a quiet machine the live p50 was +1..+13 %
 * of the simulated one per node (bench/results/simulate.md, "Live vs
 * simulated"). Per node rather than per tier: the resolver tier mixes res-1
 * (140 ms) and res-2 (170 ms), and a p50 of 20 samples taken at the boundary
 * of two clusters is the largest of one or the smallest of the other.
 * Before the simulator asked as measure does, or resolvers under the origin
 * crossed their link live, this failed: res-2 took 4-33 ms live against 160
 * simulated, the edges 183 against 140.
 */
import { describe, expect, it } from "vitest";
import { liveVsSim, WAN } from "../../bench/live-vs-sim.ts";
import { predict, predictOptions } from "../../infra/predict.ts";
import { parseTopology } from "../../infra/topology.ts";

const PROBE_MS = 10;

describe("live and simulated propagation agree", () => {
  it("per tier, invalidate over the memory bus, WAN links", async () => {
    const { rows, nodes, live, unconverged } = await liveVsSim(10, PROBE_MS);
    expect(unconverged).toBe(0);
    const text = JSON.stringify(nodes);
    console.log(`live vs simulated per tier (ms): ${JSON.stringify(rows)}`);
    expect(nodes).toHaveLength(5);
    for (const n of nodes) {
      expect(n.live.p50, `${n.tier} p50: ${text}`).toBeGreaterThanOrEqual(0.9 * n.sim.p50);
      expect(n.live.p50, `${n.tier} p50: ${text}`).toBeLessThanOrEqual(
        1.1 * n.sim.p50 + n.stack.p50,
      );
      // The p99 of 10 samples is their maximum: one scheduling stall decides it, in
      // one branch and not its twin (res-1 308 ms against 1.2 x 140 + its twin's
      // 139 ms, once with two suites at once). The upper tail is held by the
      // per-node bound below instead; a live maximum below the simulated one by
      // more than 20 % is still a model error.
      expect(n.live.p99, `${n.tier} p99: ${text}`).toBeGreaterThanOrEqual(0.8 * n.sim.p99);
    }
    // No live time beyond its node's predicted bound (probe wait included) by
    // more than the slowest stack time the twin saw; of a node's 10 samples,
    // one may be late by twice that: a scheduling stall in one branch and not
    // in its twin (res-1 437 ms against 398, once in 12 runs with two suites at
    // once). A model error shows in more than one sample.
    const topology = parseTopology(WAN);
    const bound = new Map(
      predict(
        topology,
        predictOptions(topology, { mode: "invalidate", probeMs: PROBE_MS, clientQps: 0 }),
      ).map((p) => [p.nodeId, p.boundMs]),
    );
    const twin = live.filter((n) => n.nodeId.endsWith("-z"));
    const allowance = Math.max(...twin.flatMap((n) => n.timesMs));
    for (const n of live.filter((x) => !x.nodeId.endsWith("-z"))) {
      const b = bound.get(n.nodeId)!;
      const late = n.timesMs.filter((ms) => ms > b + allowance);
      expect(
        late.length,
        `${n.nodeId}: ${n.timesMs.join(", ")} ms against ${b} + ${allowance}`,
      ).toBeLessThanOrEqual(1);
      for (const ms of late) expect(ms, n.nodeId).toBeLessThanOrEqual(b + 2 * allowance);
    }
  }, 90_000);
});
