import { afterEach, describe, expect, it } from "vitest";
import { cacheStatusOf } from "../support/cache-status.ts";
import { dig } from "../support/dig.ts";
import {
  changeStatus,
  digShort,
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

describe("the fabric, live", () => {
  it("a change reaches every node over the memory bus and every receipt turns in sync", async () => {
    running = await startTopology(smallTopology({ defaults: { pollIntervalMs: 60_000 } }));
    const res1 = node(running, "res-1").address;
    const res2 = node(running, "res-2").address;
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.10");
    expect(await digShort(res2, "www.example.test")).toBe("192.0.2.10");

    const { changeId } = await putA(running, "www", "192.0.2.77");
    const status = await waitConverged(running, changeId, 5_000);
    expect(status.status).toBe("INSYNC");
    expect(status.nodes.map((n) => n.id).sort()).toEqual([
      "edge-1",
      "edge-2",
      "regional-1",
      "res-1",
      "res-2",
    ]);
    // In sync means purged: the very next query sees the new value, TTL notwithstanding.
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.77");
    expect(await digShort(res2, "www.example.test")).toBe("192.0.2.77");
    const edge = await fetch(
      `${node(running, "edge-2").address}/resolve?name=www.example.test&type=A`,
    );
    expect(await edge.json()).toMatchObject({ Answer: [{ data: "192.0.2.77" }] });
    expect(edge.headers.get("x-serial")).toBe("2");
  });

  it("with the bus off, anti-entropy alone converges within the poll interval", async () => {
    const pollIntervalMs = 400;
    running = await startTopology(
      smallTopology({ bus: "off", defaults: { pollIntervalMs, pollJitter: 0.2 } }),
    );
    const res1 = node(running, "res-1").address;
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.10");
    const { changeId } = await putA(running, "www", "192.0.2.78");
    const early = await changeStatus(running, changeId);
    expect(early.status).toBe("PENDING");
    const status = await waitConverged(running, changeId, 5_000);
    expect(status.status).toBe("INSYNC");
    // Bound: one jittered interval, plus the poll's own round trip on a loaded machine.
    const slowest = Math.max(...status.nodes.map((n) => n.latencyMs ?? Infinity));
    expect(slowest).toBeLessThan(pollIntervalMs * 1.2 + 1_000);
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.78");
  });

  it("a node's link delay shows in its receipt and no one else's", async () => {
    running = await startTopology(
      smallTopology({
        defaults: { pollIntervalMs: 60_000 },
        resolvers: [
          { id: "res-1", upstream: "edge-1", link: { latency: { kind: "fixed", ms: 300 } } },
          { id: "res-2", upstream: "origin" },
        ],
      }),
    );
    const { changeId } = await putA(running, "www", "192.0.2.79");
    const status = await waitConverged(running, changeId, 5_000);
    const latency = Object.fromEntries(status.nodes.map((n) => [n.id, n.latencyMs ?? Infinity]));
    expect(latency["res-1"]).toBeGreaterThanOrEqual(300);
    expect(latency["res-2"]).toBeLessThan(300);
  });

  it("POST /v1/purge reaches every node, each acks it, and bad input is a 400", async () => {
    running = await startTopology(smallTopology({ defaults: { pollIntervalMs: 60_000 } }));
    const t = running;
    const post = (body: unknown, token = t.token) =>
      fetch(`${t.originUrl}/v1/purge`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const edge = `${node(t, "edge-1").address}/resolve?name=www.example.test&type=A`;
    await fetch(edge);
    expect(cacheStatusOf(await fetch(edge), "edge-1")).toMatch(/^edge-1; hit/);

    const res = await post({ zone: "example.test", names: ["WWW.example.test."], mode: "hard" });
    expect(res.status).toBe(202);
    const { purges } = (await res.json()) as { purges: { changeId: string; serial: number }[] };
    expect(purges).toHaveLength(1);
    const status = await waitConverged(t, purges[0]!.changeId, 5_000);
    expect(status).toMatchObject({ kind: "purge", status: "INSYNC" });
    expect(status.nodes).toHaveLength(5);
    expect(cacheStatusOf(await fetch(edge), "edge-1")).toMatch(/^edge-1; fwd=/);

    const bad = await post({ zone: "example.test", names: ["www"], keys: ["x"] });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ reason: expect.stringMatching(/at most one of/) });
    // A zone alone purges the whole zone.
    await fetch(edge);
    const whole = await post({ zone: "example.test", mode: "hard" });
    expect(whole.status).toBe(202);
    const [zonePurge] = ((await whole.json()) as { purges: { changeId: string }[] }).purges;
    expect((await waitConverged(t, zonePurge!.changeId, 5_000)).status).toBe("INSYNC");
    expect(cacheStatusOf(await fetch(edge), "edge-1")).toMatch(/^edge-1; fwd=/);
    expect((await post({ names: ["www.example.test"] })).status).toBe(400);
    expect((await post({ zone: "nope.test", all: true })).status).toBe(404);
    expect((await post({ all: true }, "wrong-token-000")).status).toBe(403);
    const outside = await post({ zone: "example.test", names: ["www.other.test"] });
    expect(outside.status).toBe(400);
    expect(await outside.json()).toMatchObject({
      field: "names.0",
      reason: expect.stringMatching(/not a name in zone/),
    });
    const longKey = await post({ zone: "example.test", keys: ["x".repeat(1000)] });
    expect(await longKey.json()).toMatchObject({ field: "keys.0" });

    // Acks: a serial the zone has not reached is refused, so receipts cannot be faked.
    const ack = (body: unknown) =>
      fetch(`${t.originUrl}/v1/nodes/edge-1/acks`, {
        method: "POST",
        headers: { authorization: `Bearer ${t.nodeToken}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    const ahead = await ack({ zone: "EXAMPLE.TEST.", serial: 100_000 });
    expect(ahead.status).toBe(400);
    expect(await ahead.json()).toMatchObject({
      field: "serial",
      reason: expect.stringMatching(/ahead of zone example\.test/),
    });
    expect(await (await ack({ zone: "example.test", serial: 1.5 })).json()).toMatchObject({
      field: "serial",
    });
    expect((await ack({ zone: "www.example.test", serial: 1 })).status).toBe(404);
  });

  it("a zone created at the origin is answered by the resolvers from their next poll", async () => {
    running = await startTopology(
      smallTopology({ defaults: { pollIntervalMs: 300, pollJitter: 0 } }),
    );
    const t = running;
    const res1 = node(t, "res-1").address;
    const i = res1.lastIndexOf(":");
    const ask = () => dig([`@${res1.slice(0, i)}`, "-p", res1.slice(i + 1), "www.new.test", "A"]);
    expect(await ask()).toMatch(/status: REFUSED/);
    const create = await fetch(`${t.originUrl}/v1/zones/new.test`, {
      method: "PUT",
      headers: { authorization: `Bearer ${t.token}`, "content-type": "text/dns" },
      body: "$ORIGIN new.test.\n$TTL 60\n@ IN SOA ns1 hostmaster 1 3600 600 86400 60\n@ IN NS ns1\nns1 IN A 192.0.2.53\nwww IN A 192.0.2.54\n",
    });
    expect(create.status).toBe(201);
    let out = "";
    for (let k = 0; k < 40 && !/status: NOERROR/.test(out); k++) {
      await new Promise((r) => setTimeout(r, 100));
      out = await ask();
    }
    expect(out).toMatch(/status: NOERROR/);
    expect(out).toMatch(/www\.new\.test\.\s+\d+\s+IN\s+A\s+192\.0\.2\.54/);
  });
});
