/** `ttl` receipts (residualMs) and read repair, on the virtual clock with a scripted parent. */
import { beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import type { PurgeEvent } from "../../core/purge.ts";
import { NodeSync } from "../../core/sync.ts";
import { Edge } from "../../edge/cache.ts";
import { LruStorage } from "../../edge/storage-lru.ts";
import { cacheStatusOf } from "../support/cache-status.ts";
import { FakeParent, get, makeEdge, START } from "./support.ts";

let clock: VirtualClock;
let parent: FakeParent;
let edge: Edge;

beforeEach(() => {
  clock = new VirtualClock(START);
  parent = new FakeParent(clock);
  edge = makeEdge(clock, parent.fetch);
});

const www = "/resolve?name=www.example.test&type=A";
const mail = "/resolve?name=mail.example.test&type=A";
const ftp = "/resolve?name=ftp.example.test&type=A";

function ttlEvent(serial: number, keys = ["www.example.test"]): PurgeEvent {
  return { changeId: `c${serial}`, zone: "example.test", serial, keys, mode: "ttl", ts: 0 };
}

/** Fills `path` with the parent's current answer under the owner name's surrogate key. */
async function fill(path: string) {
  parent.keys = `${new URL(path, "http://x").searchParams.get("name")} zone:example.test`;
  return edge.handle(get(path));
}

describe("ttl mode: residualMs", () => {
  it("is the fresh lifetime left plus stale-while-revalidate, for entries older than the event", async () => {
    parent.cacheControl = "max-age=60, stale-while-revalidate=30, stale-if-error=86400";
    await fill(www);
    await clock.advance(10_000);
    // stale-if-error is not counted: it only applies while the parent fails.
    expect(edge.residualMs(ttlEvent(2))).toBe(80_000);
    expect(edge.residualMs(ttlEvent(2, ["zone:example.test"]))).toBe(80_000);
    expect(edge.residualMs(ttlEvent(2, ["*"]))).toBe(80_000);
    expect(edge.residualMs(ttlEvent(2, ["mail.example.test"]))).toBe(0);
    expect(edge.residualMs(ttlEvent(1))).toBe(0);
    await clock.advance(80_000);
    expect(edge.residualMs(ttlEvent(2))).toBe(0);
  });

  it("counts the parent's Age, and no stale window where stale is forbidden", async () => {
    parent.cacheControl = "max-age=60, stale-while-revalidate=30, must-revalidate";
    parent.extra = { age: "15" };
    await fill(www);
    expect(edge.residualMs(ttlEvent(2))).toBe(45_000);
  });

  it("is 0 for a soft-purged entry, which is never served without asking", async () => {
    await fill(www);
    edge.purge({ key: "www.example.test", mode: "soft" });
    expect(edge.residualMs(ttlEvent(2))).toBe(0);
  });

  it("leaves held entries alone but floors new fills, so a lagging parent cannot refill old data", async () => {
    await fill(www);
    edge.applyPurge(ttlEvent(2));
    expect(cacheStatusOf(await edge.handle(get(www)), "edge-1")).toMatch(/hit/);
    await fill(mail);
    edge.applyPurge(ttlEvent(3, ["mail.example.test"]));
    edge.purge({ url: mail, mode: "hard" });
    const refill = await fill(mail);
    expect(cacheStatusOf(refill, "edge-1")).toContain("detail=serial-below-floor");
    expect(parent.requests.at(-1)?.headers.get("x-min-serial")).toBe("3");
  });

  it("NodeSync acks a ttl change only once the entry can no longer be served", async () => {
    parent.cacheControl = "max-age=60, stale-while-revalidate=30";
    await fill(www);
    await clock.advance(30_000);
    const acks: number[] = [];
    const sync = new NodeSync({
      nodeId: "edge-1",
      target: edge,
      clock,
      feed: async () => ({ kind: "changes", serial: 1, changes: [] }),
      zones: async () => [{ zone: "example.test", serial: 1 }],
      ack: async (_zone, serial) => void acks.push(serial),
      modeOf: () => "ttl",
      pollIntervalMs: 3_600_000,
      pollJitter: 0,
    });
    await sync.start();
    await sync.onEvent(ttlEvent(2));
    await clock.advance(59_000);
    expect(acks).toEqual([]);
    await clock.advance(1_000);
    expect(acks).toEqual([2]);
    await sync.stop();
  });
});

describe("read repair", () => {
  it("a newer serial from the parent soft-purges the zone's older entries, once per serial", async () => {
    await fill(www);
    await fill(mail);
    parent.serial = 2;
    await fill(ftp);
    expect(edge.metrics()).toMatchObject({ readRepairs: 1, readRepairedEntries: 2 });
    // Revalidated with If-None-Match: an unchanged RRset comes back 304.
    const res = await edge.handle(get(www));
    expect(cacheStatusOf(res, "edge-1")).toMatch(/^edge-1; fwd=stale; fwd-status=304/);
    expect(parent.requests.at(-1)?.headers.get("if-none-match")).toBe('"1"');
    expect(res.headers.get("x-serial")).toBe("2");
    // More answers at serial 2 (a 304 above, a fill here) mark nothing again.
    await fill("/resolve?name=new.example.test&type=A");
    expect(edge.metrics()).toMatchObject({ readRepairs: 1, readRepairedEntries: 2 });
    expect(cacheStatusOf(await edge.handle(get(mail)), "edge-1")).toMatch(/fwd=stale/);
    expect(cacheStatusOf(await edge.handle(get(mail)), "edge-1")).toMatch(/hit/);
    parent.serial = 3;
    await fill("/resolve?name=other.example.test&type=A");
    // www, mail, ftp and new, all at serial 2 now.
    expect(edge.metrics()).toMatchObject({ readRepairs: 2, readRepairedEntries: 6 });
  });

  it("does not fire for a serial a purge event already brought", async () => {
    await fill(www);
    edge.applyPurge({ ...ttlEvent(2, ["mail.example.test"]), mode: "soft" });
    parent.serial = 2;
    await fill(ftp);
    expect(edge.metrics().readRepairs).toBe(0);
    expect(cacheStatusOf(await edge.handle(get(www)), "edge-1")).toMatch(/hit/);
  });

  it("still fires after a ttl event: another representation is not served older than one already served", async () => {
    // The same name by DNS JSON and by DoH: two cache entries (RFC 9111 §2).
    const doh = "/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlBHRlc3QAAAEAAQ";
    await fill(www);
    edge.applyPurge(ttlEvent(2));
    parent.serial = 2;
    parent.keys = "www.example.test zone:example.test";
    const newer = await edge.handle(get(doh));
    expect(newer.headers.get("x-serial")).toBe("2");
    expect(edge.metrics()).toMatchObject({ readRepairs: 1, readRepairedEntries: 1 });
    // The JSON entry, filled at serial 1 and still fresh, is revalidated, not served as it is.
    const json = await edge.handle(get(www));
    expect(cacheStatusOf(json, "edge-1")).toMatch(/fwd=stale/);
    expect(json.headers.get("x-serial")).toBe("2");
  });

  it("other zones are untouched", async () => {
    await fill(www);
    parent.serial = 2;
    parent.extra = { "x-zone": "other.test" };
    parent.keys = "a.other.test zone:other.test";
    await edge.handle(get("/resolve?name=a.other.test&type=A"));
    expect(cacheStatusOf(await edge.handle(get(www)), "edge-1")).toMatch(/hit/);
  });

  it("can be turned off", async () => {
    edge = new Edge({
      id: "edge-1",
      parent: "http://parent.test",
      fetch: parent.fetch,
      clock,
      storage: new LruStorage(),
      readRepair: false,
    });
    await fill(www);
    parent.serial = 2;
    await fill(ftp);
    expect(edge.metrics().readRepairs).toBe(0);
    expect(cacheStatusOf(await edge.handle(get(www)), "edge-1")).toMatch(/hit/);
  });
});
