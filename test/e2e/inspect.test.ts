/**
 * Cache inspection: GET /cache on an edge and on a resolver's admin endpoint
 * (each behind its token) shows the entry for a name or key, with its TTL,
 * what remains, fresh or stale, its serial and where it came from; a soft
 * purge shows as stale, bad queries are 400 with a reason.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { digShort, node, startTopology } from "./support.ts";

let t: Awaited<ReturnType<typeof startTopology>>;
const www = "/resolve?name=www.example.test&type=A";

beforeAll(async () => {
  t = await startTopology({
    name: "inspect",
    edges: [
      { id: "regional-1", tier: "regional", parent: "origin" },
      { id: "edge-1", parent: "regional-1" },
    ],
    resolvers: [{ id: "res-1", upstream: "edge-1" }],
  });
}, 30_000);
afterAll(() => t?.close());

/** Each node has its own token (issued by the origin): the one of the node the URL names. */
const tokenOf = (url: string) =>
  t.nodes.find(
    (n) =>
      url.startsWith(n.address) ||
      (typeof n.extra?.admin === "string" && url.startsWith(n.extra.admin)),
  )?.token ?? null;
const get = (url: string, token: string | null = tokenOf(url)) =>
  fetch(url, token ? { headers: { authorization: `Bearer ${token}` } } : {});

interface Listing<E> {
  node: string;
  entries: E[];
}

describe("GET /cache on an edge", () => {
  it("shows the entry for a name and for its key: TTL, remaining, state, serial, source", async () => {
    const edge = node(t, "edge-1").address;
    expect((await fetch(`${edge}${www}`)).status).toBe(200);
    const res = await get(`${edge}/cache?name=WWW.example.test.`);
    expect(res.status).toBe(200);
    const byName = (await res.json()) as Listing<Record<string, unknown>>;
    expect(byName.node).toBe("edge-1");
    expect(byName.entries).toHaveLength(1);
    const e = byName.entries[0]!;
    expect(e).toMatchObject({
      key: www,
      status: 200,
      state: "fresh",
      invalidated: false,
      serial: 1,
      from: { parent: node(t, "regional-1").address },
    });
    expect(e.from).toMatchObject({ cacheStatus: expect.stringMatching(/^regional-1; /) });
    expect(e.ttl).toBeGreaterThan(0);
    expect(e.remaining).toBeLessThanOrEqual(e.ttl as number);
    expect(e.remaining).toBeGreaterThan(0);
    expect(e.surrogateKeys).toContain("www.example.test");

    const byKey = (await (
      await get(`${edge}/cache?key=${encodeURIComponent(www)}`)
    ).json()) as Listing<unknown>;
    expect(byKey.entries).toEqual([
      { ...e, age: expect.any(Number), remaining: expect.any(Number) },
    ]);
  });

  it("a soft purge shows as stale", async () => {
    const edge = node(t, "edge-1").address;
    const purge = await fetch(`${edge}/purge`, {
      method: "POST",
      headers: {
        authorization: `Bearer ${node(t, "edge-1").token}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ key: "www.example.test", mode: "soft" }),
    });
    expect(purge.status).toBe(200);
    const list = (await (await get(`${edge}/cache?name=www.example.test`)).json()) as Listing<
      Record<string, unknown>
    >;
    expect(list.entries[0]).toMatchObject({ state: "stale", invalidated: true });
    expect(list.entries[0]!.remaining).toBeLessThanOrEqual(0);
  });

  it("needs the token, and says what a bad query lacks", async () => {
    const edge = node(t, "edge-1").address;
    expect((await get(`${edge}/cache?name=www.example.test`, null)).status).toBe(401);
    expect((await get(`${edge}/cache?name=www.example.test`, "wrong-token-123")).status).toBe(403);
    const none = await get(`${edge}/cache`);
    expect(none.status).toBe(400);
    expect(await none.json()).toMatchObject({ field: "query", reason: expect.any(String) });
    expect((await get(`${edge}/cache?name=a&key=b`)).status).toBe(400);
    const bad = await get(`${edge}/cache?name=a..b`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ field: "name" });
    const empty = (await (
      await get(`${edge}/cache?name=nothing.example.test`)
    ).json()) as Listing<unknown>;
    expect(empty.entries).toEqual([]);
  });
});

describe("GET /cache on a resolver's admin endpoint", () => {
  it("shows the entry for a name: TTL, remaining, state, serial, upstream", async () => {
    const res1 = node(t, "res-1");
    expect(await digShort(res1.address, "mail.example.test")).not.toBe("");
    const res = await get(`${res1.extra.admin}/cache?name=mail.example.test`);
    expect(res.status).toBe(200);
    const list = (await res.json()) as Listing<Record<string, unknown>>;
    expect(list.node).toBe("res-1");
    expect(list.entries).toHaveLength(1);
    const e = list.entries[0]!;
    expect(e).toMatchObject({
      name: "mail.example.test",
      type: "A",
      rcode: 0,
      negative: false,
      state: "fresh",
      serial: 1,
      from: node(t, "edge-1").address,
    });
    expect(e.ttl).toBeGreaterThan(0);
    expect(e.remaining).toBeLessThanOrEqual(e.ttl as number);
  });

  it("needs the admin token; a bad name is 400", async () => {
    const admin = node(t, "res-1").extra.admin;
    expect((await get(`${admin}/cache?name=mail.example.test`, null)).status).toBe(401);
    const bad = await get(`${admin}/cache?name=a..b`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({
      field: "name",
      reason: expect.stringMatching(/label/),
    });
    expect((await get(`${admin}/cache`)).status).toBe(400);
  });
});
