/**
 * Modelled faults apply to propagation traffic, not to start-up: a topology
 * whose links lose half their messages, or are partitioned from the first
 * instant, still starts, and the nodes join the registry.
 */
import { describe, expect, it } from "vitest";
import { smallTopology, startTopology } from "../e2e/support.ts";

describe("up with faulty links at start", () => {
  for (const [what, link] of [
    ["loss 0.5", { loss: 0.5 }],
    ["a partition from the start", { partitions: [{ startMs: 0, endMs: 600_000 }] }],
  ] as const) {
    it(`starts every node with ${what}`, async () => {
      const t = await startTopology(smallTopology({ seed: 3, defaults: { link } }));
      try {
        const res = await fetch(`${t.originUrl}/v1/nodes`);
        const { nodes } = (await res.json()) as { nodes: { id: string }[] };
        expect(nodes.map((n) => n.id).sort()).toEqual([
          "edge-1",
          "edge-2",
          "regional-1",
          "res-1",
          "res-2",
        ]);
      } finally {
        await t.close();
      }
    });
  }
});
