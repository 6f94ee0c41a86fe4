import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { measure } from "../../infra/measure.ts";
import { predict, predictOptions } from "../../infra/predict.ts";
import { parseTopology } from "../../infra/topology.ts";
import { smallTopology, startTopology } from "./support.ts";

const spec = smallTopology({
  defaults: { pollIntervalMs: 60_000, link: { latency: { kind: "fixed", ms: 10 } } },
});
let t: Awaited<ReturnType<typeof startTopology>>;
beforeAll(async () => {
  t = await startTopology(spec);
});
afterAll(async () => {
  await t?.close();
});

describe("propagate measure", () => {
  it("follows each change to every registered node, beside the receipts", async () => {
    const m = await measure({
      originUrl: t.originUrl,
      token: t.token,
      zone: "example.test",
      label: "_measure",
      ttl: 60,
      samples: 3,
      intervalMs: 10,
      timeoutMs: 10_000,
    });
    expect(m.nodes.map((n) => n.nodeId).sort()).toEqual([
      "edge-1",
      "edge-2",
      "regional-1",
      "res-1",
      "res-2",
    ]);
    expect(m.nodes.find((n) => n.nodeId === "res-1")?.kind).toBe("resolver");
    for (const n of m.nodes) {
      expect(n.unconverged, n.nodeId).toBe(0);
      // Probe errors are counted, not hidden: a healthy topology has none.
      expect(n.errors, n.nodeId).toBe(0);
      expect(n.timesMs, n.nodeId).toHaveLength(3);
      expect(n.receiptMs, n.nodeId).toHaveLength(3);
    }
    expect(m.changes.every((c) => c.convergedMs !== undefined)).toBe(true);

    // With a 10 ms link per hop and invalidation over the bus, no node may take
    // longer than the predicted bound plus the live stack's own overhead.
    const topology = parseTopology(spec);
    const bounds = new Map(
      predict(topology, predictOptions(topology, { ttlSec: 60, probeMs: 10 })).map((p) => [
        p.nodeId,
        p.boundMs,
      ]),
    );
    for (const n of m.nodes) {
      expect(Math.max(...n.timesMs), n.nodeId).toBeLessThan(bounds.get(n.nodeId)! + 1_000);
      // An invalidation never waits for the TTL: far below 60 s.
      expect(Math.max(...n.timesMs)).toBeLessThan(5_000);
    }
  });
});
