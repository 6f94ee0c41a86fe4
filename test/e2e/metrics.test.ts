/**
 * GET /metrics on every kind of node, scraped without a token: origin, a
 * Node edge, a resolver (its admin endpoint) and a Worker edge (workerd,
 * rendered without prom-client). Real traffic (HTTP reads, dig, a change
 * through the bus and the relay) moves the counters each node reports.
 */
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Exposition, parseExposition, scrape } from "../support/prom.ts";
import { startWorkerEdge } from "../support/worker.ts";
import { digShort, node, putA, startTopology, waitConverged } from "./support.ts";

let t: Awaited<ReturnType<typeof startTopology>>;
let mf: Miniflare;
const www = "/resolve?name=www.example.test&type=A";

beforeAll(async () => {
  t = await startTopology({
    name: "metrics",
    edges: [
      { id: "regional-1", tier: "regional", parent: "origin" },
      { id: "edge-1", parent: "regional-1" },
    ],
    resolvers: [{ id: "res-1", upstream: "edge-1" }],
  });
  mf = await startWorkerEdge(t.dir, {
    PARENT: t.originUrl,
    EDGE_ID: "worker-1",
    TOKEN: t.nodeToken,
  });
  const workerUrl = await mf.ready;
  const reg = await fetch(`${t.originUrl}/v1/nodes`, {
    method: "POST",
    headers: { authorization: `Bearer ${t.nodeToken}`, "content-type": "application/json" },
    body: JSON.stringify({
      id: "worker-1",
      tier: "edge",
      address: workerUrl.href,
      purgeUrl: new URL("/purge", workerUrl).href,
    }),
  });
  expect(reg.status).toBe(201);
}, 60_000);

afterAll(async () => {
  await mf?.dispose();
  await t?.close();
});

const scrapeEdge = (id: string) => scrape(`${node(t, id).address}/metrics`);
const scrapeResolver = () => scrape(`${node(t, "res-1").extra.admin}/metrics`);
const scrapeOrigin = () => scrape(`${t.originUrl}/metrics`);
async function scrapeWorker(): Promise<Exposition> {
  const res = await mf.dispatchFetch("http://worker.test/metrics");
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
  return parseExposition(await res.text());
}

function delta(before: Exposition, after: Exposition, key: string): number {
  return (after.samples.get(key) ?? 0) - (before.samples.get(key) ?? 0);
}

describe("GET /metrics on every node", () => {
  it("counters move with traffic and with a change travelling the fabric", async () => {
    const before = {
      origin: await scrapeOrigin(),
      edge: await scrapeEdge("edge-1"),
      res: await scrapeResolver(),
      worker: await scrapeWorker(),
    };
    expect([...before.edge.nodes]).toEqual(["edge-1"]);
    expect([...before.res.nodes]).toEqual(["res-1"]);
    expect([...before.worker.nodes]).toEqual(["worker-1"]);

    // A miss then a hit at edge-1, at the Worker and at the resolver.
    for (let i = 0; i < 2; i++) {
      expect((await fetch(`${node(t, "edge-1").address}${www}`)).status).toBe(200);
      expect((await mf.dispatchFetch(`http://worker.test${www}`)).status).toBe(200);
      expect(await digShort(node(t, "res-1").address, "mail.example.test")).not.toBe("");
    }
    const { changeId } = await putA(t, "www", "192.0.2.77");
    expect((await waitConverged(t, changeId, 15_000)).status).toBe("INSYNC");

    const after = {
      origin: await scrapeOrigin(),
      edge: await scrapeEdge("edge-1"),
      res: await scrapeResolver(),
      worker: await scrapeWorker(),
    };
    // res-1 asks edge-1 (DoH): its miss is one more miss at edge-1.
    for (const [kind, misses] of [
      ["edge", 2],
      ["worker", 1],
    ] as const) {
      const [b, a] = [before[kind], after[kind]];
      expect(delta(b, a, "edge_requests_total"), kind).toBe(1 + misses);
      expect(delta(b, a, "edge_cache_hits_total"), kind).toBe(1);
      expect(delta(b, a, "edge_cache_misses_total"), kind).toBe(misses);
      expect(delta(b, a, "edge_upstream_latency_seconds_count"), kind).toBe(misses);
      expect(delta(b, a, 'propagate_purges_applied_total{mode="invalidate"}'), kind).toBe(1);
      expect(delta(b, a, "propagate_change_apply_seconds_count"), kind).toBe(1);
      expect(a.samples.get("edge_cache_entries"), kind).toBeGreaterThanOrEqual(0);
      expect(a.samples.get("edge_cache_bytes"), kind).toBeGreaterThanOrEqual(0);
      expect(a.types.get("edge_upstream_latency_seconds"), kind).toBe("histogram");
    }
    // The bus delivered the change to edge-1 (the Worker has no bus: the relay posts it).
    expect(delta(before.edge, after.edge, "propagate_bus_events_total")).toBeGreaterThanOrEqual(1);
    expect(after.edge.samples.get("propagate_bus_lag_seconds")).toBeGreaterThanOrEqual(0);

    expect(delta(before.res, after.res, "resolver_queries_total")).toBe(2);
    expect(delta(before.res, after.res, "resolver_cache_hits_total")).toBe(1);
    expect(delta(before.res, after.res, "resolver_cache_misses_total")).toBe(1);
    expect(delta(before.res, after.res, 'resolver_responses_total{rcode="0"}')).toBe(2);
    expect(delta(before.res, after.res, "resolver_upstream_latency_seconds_count")).toBe(1);
    expect(delta(before.res, after.res, 'propagate_purges_applied_total{mode="invalidate"}')).toBe(
      1,
    );
    expect(delta(before.res, after.res, "propagate_change_apply_seconds_count")).toBe(1);

    // Four nodes took the change: four first receipts at the origin.
    expect(delta(before.origin, after.origin, 'origin_writes_committed_total{op="update"}')).toBe(
      1,
    );
    expect(delta(before.origin, after.origin, "propagate_receipt_seconds_count")).toBe(4);
    expect(delta(before.origin, after.origin, "propagate_receipts_total")).toBeGreaterThanOrEqual(
      4,
    );
    expect(after.origin.samples.get("propagate_nodes")).toBe(4);
  });

  it("the Worker renders the Node edge's names", async () => {
    const edge = await scrapeEdge("edge-1");
    const worker = await scrapeWorker();
    const ours = (e: Exposition) =>
      [...e.types.keys()].filter((n) => !/^(process|nodejs)_/.test(n)).sort();
    const nodeOnly = ours(edge).filter((n) => !ours(worker).includes(n));
    // What only a bus-connected node has: its sync counters and the bus lag.
    expect(
      nodeOnly.every((n) => /^propagate_(bus|feed|resyncs|polls|poll_errors|ack_)/.test(n)),
    ).toBe(true);
    expect(ours(worker).every((n) => ours(edge).includes(n))).toBe(true);
    expect(ours(worker)).toContain("edge_stale_served_total");
  });

  it("the resolver's metrics need no token, its purge still does", async () => {
    const admin = node(t, "res-1").extra.admin;
    expect((await fetch(`${admin}/metrics`)).status).toBe(200);
    expect((await fetch(`${admin}/purge`, { method: "POST", body: "{}" })).status).toBe(401);
  });
});
