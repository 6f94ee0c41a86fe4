/**
 * `push` mode against the real origin read routes in process: a pushed
 * answer must be byte for byte what the origin itself now serves.
 */
import dnsPacket from "dns-packet";
import { beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import type { PurgeEvent } from "../../core/purge.ts";
import type { RRType } from "../../core/records.ts";
import { eventFromFeed } from "../../core/sync.ts";
import type { Edge } from "../../edge/cache.ts";
import { readRoutes } from "../../origin/reads.ts";
import { Store } from "../../origin/store.ts";
import { cacheStatusOf } from "../support/cache-status.ts";
import { get, makeEdge, START } from "./support.ts";

const ZONE = "example.test";

let clock: VirtualClock;
let store: Store;
let edge: Edge;
let parentCalls: number;
let events: PurgeEvent[];
let origin: (path: string) => Promise<Response>;

beforeEach(async () => {
  clock = new VirtualClock(START);
  store = new Store({
    clock,
    durability: { append: async (_r, onDurable) => onDurable() },
    changeLogLimit: 100,
    warn: (m) => {
      throw new Error(m);
    },
  });
  const app = readRoutes({ store, clock });
  parentCalls = 0;
  origin = async (path) => app.fetch(new Request(`http://parent.test${path}`));
  edge = makeEdge(clock, async (req) => {
    parentCalls++;
    return app.fetch(req);
  });
  events = [];
  store.onCommit((c) => {
    if (c.op === "update") events.push(eventFromFeed(ZONE, c, "push"));
  });
  await store.createZone({
    name: ZONE,
    config: { staleWhileRevalidate: 30, staleIfError: 600 },
    rrsets: [
      { name: "@", type: "NS", data: ["ns1.example.test"] },
      { name: "ns1", type: "A", data: ["192.0.2.53"] },
      { name: "www", type: "A", ttl: 60, data: ["192.0.2.10"] },
      { name: "alias", type: "CNAME", ttl: 60, data: ["www.example.test"] },
    ],
  });
});

/** Commits one RRset change and hands the resulting push event to the edge. */
async function change(name: string, type: RRType, data: unknown[] | undefined, ttl = 120) {
  const { serial } = await store.update(ZONE, [
    data === undefined
      ? { changetype: "DELETE", name, type }
      : { changetype: "REPLACE", name, type, ttl, data },
  ]);
  const event = events.at(-1)!;
  edge.applyPurge(event);
  return { serial, event };
}

function doh(name: string, type: string, edns = false): string {
  const q = dnsPacket.encode({
    type: "query",
    id: 0,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type: type as dnsPacket.RecordType }],
    additionals: edns ? [{ type: "OPT", name: ".", udpPayloadSize: 1232 } as dnsPacket.Answer] : [],
  });
  return `/dns-query?dns=${Buffer.from(q).toString("base64url")}`;
}

const json = (name: string, type: string) => `/resolve?name=${name}&type=${type}`;

/** Fills the edge, applies the change, and checks the edge now serves the origin's new answer from cache. */
async function expectPushed(path: string, name: string, type: RRType, data: unknown[]) {
  expect((await edge.handle(get(path))).status).toBe(200);
  await clock.advance(20_000);
  const calls = parentCalls;
  const { serial } = await change(name, type, data);
  const res = await edge.handle(get(path));
  expect(cacheStatusOf(res, "edge-1")).toMatch(/^edge-1; hit; ttl=120;/);
  expect(parentCalls).toBe(calls);
  const fromOrigin = await origin(path);
  expect(Buffer.from(await res.arrayBuffer())).toEqual(Buffer.from(await fromOrigin.arrayBuffer()));
  expect(res.headers.get("age")).toBe("0");
  expect(res.headers.get("x-serial")).toBe(String(serial));
  expect(res.headers.get("etag")).toBe(`"${serial}"`);
  expect(res.headers.get("etag")).toBe(fromOrigin.headers.get("etag"));
  expect(res.headers.get("cache-control")).toBe(
    "max-age=120, stale-while-revalidate=30, stale-if-error=600",
  );
}

