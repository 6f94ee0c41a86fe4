/**
 * The registry survives an origin restart (journaled in DATA/registry), and a
 * node that stops renewing its lease turns LOST in change status instead of
 * holding changes PENDING forever. The origin's clock is virtual, so the lease
 * runs out when the test says, not after a sleep.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";

const TOKEN = "registry-write-token";
let dir: string;
const clock = new VirtualClock(1_000_000);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-registry-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function start(): Promise<RunningOrigin> {
  return startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: dir,
      sample: true,
      token: TOKEN,
      leaseMs: 5_000,
    },
    { clock, log: () => {} },
  );
}

async function call(o: RunningOrigin, method: string, path: string, body?: unknown) {
  const res = await fetch(`${o.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const put = (o: RunningOrigin, address: string) =>
  call(o, "PUT", "/v1/zones/example.test/rrsets/www/A", { ttl: 60, data: [address] });

describe("the registry", () => {
  it("is journaled: after a restart every node is known and named in new receipts", async () => {
    let o = await start();
    for (const id of ["edge-1", "edge-2", "edge-3"]) {
      const reg = await call(o, "POST", "/v1/nodes", { id, tier: "edge", address: `http://${id}` });
      expect(reg.status).toBe(201);
      expect(reg.body.leaseMs).toBe(5_000);
    }
    expect((await call(o, "DELETE", "/v1/nodes/edge-3")).status).toBe(200);
    await o.close();

    o = await start();
    try {
      const { body } = await call(o, "GET", "/v1/nodes");
      expect((body.nodes as { id: string }[]).map((n) => n.id)).toEqual(["edge-1", "edge-2"]);
      const change = await put(o, "192.0.2.51");
      const status = await call(o, "GET", `/v1/changes/${change.body.changeId}`);
      expect(status.body).toMatchObject({
        status: "PENDING",
        nodes: [
          { id: "edge-1", status: "PENDING" },
          { id: "edge-2", status: "PENDING" },
        ],
      });
    } finally {
      await o.close();
    }
  });

  it("leases: a node that stops renewing turns LOST and stops holding changes PENDING", async () => {
    const o = await start();
    try {
      const change = await put(o, "192.0.2.52");
      const { serial, changeId } = change.body as { serial: number; changeId: string };
      clock.advanceSync(3_000);
      const renew = await call(o, "POST", "/v1/nodes/edge-2/lease");
      expect(renew).toMatchObject({ status: 200, body: { leaseMs: 5_000 } });
      expect((await call(o, "POST", "/v1/nodes/nope/lease")).status).toBe(404);
      const ack = { zone: "example.test", serial };
      expect((await call(o, "POST", "/v1/nodes/edge-2/acks", ack)).status).toBe(200);
      clock.advanceSync(2_001); // edge-1 last renewed when the origin recovered it
      const lost = await call(o, "GET", `/v1/changes/${changeId}`);
      expect(lost.body).toMatchObject({
        status: "INSYNC",
        lost: ["edge-1"],
        nodes: [
          { id: "edge-1", status: "LOST" },
          { id: "edge-2", status: "INSYNC" },
        ],
      });
      // edge-1 comes back: registering renews it, and it is pending again until it acks.
      await call(o, "POST", "/v1/nodes", { id: "edge-1", tier: "edge", address: "http://edge-1" });
      expect((await call(o, "GET", `/v1/changes/${changeId}`)).body).toMatchObject({
        status: "PENDING",
        nodes: [{ id: "edge-1", status: "PENDING" }, {}],
      });
    } finally {
      await o.close();
    }
  });
});
