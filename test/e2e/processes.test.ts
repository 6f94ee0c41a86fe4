import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dig } from "../support/dig.ts";
import { startPropagate } from "../support/process.ts";
import { type RedisServer, startRedis } from "../support/redis.ts";

let redis: RedisServer;
let dir: string;
beforeAll(async () => {
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), "propagate-procs-"));
});
afterAll(async () => {
  await redis?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe("propagate up --processes", () => {
  it("runs each node as its own process over Redis, and Ctrl-C stops them all", async () => {
    const file = join(dir, "topology.json");
    await writeFile(
      file,
      JSON.stringify({
        name: "procs",
        origin: { http: "127.0.0.1:0", dns: "127.0.0.1:0", data: join(dir, "origin") },
        defaults: { pollIntervalMs: 600_000 },
        edges: [{ id: "edge-1", parent: "origin" }],
        resolvers: [{ id: "res-1", upstream: "edge-1" }],
      }),
    );
    const up = await startPropagate(
      ["up", "--processes", "--topology", file, "--bus", redis.url],
      60_000,
    );
    try {
      expect(up.ready.nodes).toBe("3");
      const resolverLine = /^res-1\s+resolver\s+edge-1\s+(\S+):(\d+)/m.exec(up.output());
      expect(resolverLine).not.toBeNull();
      const [, host, port] = resolverLine!;
      const ask = async () =>
        (await dig([`@${host}`, "-p", port!, "www.example.test", "+short"])).trim();
      expect(await ask()).toBe("192.0.2.10");

      const res = await fetch(`${up.ready.origin}/v1/zones/example.test/rrsets/www/A`, {
        method: "PUT",
        headers: { authorization: `Bearer ${up.ready.token}`, "content-type": "application/json" },
        body: JSON.stringify({ ttl: 60, data: ["192.0.2.90"] }),
      });
      const { changeId } = (await res.json()) as { changeId: string };
      let status = "PENDING";
      for (let i = 0; i < 200 && status !== "INSYNC"; i++) {
        await new Promise((r) => setTimeout(r, 25));
        status = (
          (await (await fetch(`${up.ready.origin}/v1/changes/${changeId}`)).json()) as {
            status: string;
          }
        ).status;
      }
      expect(status).toBe("INSYNC");
      expect(await ask()).toBe("192.0.2.90");
    } finally {
      expect(await up.stop("SIGINT")).toBe(0);
    }
    // Every child is gone with the launcher: the origin's port no longer answers.
    await expect(fetch(`${up.ready.origin}/healthz`)).rejects.toThrow();
  }, 90_000);
});
