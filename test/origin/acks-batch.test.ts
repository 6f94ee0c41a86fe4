/**
 * POST /v1/acks: the acks of several nodes in one request (what the nodes of
 * one process send, coalesced by core/sync.ts AckBatcher). Each item is
 * authorised by its own token and answered as POST /v1/nodes/{id}/acks
 * would answer it alone; the receipts are the same.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunningTopology } from "../../infra/up.ts";
import { changeStatus, node, putA, startTopology, waitConverged } from "../e2e/support.ts";

let t: RunningTopology;
beforeAll(async () => {
  t = await startTopology({
    name: "acks-batch",
    origin: { http: "127.0.0.1:0", dns: "127.0.0.1:0" },
    // No bus, no polling: only the acks this test sends move the receipts.
    bus: "off",
    defaults: { pollIntervalMs: 600_000 },
    edges: [
      { id: "edge-1", parent: "origin" },
      { id: "edge-2", parent: "origin" },
    ],
    resolvers: [],
  });
});
afterAll(async () => {
  await t?.close();
});

const batch = async (body: unknown) => {
  const res = await fetch(`${t.originUrl}/v1/acks`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

describe("POST /v1/acks", () => {
  it("takes each node's ack with its own token, and answers every item in order", async () => {
    const { serial, changeId } = await putA(t, "www", "192.0.2.51");
    const one = node(t, "edge-1").token!;
    const two = node(t, "edge-2").token!;
    const ack = { zone: "example.test", serial };
    const { status, body } = await batch({
      acks: [
        { node: "edge-1", token: one, ...ack },
        { node: "edge-2", token: one, ...ack }, // edge-1's token cannot ack for edge-2
        { node: "edge-2", token: two, zone: "example.test", serial: serial + 5 },
        { node: "edge-9", token: t.nodeToken, ...ack },
        { node: "edge-2", token: two, zone: "nowhere.test", serial: 1 },
        { node: "edge-2", token: two, changeId: "prg_none" },
        { node: "Bad Id", token: two, ...ack },
        { node: "edge-2", token: two, zone: "example.test" },
      ],
    });
    expect(status).toBe(200);
    const results = body.results as Record<string, unknown>[];
    expect(results.map((r) => r.status)).toEqual([200, 403, 400, 404, 404, 404, 400, 400]);
    expect(results[0]).toEqual({ status: 200, acked: ack });
    expect(results[2]).toMatchObject({ field: "serial", reason: expect.stringContaining("ahead") });
    expect(results[3]).toMatchObject({ reason: expect.stringContaining("not registered") });
    expect(results[6]).toMatchObject({ error: "invalid input", field: "acks[6].node" });
    expect(results[7]).toMatchObject({ error: "invalid input" });
    let s = await changeStatus(t, changeId);
    expect(s.nodes.map((n) => [n.id, n.status])).toEqual([
      ["edge-1", "INSYNC"],
      ["edge-2", "PENDING"],
    ]);
    // The nodes' token acks for any node, as on the single route.
    const last = await batch({ acks: [{ node: "edge-2", token: t.nodeToken, ...ack }] });
    expect(last.body).toEqual({ results: [{ status: 200, acked: ack }] });
    s = await waitConverged(t, changeId, 5_000);
    expect(s.status).toBe("INSYNC");
  });

  it("takes acks of a zone deleted meanwhile up to its last serial, so the deletion converges", async () => {
    const write = async (method: string, path: string, body: string, type: string) => {
      const res = await fetch(`${t.originUrl}${path}`, {
        method,
        headers: { authorization: `Bearer ${t.token}`, "content-type": type },
        body,
      });
      expect(res.ok, await res.clone().text()).toBe(true);
      return (await res.json()) as { serial: number; changeId: string };
    };
    const zoneFile = `$ORIGIN gone.test.\n$TTL 60\n@ IN SOA ns1.gone.test. h.gone.test. 7 3600 600 604800 300\n@ IN NS ns1.gone.test.\n`;
    await write("PUT", "/v1/zones/gone.test", zoneFile, "text/dns");
    const deleted = await write("DELETE", "/v1/zones/gone.test", "", "application/json");
    const acks = (serial: number) =>
      ["edge-1", "edge-2"].map((node) => ({
        node,
        token: t.nodeToken,
        zone: "gone.test",
        serial,
      }));
    const ahead = await batch({ acks: acks(deleted.serial + 1) });
    expect((ahead.body.results as { status: number }[]).map((r) => r.status)).toEqual([400, 400]);
    const late = await batch({ acks: acks(deleted.serial) });
    expect((late.body.results as { status: number }[]).map((r) => r.status)).toEqual([200, 200]);
    expect((await changeStatus(t, deleted.changeId)).status).toBe("INSYNC");
  });

  it("refuses a malformed batch as a whole with a reason", async () => {
    expect(await batch("{")).toMatchObject({ status: 400, body: { field: "body" } });
    expect(await batch({ acks: [] })).toMatchObject({ status: 400, body: { field: "acks" } });
    expect(await batch({ acks: {} })).toMatchObject({ status: 400, body: { field: "acks" } });
    expect(await batch({ acks: [1], more: true })).toMatchObject({ status: 400 });
    expect(await batch({ acks: [1] })).toMatchObject({
      status: 200,
      body: { results: [{ status: 400, error: "invalid input" }] },
    });
  });
});
