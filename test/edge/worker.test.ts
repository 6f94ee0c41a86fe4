/**
 * The edge as a Worker: edge/worker.ts bundled with esbuild and run in
 * workerd through miniflare, in front of a real origin on loopback.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { cacheStatusOf } from "../support/cache-status.ts";
import { startWorkerEdge } from "../support/worker.ts";

const TOKEN = "worker-purge-token";
const www = "http://edge.test/resolve?name=www.example.test&type=A";
let dir: string;
let origin: RunningOrigin | undefined;
let mf: Miniflare;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "edge-worker-"));
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: join(dir, "origin"),
      sample: true,
      token: "origin-token",
    },
    { log: () => {} },
  );
  mf = await startWorkerEdge(dir, {
    PARENT: origin.httpUrl,
    EDGE_ID: "worker-1",
    TOKEN,
    MAX_BODY: "4096",
  });
}, 60_000);

afterAll(async () => {
  await mf?.dispose();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("the edge Worker in workerd", () => {
  it("misses, then hits, with Age, Cache-Status and X-Serial", async () => {
    const miss = await mf.dispatchFetch(www);
    expect(miss.status).toBe(200);
    expect(cacheStatusOf(miss, "worker-1")).toMatch(
      /^worker-1; fwd=uri-miss; fwd-status=200; ttl=\d+; stored/,
    );
    expect(((await miss.json()) as { Answer: { data: string }[] }).Answer[0]?.data).toBe(
      "192.0.2.10",
    );
    const hit = await mf.dispatchFetch(www);
    expect(cacheStatusOf(hit, "worker-1")).toMatch(/^worker-1; hit; ttl=\d+;/);
    expect(hit.headers.get("age")).toMatch(/^\d+$/);
    expect(hit.headers.get("x-serial")).toMatch(/^\d+$/);
    await hit.arrayBuffer();
  });

  it("purges with the bearer token, and refuses without it", async () => {
    const purge = (auth: string) =>
      mf.dispatchFetch("http://edge.test/purge", {
        method: "POST",
        headers: { authorization: auth, "content-type": "application/json" },
        body: JSON.stringify({ key: "www.example.test", mode: "hard" }),
      });
    const denied = await purge("Bearer nope");
    expect(denied.status).toBe(403);
    await denied.arrayBuffer();
    const ok = await purge(`Bearer ${TOKEN}`);
    expect(await ok.json()).toEqual({ id: "worker-1", purged: 1, mode: "hard" });
    const after = await mf.dispatchFetch(www);
    expect(cacheStatusOf(after, "worker-1")).toMatch(/^worker-1; fwd=uri-miss/);
    await after.arrayBuffer();
  });

  it("413 to a pass-through body over MAX_BODY", async () => {
    const res = await mf.dispatchFetch("http://edge.test/v1/zones/example.test", {
      method: "POST",
      body: new Uint8Array(4097),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { reason: string }).reason).toBe(
      "worker-1: request bodies are limited to 4096 bytes",
    );
  });

  it("answers stale (stale-if-error) after a soft purge when the origin is gone", async () => {
    const soft = await mf.dispatchFetch("http://edge.test/purge", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ zone: "example.test", mode: "soft" }),
    });
    expect(((await soft.json()) as { purged: number }).purged).toBeGreaterThanOrEqual(1);
    await origin?.close();
    origin = undefined;
    const stale = await mf.dispatchFetch(www);
    expect(stale.status).toBe(200);
    expect(cacheStatusOf(stale, "worker-1")).toMatch(
      /^worker-1; fwd=stale; ttl=-?\d+; .*detail=stale-if-error$/,
    );
    expect(((await stale.json()) as { Answer: { data: string }[] }).Answer[0]?.data).toBe(
      "192.0.2.10",
    );
  });
});
