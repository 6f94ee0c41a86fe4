/**
 * A zone deleted and created again from a zone file with a lower SOA serial,
 * live: the origin continues the old serials, so the version floors the
 * delete left at every edge and resolver do not refuse the new zone's
 * answers. Without that, every answer would be served but none cached.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cacheStatusOf } from "../support/cache-status.ts";
import { scrape } from "../support/prom.ts";
import { digShort, node, smallTopology, startTopology, waitConverged } from "./support.ts";

type Running = Awaited<ReturnType<typeof startTopology>>;
let running: Running;
beforeAll(async () => {
  running = await startTopology(smallTopology({ defaults: { pollIntervalMs: 60_000 } }));
});
afterAll(async () => {
  await running?.close();
});

const OLD_SERIAL = 5000;
const ZONE_FILE = `$ORIGIN example.test.
$TTL 60
@    IN SOA ns1.example.test. hostmaster.example.test. 1 3600 600 604800 300
@    IN NS  ns1.example.test.
www  IN A   192.0.2.99
`;

async function write(method: string, path: string, body?: string, type = "application/json") {
  const res = await fetch(`${running.originUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${running.token}`, "content-type": type },
    body,
  });
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
  return (await res.json()) as { serial: number; changeId: string; note?: string };
}

async function resolverMetric(id: string, name: string): Promise<number> {
  const { samples } = await scrape(`${node(running, id).extra.admin}/metrics`, {
    headers: { authorization: `Bearer ${node(running, id).token}` },
  });
  expect(samples.has(name), `no ${name} in ${id}'s metrics`).toBe(true);
  return samples.get(name)!;
}

describe("a zone re-created with a lower serial", () => {
  it("is cached again at edge-1 and answered by res-1", async () => {
    const zone = (await (await fetch(`${running.originUrl}/v1/zones/example.test`)).json()) as {
      rrsets: { type: string; data: Record<string, unknown>[] }[];
    };
    const soa = zone.rrsets.find((s) => s.type === "SOA")!.data[0]!;
    const bumped = await write(
      "PUT",
      "/v1/zones/example.test/rrsets/@/SOA",
      JSON.stringify({ data: [{ ...soa, serial: OLD_SERIAL }] }),
    );
    expect(bumped.serial).toBe(OLD_SERIAL);
    const deleted = await write("DELETE", "/v1/zones/example.test");
    expect((await waitConverged(running, deleted.changeId, 5_000)).status).toBe("INSYNC");

    const created = await write("PUT", "/v1/zones/example.test", ZONE_FILE, "text/dns");
    expect(created.serial).toBe(OLD_SERIAL + 1);
    expect(created.note).toMatch(/existed before at serial 5000; its serials continue from 5001/);
    expect((await waitConverged(running, created.changeId, 5_000)).status).toBe("INSYNC");

    const url = `${node(running, "edge-1").address}/resolve?name=www.example.test&type=A`;
    const first = await fetch(url);
    expect(await first.json()).toMatchObject({ Answer: [{ data: "192.0.2.99" }] });
    expect(first.headers.get("x-serial")).toBe(String(OLD_SERIAL + 1));
    const second = await fetch(url);
    expect(await second.json()).toMatchObject({ Answer: [{ data: "192.0.2.99" }] });
    expect(cacheStatusOf(second, "edge-1")).toMatch(/^edge-1; hit;/);

    const res1 = node(running, "res-1").address;
    const refusals = await resolverMetric("res-1", "resolver_floor_refusals_total");
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.99");
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.99");
    expect(await resolverMetric("res-1", "resolver_floor_refusals_total")).toBe(refusals);
  });
});
