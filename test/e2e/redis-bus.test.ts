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
      const during = await putA(t, "www", "192.0.2.82"); // acknowledged while the bus is down
      await redis.restart();
      const after = await putA(t, "www", "192.0.2.83");
      const s1 = await waitConverged(t, during.changeId, 15_000);
      const s2 = await waitConverged(t, after.changeId, 15_000);
      expect(s1.nodes.filter((n) => n.status !== "INSYNC")).toEqual([]);
      expect(s2.status).toBe("INSYNC");
      expect(await digShort(res1, "www.example.test")).toBe("192.0.2.83");
    } finally {
      await t.close();
    }
  }, 60_000);
});
