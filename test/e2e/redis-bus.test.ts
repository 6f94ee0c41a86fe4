import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServer, startRedis } from "../support/redis.ts";
import { digShort, node, putA, smallTopology, startTopology, waitConverged } from "./support.ts";

let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedis({ appendonly: true });
});
afterAll(async () => {
  await redis?.stop();
});

describe("the fabric over Redis Streams", () => {
  it("delivers every change, and loses none while Redis is killed and restarted", async () => {
    // Anti-entropy is slowed right down, so only the bus can explain convergence.
    const t = await startTopology(
      smallTopology({ bus: redis.url, defaults: { pollIntervalMs: 600_000 } }),
    );
    try {
      const res1 = node(t, "res-1").address;
      expect(await digShort(res1, "www.example.test")).toBe("192.0.2.10");
      const first = await putA(t, "www", "192.0.2.81");
      expect((await waitConverged(t, first.changeId, 8_000)).status).toBe("INSYNC");
      expect(await digShort(res1, "www.example.test")).toBe("192.0.2.81");

      await redis.kill9();
      // Acknowledged while the bus is down, on two names, so a lost event
      // would leave one of them stale (acks are cumulative and hide nothing here).
      const during = await putA(t, "www", "192.0.2.82");
      await putA(t, "mail", "192.0.2.25");
      await redis.restart();
      const after = await putA(t, "ftp", "192.0.2.21");
      const s1 = await waitConverged(t, during.changeId, 15_000);
      const s2 = await waitConverged(t, after.changeId, 15_000);
      expect(s1.nodes.filter((n) => n.status !== "INSYNC")).toEqual([]);
      expect(s2.status).toBe("INSYNC");
      expect(await digShort(res1, "www.example.test")).toBe("192.0.2.82");
      expect(await digShort(res1, "mail.example.test")).toBe("192.0.2.25");
      // Every node got all four changes from the bus itself: no gap, no feed repair.
      for (const n of t.nodes.filter((x) => x.sync)) {
        expect(n.sync!(), n.id).toMatchObject({ busEvents: 4, gaps: 0, feedChanges: 0 });
      }
    } finally {
      await t.close();
    }
  }, 60_000);
});
