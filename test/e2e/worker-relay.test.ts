/**
 * A Worker edge holds no bus connection: the origin relays each purge to its
 * /purge by authenticated POST, and the edge's answer is its receipt.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryBus } from "../../core/bus.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { cacheStatusOf } from "../support/cache-status.ts";
import { waitFor } from "../support/wait.ts";
import { startWorkerEdge } from "../support/worker.ts";

const TOKEN = "relay-origin-token";
/** The Worker holds the nodes' token, never the write token. */
const NODE_TOKEN = "relay-node-token";
const www = "http://edge.test/resolve?name=www.example.test&type=A";
let dir: string;
let origin: RunningOrigin;
let mf: Miniflare;
let workerUrl: URL;
const logs: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "worker-relay-"));
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: join(dir, "origin"),
      sample: true,
      token: TOKEN,
      nodeToken: NODE_TOKEN,
    },
    { log: (m) => logs.push(m), bus: new MemoryBus() },
  );
  mf = await startWorkerEdge(dir, {
    PARENT: origin.httpUrl,
    EDGE_ID: "worker-1",
    TOKEN: NODE_TOKEN,
  });
  workerUrl = await mf.ready;
}, 60_000);

afterAll(async () => {
  await mf?.dispose();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

function api(path: string, body: unknown, method = "POST") {
  return fetch(`${origin.httpUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function converged(changeId: string) {
  for (let i = 0; i < 600; i++) {
    const s = (await (await fetch(`${origin.httpUrl}/v1/changes/${changeId}`)).json()) as {
      status: string;
      nodes: { id: string; status: string }[];
    };
    if (s.status === "INSYNC") return s;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`change ${changeId} did not converge; relay said: ${logs.join("\n")}`);
}

describe("the relay to a Worker edge", () => {
  it("delivers each change to the Worker's /purge and records its ack", async () => {
    const reg = await api("/v1/nodes", {
      id: "worker-1",
      tier: "edge",
      address: workerUrl.href,
      purgeUrl: new URL("/purge", workerUrl).href,
    });
    expect(reg.status).toBe(201);
    expect(await reg.json()).toMatchObject({ registered: "worker-1", relayed: true });

    await (await mf.dispatchFetch(www)).arrayBuffer();
    expect(cacheStatusOf(await mf.dispatchFetch(www), "worker-1")).toMatch(/^worker-1; hit/);

    const put = await api(
      "/v1/zones/example.test/rrsets/www/A",
      { ttl: 300, data: ["192.0.2.66"] },
      "PUT",
    );
    const { changeId } = (await put.json()) as { changeId: string };
    const status = await converged(changeId);
    expect(status.nodes).toEqual([expect.objectContaining({ id: "worker-1", status: "INSYNC" })]);

    const after = await mf.dispatchFetch(www);
    expect(cacheStatusOf(after, "worker-1")).toMatch(/^worker-1; fwd=/);
    expect(((await after.json()) as { Answer: { data: string }[] }).Answer[0]?.data).toBe(
      "192.0.2.66",
    );
  });

  it("retries while the Worker refuses, and never acks a refused purge", async () => {
    const reg = await api("/v1/nodes", {
      id: "worker-1",
      tier: "edge",
      address: workerUrl.href,
      purgeUrl: new URL("/purge", workerUrl).href,
      purgeToken: "not-the-workers-token",
    });
    expect(reg.status).toBe(201);
    const logged = logs.length;
    const put = await api(
      "/v1/zones/example.test/rrsets/www/A",
      { ttl: 300, data: ["192.0.2.67"] },
      "PUT",
    );
    const { changeId } = (await put.json()) as { changeId: string };
    await waitFor("the relay to be refused", () =>
      logs.slice(logged).some((m) => /relay: .*HTTP 403/.test(m)),
    );
    const s = (await (await fetch(`${origin.httpUrl}/v1/changes/${changeId}`)).json()) as {
      status: string;
    };
    expect(s.status).toBe("PENDING");
  });

  it("refuses a purgeUrl that is not http(s)", async () => {
    const res = await api("/v1/nodes", {
      id: "w2",
      tier: "edge",
      address: "x",
      purgeUrl: "ftp://x/purge",
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ field: "purgeUrl" });
  });
});