describe("push: answers rewritten in place, identical to the origin's", () => {
  const cases: [RRType, string, unknown[]][] = [
    ["A", "www", ["192.0.2.77", "192.0.2.78"]],
    ["AAAA", "v6", ["2001:db8::1", "::ffff:192.0.2.1", "1:2:3:4:5:6:7:8"]],
    ["TXT", "txt", [['hello "world"', "caf\u00e9", "back\\slash\ttab"], "second"]],
    ["CAA", "@", [{ flags: 128, tag: "issue", value: "ca.example" }]],
    ["PTR", "ptr", ["host.example.test"]],
    ["CNAME", "cn", ["target.example.test"]],
  ];
  for (const [type, name, data] of cases) {
    const owner = name === "@" ? ZONE : `${name}.${ZONE}`;
    it(`${type}: DNS JSON`, async () => {
      await store.update(ZONE, [{ changetype: "REPLACE", name, type, ttl: 60, data: [data[0]] }]);
      await expectPushed(json(owner, type), name, type, data);
    });
    it(`${type}: DoH wire, with and without EDNS`, async () => {
      await store.update(ZONE, [{ changetype: "REPLACE", name, type, ttl: 60, data: [data[0]] }]);
      await expectPushed(doh(owner, type), name, type, data);
      await expectPushed(doh(owner, type, true), name, type, data);
    });
  }

  it("MX in JSON is rewritten; in wire form (additional section) it is soft-purged", async () => {
    const mx = (host: string) => [{ preference: 10, exchange: host }];
    await store.update(ZONE, [{ changetype: "REPLACE", name: "@", type: "MX", data: mx("ns1") }]);
    await expectPushed(json(ZONE, "MX"), "@", "MX", mx("www.example.test"));
    await edge.handle(get(doh(ZONE, "MX")));
    await change("@", "MX", mx("ns1.example.test"));
    const res = await edge.handle(get(doh(ZONE, "MX")));
    expect(cacheStatusOf(res, "edge-1")).toMatch(/^edge-1; fwd=stale; fwd-status=200/);
  });

  it("counts rewrites in /metrics", async () => {
    await expectPushed(json(`www.${ZONE}`, "A"), "www", "A", ["192.0.2.99"]);
    expect(edge.metrics().pushed).toBe(1);
  });
});

describe("push: what it cannot rewrite", () => {
  it("a CNAME chain whose target changed is soft-purged and revalidated", async () => {
    await edge.handle(get(json(`alias.${ZONE}`, "A")));
    await change("www", "A", ["192.0.2.77"]);
    const res = await edge.handle(get(json(`alias.${ZONE}`, "A")));
    expect(cacheStatusOf(res, "edge-1")).toMatch(/^edge-1; fwd=stale; fwd-status=200/);
    expect(await res.json()).toMatchObject({ Answer: [{ type: 5 }, { data: "192.0.2.77" }] });
  });

  it("a negative answer turning positive is soft-purged", async () => {
    await edge.handle(get(json(`new.${ZONE}`, "A")));
    await change("new", "A", ["192.0.2.5"]);
    const res = await edge.handle(get(json(`new.${ZONE}`, "A")));
    expect(cacheStatusOf(res, "edge-1")).toMatch(/fwd=stale; fwd-status=200/);
    expect(await res.json()).toMatchObject({ Status: 0, Answer: [{ data: "192.0.2.5" }] });
  });

  it("a deleted RRset drops the entry", async () => {
    await edge.handle(get(json(`www.${ZONE}`, "A")));
    await change("www", "A", undefined);
    const res = await edge.handle(get(json(`www.${ZONE}`, "A")));
    expect(cacheStatusOf(res, "edge-1")).toMatch(/^edge-1; fwd=uri-miss/);
    expect(await res.json()).toMatchObject({ Status: 3 });
  });

  it("other types at a changed name are soft-purged; an entry at or past the serial is left alone", async () => {
    await edge.handle(get(json(`www.${ZONE}`, "AAAA")));
    const { event } = await change("www", "A", ["192.0.2.77"]);
    expect(cacheStatusOf(await edge.handle(get(json(`www.${ZONE}`, "AAAA"))), "edge-1")).toMatch(
      /fwd=stale/,
    );
    await edge.handle(get(json(`www.${ZONE}`, "A")));
    const before = parentCalls;
    edge.applyPurge({
      ...event,
      rrsets: [{ name: `www.${ZONE}`, type: "A", ttl: 5, data: ["192.0.2.1"] }],
    });
    const res = await edge.handle(get(json(`www.${ZONE}`, "A")));
    expect(await res.json()).toMatchObject({ Answer: [{ data: "192.0.2.77" }] });
    expect(parentCalls).toBe(before);
  });

  it("an RRset that is not valid rdata is never served: the entry is soft-purged", async () => {
    await edge.handle(get(json(`www.${ZONE}`, "A")));
    const { event } = await change("other", "A", ["192.0.2.3"]);
    edge.applyPurge({
      ...event,
      serial: event.serial + 1,
      keys: [`www.${ZONE}`],
      rrsets: [
        { name: `www.${ZONE}`, type: "A", ttl: 60, data: ["not-an-ip", { evil: 1 }] as never },
      ],
    });
    const res = await edge.handle(get(json(`www.${ZONE}`, "A")));
    expect(cacheStatusOf(res, "edge-1")).toMatch(/fwd=stale/);
    expect(JSON.stringify(await res.json())).not.toMatch(/not-an-ip|evil/);
  });

  it("an event without RRsets acts as soft", async () => {
    await edge.handle(get(json(`www.${ZONE}`, "A")));
    const { event } = await change("other", "A", ["192.0.2.3"]);
    edge.applyPurge({
      ...event,
      serial: event.serial + 1,
      keys: [`www.${ZONE}`],
      rrsets: undefined,
    });
    expect(cacheStatusOf(await edge.handle(get(json(`www.${ZONE}`, "A"))), "edge-1")).toMatch(
      /fwd=stale/,
    );
  });
});
