import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startOrigin } from "../../origin/server.ts";

const quiet = { log: () => {} };
const free = { host: "127.0.0.1", port: 0 };

describe("starting an origin", () => {
  it("that cannot listen leaves its data directory as it found it", async () => {
    const dir = await mkdtemp(join(tmpdir(), "origin-start-"));
    const first = await startOrigin(
      { http: free, dns: free, dataDir: join(dir, "a"), sample: true },
      quiet,
    );
    try {
      const taken = { host: "127.0.0.1", port: Number(new URL(first.httpUrl).port) };
      await expect(
        startOrigin({ http: taken, dns: free, dataDir: join(dir, "b"), sample: true }, quiet),
      ).rejects.toThrow(/EADDRINUSE/);
      const again = await startOrigin({ http: free, dns: free, dataDir: join(dir, "b") }, quiet);
      expect(again.store.zones()).toEqual([]);
      await again.close();
    } finally {
      await first.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
