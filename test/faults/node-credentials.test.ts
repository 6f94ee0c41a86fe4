/**
 * Per-node credentials: every node holds its own token, issued by the origin.
 * A node's token registers and acks for that node only, opens only its own
 * /purge, is revoked by DELETE /v1/nodes/{id}, and survives an origin
 * restart. No token ever appears in the logs.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseTopology } from "../../infra/topology.ts";
import { type RunningTopology, up } from "../../infra/up.ts";
import { node, putA, waitConverged } from "../e2e/support.ts";

let t: RunningTopology;
const logs: string[] = [];
let dir: string;

async function start(): Promise<RunningTopology> {
  const spec = parseTopology({
    name: "credentials",
    origin: { http: "127.0.0.1:0", dns: "127.0.0.1:0" },
    defaults: { pollIntervalMs: 600_000 },
    edges: [
      { id: "edge-1", parent: "origin" },
      { id: "edge-2", parent: "origin" },
    ],
    resolvers: [],
  });
  return up(spec, { dataDir: dir, anyPort: true, log: (m) => logs.push(m) });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-creds-"));
  t = await start();
});
afterAll(async () => {
  await t?.close();
  await rm(dir, { recursive: true, force: true });
});

const call = (method: string, path: string, token: string, body?: unknown) =>
  fetch(`${t.originUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });

describe("per-node credentials", () => {
  it("a node's token registers and acks for itself only, and purges only its own cache", async () => {
    const one = node(t, "edge-1").token!;
    const two = node(t, "edge-2").token!;
    expect(one).not.toBe(two);
    expect(one).not.toBe(t.nodeToken);
    const reg = (id: string) => ({ id, tier: "edge", address: "http://127.0.0.1:1" });
    expect((await call("POST", "/v1/nodes", one, reg("edge-1"))).status).toBe(201);
    expect((await call("POST", "/v1/nodes", one, reg("edge-2"))).status).toBe(403);
    const { serial } = await putA(t, "www", "192.0.2.41");
    const ack = { zone: "example.test", serial };
    expect((await call("POST", "/v1/nodes/edge-1/acks", one, ack)).status).toBe(200);
    expect((await call("POST", "/v1/nodes/edge-2/acks", one, ack)).status).toBe(403);
    expect((await call("POST", "/v1/nodes/edge-2/token", one)).status).toBe(403);
    expect((await call("DELETE", "/v1/nodes/edge-2", one)).status).toBe(403);
    expect((await call("POST", "/v1/purge", one, { zone: "example.test", all: true })).status).toBe(
      403,
    );

    const purge = (id: string, token: string) =>
      fetch(`${node(t, id).address}/purge`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ zone: "example.test" }),
      });
    expect((await purge("edge-1", one)).status).toBe(200);
    expect((await purge("edge-2", one)).status).toBe(403);
    expect((await purge("edge-2", two)).status).toBe(200);
  });

  it("DELETE /v1/nodes/{id} revokes the token; a new one is issued; tokens outlive an origin restart", async () => {
    const old = node(t, "edge-2").token!;
    const del = await call("DELETE", "/v1/nodes/edge-2", t.token);
    expect(await del.json()).toEqual({ deregistered: "edge-2", revoked: true });
    const reg = { id: "edge-2", tier: "edge", address: node(t, "edge-2").address };
    expect((await call("POST", "/v1/nodes", old, reg)).status).toBe(403);
    expect((await call("POST", "/v1/nodes/edge-2/acks", old, { changeId: "x" })).status).toBe(403);

    const issued = await call("POST", "/v1/nodes/edge-2/token", t.token);
    expect(issued.status).toBe(201);
    const { token: fresh } = (await issued.json()) as { token: string };
    expect(fresh).not.toBe(old);
    expect((await call("POST", "/v1/nodes", fresh, reg)).status).toBe(201);
    expect((await call("POST", "/v1/nodes/edge-2/token", t.token, undefined)).status).toBe(201);
    expect((await call("POST", "/v1/nodes", fresh, reg)).status).toBe(403); // re-issued: superseded
    expect((await call("POST", "/v1/nodes/Bad%20Id/token", t.token)).status).toBe(400);

    // The origin restarts on the same data dir: a token it issued still works.
    const issued9 = await call("POST", "/v1/nodes/edge-9/token", t.nodeToken);
    const { token: nine } = (await issued9.json()) as { token: string };
    const one = node(t, "edge-1").token!;
    await t.close();
    logs.push("--- restart ---");
    t = await start();
    const change = await putA(t, "www", "192.0.2.42");
    expect((await waitConverged(t, change.changeId, 10_000)).status).toBe("INSYNC");
    const reg1 = { id: "edge-1", tier: "edge", address: node(t, "edge-1").address };
    // edge-1 got a new token at this start: the one from before is superseded, not reused.
    expect((await call("POST", "/v1/nodes", one, reg1)).status).toBe(403);
    expect((await call("POST", "/v1/nodes", node(t, "edge-1").token!, reg1)).status).toBe(201);
    const reg9 = { id: "edge-9", tier: "edge", address: "http://127.0.0.1:1" };
    expect((await call("POST", "/v1/nodes", nine, reg9)).status).toBe(201);
  });

  it("never writes a token to the logs", () => {
    expect(logs.length).toBeGreaterThan(0);
    const secrets = [t.token, t.nodeToken, ...t.nodes.map((n) => n.token).filter(Boolean)];
    for (const s of secrets) {
      expect(logs.filter((l) => l.includes(s!))).toEqual([]);
    }
  });
});
