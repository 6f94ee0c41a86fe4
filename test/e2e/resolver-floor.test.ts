/**
 * The resolver's receipt, live: once res-1 reports a change INSYNC, dig at
 * res-1 sees it, even while its edge has not applied the change yet (the
 * edge's link is slow, the resolver's is fast). The version floor makes the
 * refetch carry X-Min-Serial, so the lagging edge misses instead of handing
 * the old answer back.
 */
import { afterEach, describe, expect, it } from "vitest";
import { scrape, total } from "../support/prom.ts";
import { waitFor } from "../support/wait.ts";
import { changeStatus, digShort, node, putA, smallTopology, startTopology } from "./support.ts";

type Running = Awaited<ReturnType<typeof startTopology>>;
let running: Running | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

const EDGE_LINK_MS = 800;

function slowEdge(extra: Record<string, unknown> = {}) {
  return smallTopology({
    defaults: { pollIntervalMs: 60_000 },
    edges: [
      { id: "regional-1", tier: "regional", parent: "origin" },
      {
        id: "edge-1",
        parent: "regional-1",
        link: { latency: { kind: "fixed", ms: EDGE_LINK_MS } },
      },
    ],
    resolvers: [{ id: "res-1", upstream: "edge-1", link: { latency: { kind: "fixed", ms: 0 } } }],
    ...extra,
  });
}

/** Polls the receipts until `nodeId` reports the change in sync. */
async function waitNodeInSync(t: Running, changeId: string, nodeId: string): Promise<void> {
  await waitFor(
    `${nodeId} to ack ${changeId}`,
    async () =>
      (await changeStatus(t, changeId)).nodes.find((n) => n.id === nodeId)?.status === "INSYNC",
    3_000,
    10,
  );
}

async function resolverMetric(t: Running, id: string, name: string): Promise<number> {
  const { samples } = await scrape(`${node(t, id).extra.admin}/metrics`, {
    headers: { authorization: `Bearer ${node(t, id).token}` },
  });
  return total(samples, name);
}

describe("resolver receipts are read-your-writes", () => {
  it("INSYNC at res-1 means dig at res-1 answers the change, while edge-1 still lags", async () => {
    running = await startTopology(slowEdge());
    const res1 = node(running, "res-1").address;
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.10");

    const { changeId } = await putA(running, "www", "192.0.2.77");
    await waitNodeInSync(running, changeId, "res-1");
    const edge = (await changeStatus(running, changeId)).nodes.find((n) => n.id === "edge-1");
    expect(edge?.status).toBe("PENDING");
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.77");
    expect(await resolverMetric(running, "res-1", "resolver_floor_refusals_total")).toBe(0);
  });

  it("push mode: the change is answered from the rewritten entry, without an upstream query", async () => {
    running = await startTopology(slowEdge({ zones: { "example.test": { mode: "push" } } }));
    const res1 = node(running, "res-1").address;
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.10");
    const upstreamBefore = await resolverMetric(
      running,
      "res-1",
      "resolver_upstream_queries_total",
    );

    const { changeId } = await putA(running, "www", "192.0.2.78");
    await waitNodeInSync(running, changeId, "res-1");
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.78");
    expect(await resolverMetric(running, "res-1", "resolver_pushed_total")).toBe(1);
    expect(await resolverMetric(running, "res-1", "resolver_upstream_queries_total")).toBe(
      upstreamBefore,
    );
  });
});
