/**
 * `up --processes` supervises its children: an edge killed with -9 is logged,
 * started again (with backoff), shown with its new pid in the table, joins
 * the fabric again, and later changes reach it (receipts INSYNC).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPropagate } from "../support/process.ts";
import { type RedisServer, startRedis } from "../support/redis.ts";
import { waitFor } from "../support/wait.ts";

let redis: RedisServer;
let dir: string;
beforeAll(async () => {
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), "propagate-supervise-"));
});
afterAll(async () => {
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** A port free now, so the restarted edge listens where the first one did. */
function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

describe("up --processes supervises its children", () => {
  it("restarts an edge killed with -9; it rejoins and later changes reach it", async () => {
    const file = join(dir, "topology.json");
    await writeFile(
      file,
      JSON.stringify({
        name: "supervise",
        origin: { http: "127.0.0.1:0", dns: "127.0.0.1:0", data: join(dir, "origin") },
        defaults: { pollIntervalMs: 600_000 },
        edges: [{ id: "edge-1", parent: "origin", http: `127.0.0.1:${await freePort()}` }],
        resolvers: [],
      }),
    );
    const up = await startPropagate(
      ["up", "--processes", "--topology", file, "--bus", redis.url],
      60_000,
    );
    try {
      const pidOf = () => Number(/^edge-1\s.*\bpid (\d+)/m.exec(up.output())?.[1]);
      const first = pidOf();
      expect(first).toBeGreaterThan(0);
      process.kill(first, "SIGKILL");
      await waitFor("the launcher to log the death", () =>
        /\[edge-1\] exited \(SIGKILL\); restarting in \d+ ms/.test(up.output()),
      );
      await waitFor(
        "the restarted edge-1 in the table",
        () => /^edge-1\s.*\bpid (\d+)\s+restarts 1\b/m.test(up.output()),
        20_000,
      );
      const res = await fetch(`${up.ready.origin}/v1/zones/example.test/rrsets/www/A`, {
        method: "PUT",
        headers: { authorization: `Bearer ${up.ready.token}`, "content-type": "application/json" },
        body: JSON.stringify({ ttl: 60, data: ["192.0.2.91"] }),
      });
      const { changeId } = (await res.json()) as { changeId: string };
      const status = await waitFor("the change to reach edge-1", async () => {
        const s = (await (await fetch(`${up.ready.origin}/v1/changes/${changeId}`)).json()) as {
          status: string;
          nodes: { id: string; status: string }[];
        };
        return s.status === "INSYNC" ? s : false;
      });
      expect(status.nodes).toEqual([expect.objectContaining({ id: "edge-1", status: "INSYNC" })]);
    } finally {
      expect(await up.stop("SIGINT")).toBe(0);
    }
  }, 60_000);
});
