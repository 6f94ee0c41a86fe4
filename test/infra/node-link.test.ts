import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RealClock } from "../../core/clock.ts";
import type { PurgeEvent } from "../../core/purge.ts";
import { connectNode } from "../../infra/node-link.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

function origin(dataDir: string, port = 0): Promise<RunningOrigin> {
  return startOrigin(
    {
      http: { host: "127.0.0.1", port },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir,
      sample: true,
      token: "node-link-token",
    },
    { log: () => {} },
  );
}

async function until(check: () => Promise<boolean>, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("connectNode", () => {
  it("follows the change feed, and registers again when a restarted origin lost its registry", async () => {
    const dir = await mkdtemp(join(tmpdir(), "node-link-"));
    dirs.push(dir);
    let o = await origin(dir);
    const port = Number(new URL(o.httpUrl).port);
    const applied: PurgeEvent[] = [];
    const link = await connectNode({
      nodeId: "edge-9",
      tier: "edge",
      address: "http://127.0.0.1:1",
      target: { id: "edge-9", applyPurge: (e) => void applied.push(e) },
      originUrl: o.httpUrl,
      token: "node-link-token",
      clock: new RealClock(),
      modeOf: () => "invalidate",
      pollIntervalMs: 100,
      pollJitter: 0,
      log: () => {},
    });
    try {
      expect(o.receipts.nodes().map((n) => n.id)).toEqual(["edge-9"]);
      await o.close();
      // The registry is journaled (DATA/registry): only losing it makes the origin forget.
      await rm(join(dir, "registry"), { recursive: true, force: true });
      o = await origin(dir, port);
      expect(o.receipts.nodes()).toEqual([]);
      const res = await fetch(`${o.httpUrl}/v1/zones/example.test/rrsets/www/A`, {
        method: "PUT",
        headers: { authorization: "Bearer node-link-token", "content-type": "application/json" },
        body: JSON.stringify({ ttl: 60, data: ["192.0.2.44"] }),
      });
      expect(res.status).toBe(200);
      await until(async () => applied.some((e) => e.keys.includes("www.example.test")));
      await until(async () => o.receipts.nodes().some((n) => n.id === "edge-9"));
    } finally {
      await link.close();
      await o.close();
    }
  });
});
