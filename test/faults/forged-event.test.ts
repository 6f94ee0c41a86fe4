/**
 * A forged purge event written straight into the Redis stream (`redis-cli
 * XADD`, as anyone who can reach Redis could) changes no cache: every node
 * drops it for its bad or missing Ed25519 signature and counts it, answers
 * stay as they were, and the zone keeps converging on real changes.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  digShort,
  node,
  putA,
  smallTopology,
  startTopology,
  waitConverged,
} from "../e2e/support.ts";
import { type RedisServer, startRedis } from "../support/redis.ts";
import { waitFor } from "../support/wait.ts";

const run = promisify(execFile);
let redis: RedisServer;
let t: Awaited<ReturnType<typeof startTopology>>;

beforeAll(async () => {
  redis = await startRedis();
  // Anti-entropy slowed right down: only the bus could change a cache here.
  t = await startTopology(smallTopology({ bus: redis.url, defaults: { pollIntervalMs: 600_000 } }));
});
afterAll(async () => {
  await t?.close();
  await redis?.stop();
});

async function xadd(event: object): Promise<void> {
  const args = ["-p", String(redis.port), "XADD", "propagate:purge", "*"];
  await run("redis-cli", [...args, "event", JSON.stringify(event)], { timeout: 5_000 });
}

async function edgeAnswer(id: string): Promise<{ serial: string | null; data: string }> {
  const res = await fetch(`${node(t, id).address}/resolve?name=www.example.test&type=A`);
  const body = (await res.json()) as { Answer: { data: string }[] };
  return { serial: res.headers.get("x-serial"), data: body.Answer[0]!.data };
}

describe("a forged event on the Redis stream", () => {
  it("is dropped and counted by every node; no cache changes, and real changes still converge", async () => {
    const res1 = node(t, "res-1").address;
    const res2 = node(t, "res-2").address;
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.10");
    expect(await digShort(res2, "www.example.test")).toBe("192.0.2.10");
    const before = await edgeAnswer("edge-1");
    expect(before.data).toBe("192.0.2.10");

    const forged = {
      changeId: "chg_forged",
      zone: "example.test",
      serial: 999999,
      keys: ["www.example.test"],
      mode: "push",
      ts: Date.now(),
      rrsets: [{ name: "www.example.test", type: "A", ttl: 3600, data: ["203.0.113.66"] }],
    };
    await xadd(forged); // no signature
    await xadd({ ...forged, changeId: "chg_forged2", sig: Buffer.alloc(64, 7).toString("base64") });
    await xadd({ ...forged, changeId: "chg_forged3", mode: "invalidate", sig: "not base64!" });

    const synced = t.nodes.filter((n) => n.sync);
    expect(synced.length).toBe(5);
    await waitFor("every node to drop the three forged events", () =>
      synced.every((n) => n.sync!().forged === 3),
    );
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.10");
    expect(await digShort(res2, "www.example.test")).toBe("192.0.2.10");
    for (const id of ["edge-1", "edge-2", "regional-1"]) {
      expect(await edgeAnswer(id), id).toEqual({ serial: before.serial, data: "192.0.2.10" });
    }

    // The origin's own (signed) events still apply: the zone is not poisoned.
    const real = await putA(t, "www", "192.0.2.77");
    expect((await waitConverged(t, real.changeId, 10_000)).status).toBe("INSYNC");
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.77");
    expect(await digShort(res2, "www.example.test")).toBe("192.0.2.77");
    expect((await edgeAnswer("edge-1")).data).toBe("192.0.2.77");
    for (const n of synced) expect(n.sync!(), n.id).toMatchObject({ forged: 3, gaps: 0 });
  }, 30_000);
});
