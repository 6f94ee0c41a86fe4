/**
 * The edge on real sockets: two Node edges chained in front of a real
 * origin on loopback, and the `propagate edge` binary.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import dnsPacket from "dns-packet";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ParentFetch } from "../../edge/cache.ts";
import { type RunningEdge, startEdge } from "../../edge/node.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { cacheStatusOf } from "../support/cache-status.ts";
import { startPropagate } from "../support/process.ts";

const TOKEN = "edge-test-token";
let dir: string;
let origin: RunningOrigin;
let edge1: RunningEdge;
let edge2: RunningEdge;
let originRequests = 0;
/** Both edges fetch through this, so a test can count what reaches the origin. */
const counting: ParentFetch = (req) => {
  if (req.url.startsWith(origin.httpUrl)) originRequests++;
  return fetch(req);
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "edge-node-"));
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: dir,
      sample: true,
      token: "origin-token",
    },
    { log: () => {} },
  );
  edge1 = await startEdge({
    id: "regional",
    parent: origin.httpUrl,
    token: TOKEN,
    fetch: counting,
  });
  edge2 = await startEdge({
    id: "edge-1",
    parent: edge1.url,
    origin: origin.httpUrl,
    token: TOKEN,
    fetch: counting,
  });
});

afterAll(async () => {
  await edge2?.close();
  await edge1?.close();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

const www = "/resolve?name=www.example.test&type=A";

describe("two Node edges in front of a real origin", () => {
  it("misses through both tiers, then hits at the nearest, with Age, Cache-Status and X-Serial", async () => {
    const miss = await fetch(edge2.url + www);
    expect(miss.status).toBe(200);
    expect(miss.headers.get("cache-status")).toMatch(
      /^regional; fwd=uri-miss; fwd-status=200; ttl=\d+; stored; key=".*", edge-1; fwd=uri-miss; fwd-status=200; ttl=\d+; stored; key=".*"$/,
    );
    expect(miss.headers.get("x-serial")).toMatch(/^\d+$/);
    expect((await miss.json()).Answer[0].data).toBe("192.0.2.10");
    const hit = await fetch(edge2.url + www);
    expect(cacheStatusOf(hit, "edge-1")).toMatch(/^edge-1; hit; ttl=\d+;/);
    expect(Number(hit.headers.get("age"))).toBeGreaterThanOrEqual(0);
  });

  it("caches DoH GET and passes DoH POST through", async () => {
    const query = dnsPacket.encode({
      type: "query",
      id: 0,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: "A", name: "mail.example.test" }],
    });
    const url = `${edge2.url}/dns-query?dns=${query.toString("base64url")}`;
    const headers = { accept: "application/dns-message" };
    await fetch(url, { headers });
    const hit = await fetch(url, { headers });
    expect(cacheStatusOf(hit, "edge-1")).toMatch(/^edge-1; hit/);
    const answer = dnsPacket.decode(Buffer.from(await hit.arrayBuffer()));
    expect(answer.answers?.[0]).toMatchObject({ type: "A", data: "192.0.2.25" });
    const post = await fetch(`${edge2.url}/dns-query`, {
      method: "POST",
      headers: { "content-type": "application/dns-message", ...headers },
      body: new Uint8Array(query),
    });
    expect(post.status).toBe(200);
    expect(post.headers.get("cache-status")).toBe("regional; fwd=method, edge-1; fwd=method");
  });

  it("proxies a write, then X-Min-Serial gives read-your-writes through both tiers", async () => {
    await fetch(edge2.url + www);
    const put = await fetch(`${edge2.url}/v1/zones/example.test/rrsets/www.example.test/A`, {
      method: "PUT",
      headers: { authorization: "Bearer origin-token", "content-type": "application/json" },
      body: JSON.stringify({ ttl: 60, data: ["192.0.2.99"] }),
    });
    expect(put.status).toBe(200);
    const { serial } = (await put.json()) as { serial: number };
    const stale = await fetch(edge2.url + www);
    expect((await stale.json()).Answer[0].data).toBe("192.0.2.10");
    const fresh = await fetch(edge2.url + www, { headers: { "x-min-serial": String(serial) } });
    expect(fresh.headers.get("x-serial")).toBe(String(serial));
    expect((await fresh.json()).Answer[0].data).toBe("192.0.2.99");
    expect(fresh.headers.get("cache-status")).toMatch(/^regional; fwd=miss; .*, edge-1; fwd=miss;/);
  });

  it("a made-up X-Min-Serial costs one origin request per client request and gets 412", async () => {
    await fetch(edge2.url + www);
    for (let i = 1; i <= 3; i++) {
      const before = originRequests;
      const res = await fetch(edge2.url + www, { headers: { "x-min-serial": "4000" } });
      expect(res.status).toBe(412);
      expect((await res.json()).reason).toMatch(
        /^X-Min-Serial 4000 is ahead of zone example.test at serial \d+; send the serial a write returned$/,
      );
      expect(res.headers.get("cache-status")).toMatch(
        /^regional; fwd=miss; fwd-status=412; .*, edge-1; fwd=miss; fwd-status=412; /,
      );
      expect(originRequests - before).toBe(1);
    }
    const cached = await fetch(edge2.url + www);
    expect(cached.status).toBe(200);
    expect(cacheStatusOf(cached, "edge-1")).toMatch(/^edge-1; hit/);
  });

  it("answers 413 on the wire to a body over the limit, declared or chunked, without forwarding it", async () => {
    const before = originRequests;
    const url = `${edge2.url}/v1/zones/example.test/rrsets/www.example.test/A`;
    const headers = { authorization: "Bearer origin-token", "content-type": "application/json" };
    const declared = await fetch(url, {
      method: "PUT",
      headers,
      body: new Uint8Array(2 * 1024 * 1024),
    });
    expect(declared.status).toBe(413);
    expect((await declared.json()).reason).toBe(
      "edge-1: request bodies are limited to 1048576 bytes",
    );
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        // 64 MiB if nobody stops reading.
        if (sent++ === 1024) c.close();
        else c.enqueue(new Uint8Array(64 * 1024));
      },
    });
    const chunked = await fetch(url, {
      method: "PUT",
      headers,
      body: stream,
      duplex: "half",
    } as RequestInit);
    expect(chunked.status).toBe(413);
    expect(sent).toBeLessThan(1024);
    const purge = await fetch(`${edge2.url}/purge`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ all: true, pad: "x".repeat(100_000) }),
    });
    expect(purge.status).toBe(413);
    expect(originRequests).toBe(before);
  });

  it("POST /purge needs the bearer token and a target, then drops entries", async () => {
    const purge = (body: unknown, auth?: string) =>
      fetch(`${edge2.url}/purge`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(auth ? { authorization: auth } : {}) },
        body: JSON.stringify(body),
      });
    expect((await purge({ all: true })).status).toBe(401);
    expect((await purge({ all: true }, "Bearer wrong")).status).toBe(403);
    const bad = await purge({ mode: "hard" }, `Bearer ${TOKEN}`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toEqual({
      error: "bad purge request",
      field: "body",
      reason: 'name what to purge: "url", "key", "zone" or "all": true',
    });
    await fetch(edge2.url + www);
    const ok = await purge({ zone: "example.test", mode: "hard" }, `Bearer ${TOKEN}`);
    expect(await ok.json()).toMatchObject({ id: "edge-1", mode: "hard" });
    const after = await fetch(edge2.url + www);
    expect(cacheStatusOf(after, "edge-1")).toMatch(/^edge-1; fwd=uri-miss/);
    const metrics = await (
      await fetch(`${edge2.url}/metrics`, { headers: { accept: "application/json" } })
    ).json();
    expect(metrics).toMatchObject({ id: "edge-1" });
    expect(metrics.purges).toBeGreaterThanOrEqual(1);
  });
});

describe("propagate edge", () => {
  it("prints a ready line and serves through the cache", async () => {
    const edge = await startPropagate([
      "edge",
      "--http",
      "127.0.0.1:0",
      "--parent",
      origin.httpUrl,
      "--id",
      "cli-edge",
    ]);
    try {
      expect(edge.ready.id).toBe("cli-edge");
      const res = await fetch(`${edge.ready.http}${www}`);
      expect(cacheStatusOf(res, "cli-edge")).toMatch(/^cli-edge; fwd=uri-miss/);
    } finally {
      expect(await edge.stop()).toBe(0);
    }
  });

  it("rejects an --id that cannot name the cache in Cache-Status", async () => {
    await expect(
      startPropagate(["edge", "--parent", origin.httpUrl, "--id", "edge\u00e9"], 30_000),
    ).rejects.toThrow(/--id: cache id "edge\u00e9" cannot name the cache in Cache-Status/);
  });

  it("rejects a bad --parent with a usage message", async () => {
    await expect(startPropagate(["edge", "--parent", "nope"], 30_000)).rejects.toThrow(
      /--parent expects an http/,
    );
  });
});
