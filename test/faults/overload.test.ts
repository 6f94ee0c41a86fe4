/**
 * Overload: a burst of concurrent misses for one name makes one upstream
 * request per tier (resolver -> edge -> regional -> origin), whatever the
 * burst's size: coalescing at every tier, counted by each tier's metrics.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { node, putA, startTopology } from "../e2e/support.ts";
import { dig } from "../support/dig.ts";
import { scrape, total } from "../support/prom.ts";

let t: Awaited<ReturnType<typeof startTopology>>;
beforeAll(async () => {
  t = await startTopology({
    name: "overload",
    origin: { http: "127.0.0.1:0", dns: "127.0.0.1:0" },
    // 30 ms per hop keeps the first fill in flight while the burst arrives.
    defaults: { pollIntervalMs: 600_000, link: { latency: { kind: "fixed", ms: 30 } } },
    edges: [
      { id: "regional-1", tier: "regional", parent: "origin" },
      { id: "edge-1", parent: "regional-1" },
    ],
    resolvers: [{ id: "res-1", upstream: "edge-1" }],
  });
});
afterAll(async () => {
  await t?.close();
});

async function originReads(): Promise<number> {
  return total((await scrape(`${t.originUrl}/metrics`)).samples, "origin_http_reads_total");
}

async function edgeMisses(id: string): Promise<number> {
  // The edge's JSON counters (its Prometheus text is the default).
  const res = await fetch(`${node(t, id).address}/metrics`, {
    headers: { accept: "application/json" },
  });
  const m = (await res.json()) as { misses: number };
  return m.misses;
}

async function resolverUpstream(): Promise<number> {
  const { samples } = await scrape(`${node(t, "res-1").extra.admin}/metrics`, {
    headers: { authorization: `Bearer ${node(t, "res-1").token}` },
  });
  return total(samples, "resolver_upstream_queries_total");
}

describe("a burst of misses for one name", () => {
  it("makes one upstream request per tier", async () => {
    await putA(t, "burst", "192.0.2.77");
    const before = {
      origin: await originReads(),
      regional: await edgeMisses("regional-1"),
      edge: await edgeMisses("edge-1"),
      resolver: await resolverUpstream(),
    };
    const addr = node(t, "res-1").address;
    const i = addr.lastIndexOf(":");
    const answers = await Promise.all(
      Array.from({ length: 20 }, () =>
        dig([`@${addr.slice(0, i)}`, "-p", addr.slice(i + 1), "burst.example.test", "A", "+short"]),
      ),
    );
    expect(new Set(answers.map((a) => a.trim()))).toEqual(new Set(["192.0.2.77"]));
    expect({
      origin: (await originReads()) - before.origin,
      regional: (await edgeMisses("regional-1")) - before.regional,
      edge: (await edgeMisses("edge-1")) - before.edge,
      resolver: (await resolverUpstream()) - before.resolver,
    }).toEqual({ origin: 1, regional: 1, edge: 1, resolver: 1 });
  });
});
