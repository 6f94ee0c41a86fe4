/** Propagation modes on a live topology: `push` updates edges in place, `ttl` receipts wait for expiry. */
import { afterEach, describe, expect, it } from "vitest";
import type { EdgeMetrics } from "../../edge/cache.ts";
import { cacheStatusOf } from "../support/cache-status.ts";
import {
  changeStatus,
  node,
  putA,
  smallTopology,
  startTopology,
  waitConverged,
} from "./support.ts";

type Running = Awaited<ReturnType<typeof startTopology>>;
let running: Running | undefined;
afterEach(async () => {
  await running?.close();
  running = undefined;
});

async function metrics(t: Running, id: string): Promise<EdgeMetrics> {
  return (await (
    await fetch(`${node(t, id).address}/metrics`, { headers: { accept: "application/json" } })
  ).json()) as EdgeMetrics;
}

async function writeJson(t: Running, method: string, path: string, body: unknown) {
  const res = await fetch(`${t.originUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { serial: number; changeId: string };
}

describe("propagation modes, live", () => {
  it("a zone's own mode, set when it is created, wins over the topology's default", async () => {
    running = await startTopology(smallTopology({ defaults: { pollIntervalMs: 60_000 } }));
    const t = running;
    const bad = await fetch(`${t.originUrl}/v1/zones/pushed.test`, {
      method: "PUT",
      headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
      body: JSON.stringify({ mode: "teleport" }),
    });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ field: "mode" });
    await writeJson(t, "PUT", "/v1/zones/pushed.test", {
      mode: "push",
      rrsets: [{ name: "www", type: "A", ttl: 300, data: ["192.0.2.1"] }],
    });
    const zone = (await (await fetch(`${t.originUrl}/v1/zones/pushed.test`)).json()) as {
      mode: string;
    };
    expect(zone.mode).toBe("push");
    const url = `${node(t, "edge-1").address}/resolve?name=www.pushed.test&type=A`;
    await (await fetch(url)).arrayBuffer();
    const before = (await metrics(t, "edge-1")).parentRequests;
    const { changeId } = await writeJson(t, "PUT", "/v1/zones/pushed.test/rrsets/www/A", {
      ttl: 300,
      data: ["192.0.2.2"],
    });
    expect((await waitConverged(t, changeId, 5_000)).status).toBe("INSYNC");
    const res = await fetch(url);
    expect(await res.json()).toMatchObject({ Answer: [{ data: "192.0.2.2" }] });
    expect((await metrics(t, "edge-1")).parentRequests).toBe(before);
    expect((await metrics(t, "edge-1")).pushed).toBe(1);
    // The change feed tells pollers the zone's mode too.
    const feed = (await (
      await fetch(`${t.originUrl}/v1/zones/pushed.test/changes?since=1`)
    ).json()) as {
      mode: string;
    };
    expect(feed.mode).toBe("push");
  });

  it("push: after a PUT, edges answer the new value from cache without asking their parent", async () => {
    running = await startTopology(
      smallTopology({
        zones: { "example.test": { mode: "push" } },
        defaults: { pollIntervalMs: 60_000 },
      }),
    );
    const url = `${node(running, "edge-1").address}/resolve?name=www.example.test&type=A`;
    expect(await (await fetch(url)).json()).toMatchObject({ Answer: [{ data: "192.0.2.10" }] });
    const before = {
      edge: (await metrics(running, "edge-1")).parentRequests,
      regional: (await metrics(running, "regional-1")).parentRequests,
    };

    const { changeId, serial } = await putA(running, "www", "192.0.2.77", 300);
    expect((await waitConverged(running, changeId, 5_000)).status).toBe("INSYNC");
    const res = await fetch(url);
    expect(await res.json()).toMatchObject({ Answer: [{ data: "192.0.2.77", TTL: 300 }] });
    expect(cacheStatusOf(res, "edge-1")).toMatch(/^edge-1; hit; ttl=(299|300);/);
    expect(res.headers.get("x-serial")).toBe(String(serial));
    expect((await metrics(running, "edge-1")).parentRequests).toBe(before.edge);
    expect((await metrics(running, "regional-1")).parentRequests).toBe(before.regional);
    expect((await metrics(running, "edge-1")).pushed).toBe(1);
  });

  it("ttl: a receipt turns in sync only once the entry the node held has run out", async () => {
    running = await startTopology(
      smallTopology({
        zones: { "ttl.test": { mode: "ttl" } },
        defaults: { pollIntervalMs: 60_000 },
      }),
    );
    // No stale windows: the residual lifetime is the TTL alone.
    await writeJson(running, "PUT", "/v1/zones/ttl.test", {
      staleWhileRevalidate: 0,
      staleIfError: 0,
      rrsets: [{ name: "www", type: "A", ttl: 4, data: ["192.0.2.1"] }],
    });
    const url = `${node(running, "edge-1").address}/resolve?name=www.ttl.test&type=A`;
    const answer = async () =>
      ((await (await fetch(url)).json()) as { Answer: { data: string }[] }).Answer[0]?.data;
    const filledAt = Date.now();
    expect(await answer()).toBe("192.0.2.1");

    const { changeId } = await writeJson(running, "PUT", "/v1/zones/ttl.test/rrsets/www/A", {
      ttl: 4,
      data: ["192.0.2.2"],
    });
    const elapsed = Date.now() - filledAt;
    // The receipt is true: while edge-1 is pending it may serve the old value, once in sync never.
    const seen = { pending: new Set<string | undefined>(), insync: new Set<string | undefined>() };
    for (let i = 0; i < 80; i++) {
      const s = await changeStatus(running, changeId);
      const synced = s.nodes.find((n) => n.id === "edge-1")?.status === "INSYNC";
      seen[synced ? "insync" : "pending"].add(await answer());
      if (s.status === "INSYNC") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect([...seen.pending]).toContain("192.0.2.1");
    expect([...seen.insync]).toEqual(["192.0.2.2"]);

    const status = await changeStatus(running, changeId);
    expect(status.status).toBe("INSYNC");
    const latency = Object.fromEntries(status.nodes.map((n) => [n.id, n.latencyMs ?? Infinity]));
    // RFC 9111 §4.2.3 ages conservatively: the origin's whole-second Date can add up to 1 s
    // of apparent age at the regional edge, and its rounded-up Age up to 1 s more at edge-1.
    expect(latency["regional-1"]).toBeGreaterThanOrEqual(3_000 - elapsed - 50);
    expect(latency["edge-1"]).toBeGreaterThanOrEqual(2_000 - elapsed - 50);
    // edge-2 held nothing: it acks at once.
    expect(latency["edge-2"]).toBeLessThan(1_000);
  });
});
