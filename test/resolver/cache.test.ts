import { beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import type { PurgeEvent } from "../../core/purge.ts";
import { ResolverCache, type Served } from "../../resolver/cache.ts";
import { toWire } from "../../resolver/handler.ts";
import { type CacheConfig, DEFAULT_CACHE } from "../../resolver/policy.ts";
import { FakeAuthority } from "./fake-authority.ts";

const A = 1;
let clock: VirtualClock;
let auth: FakeAuthority;
let cache: ResolverCache;

function setup(config: Partial<CacheConfig> = {}): void {
  clock = new VirtualClock(1_000_000);
  auth = new FakeAuthority(clock);
  auth.set("www.example.test", "A", 100, ["192.0.2.10"]);
  cache = new ResolverCache("res-t", { ...DEFAULT_CACHE, ...config }, clock, auth.upstream);
}

function lookup(name: string, qtype = A): Promise<Served> {
  return Promise.resolve(cache.lookup(`${name}/${qtype}`, toWire(name), qtype));
}

/** Starts a lookup and lets virtual time run until it settles. */
async function lookupOver(name: string, ms: number): Promise<Served> {
  let result: Served | undefined;
  const p = lookup(name).then((s) => {
    result = s;
  });
  await clock.advance(ms);
  await p;
  return result!;
}

const seconds = (s: number) => clock.advance(s * 1000);

beforeEach(() => setup());

describe("fresh answers", () => {
  it("fetches a miss once, then counts the TTL down from the cache", async () => {
    expect((await lookup("www.example.test")).elapsed).toBe(0);
    await seconds(40);
    const hit = cache.lookup("www.example.test/1", toWire("www.example.test"), A);
    expect(hit).not.toBeInstanceOf(Promise);
    expect(hit).toMatchObject({ elapsed: 40, stale: false });
    expect(auth.calls).toBe(1);
    expect(cache.metrics).toMatchObject({ hits: 1, misses: 1 });
    await seconds(61);
    expect(await lookup("www.example.test")).toMatchObject({ elapsed: 0, stale: false });
    expect(auth.calls).toBe(2);
  });

  it("caches NXDOMAIN for min(SOA TTL, MINIMUM) = 60 s", async () => {
    expect((await lookup("nope.example.test")).answer).toMatchObject({
      rcode: 3,
      negative: true,
      ttl: 60,
    });
    await seconds(50);
    await lookup("nope.example.test");
    expect(auth.calls).toBe(1);
    await seconds(11);
    await lookupOver("nope.example.test", 0);
    expect(auth.calls).toBe(2);
  });

  it("coalesces concurrent misses into one upstream request", async () => {
    auth.delayMs = 50;
    const all = Promise.all([1, 2, 3, 4, 5].map(() => lookup("www.example.test")));
    await clock.advance(50);
    expect((await all).every((s) => s.answer.ttl === 100)).toBe(true);
    expect(auth.calls).toBe(1);
    expect(cache.metrics.coalesced).toBe(4);
  });

  it("prefetches in the last 10% of the TTL, in the background", async () => {
    await lookup("www.example.test");
    await seconds(89);
    cache.lookup("www.example.test/1", toWire("www.example.test"), A);
    expect(auth.calls).toBe(1);
    await seconds(2);
    const hit = cache.lookup("www.example.test/1", toWire("www.example.test"), A);
    expect(hit).toMatchObject({ elapsed: 91, stale: false });
    await clock.advance(0);
    expect(auth.calls).toBe(2);
    expect(cache.lookup("www.example.test/1", toWire("www.example.test"), A)).toMatchObject({
      elapsed: 0,
    });
    expect(cache.metrics.prefetches).toBe(1);
    // The fill asked plainly; the prefetch asked the path to revalidate (no-cache).
    expect(auth.revalidations).toEqual([false, true]);
  });
});

describe("serve-stale (RFC 8767)", () => {
  beforeEach(async () => {
    await lookup("www.example.test");
    await seconds(101);
  });

  it("tries the upstream first and answers stale when it fails", async () => {
    auth.failWith = "origin down";
    expect(await lookup("www.example.test")).toMatchObject({ stale: true });
    expect(auth.calls).toBe(2);
    expect(cache.metrics).toMatchObject({ staleServed: 1, upstreamFailures: 1 });
  });

  it("prefers a fresh answer that arrives within the client timer", async () => {
    auth.delayMs = 1000;
    expect(await lookupOver("www.example.test", 1000)).toMatchObject({ stale: false, elapsed: 0 });
  });

  it("answers stale after the 1.8 s client timer, and stores the late refresh", async () => {
    auth.delayMs = 5000;
    let settled: Served | undefined;
    void lookup("www.example.test").then((s) => {
      settled = s;
    });
    await clock.advance(1799);
    expect(settled).toBeUndefined();
    await clock.advance(1);
    expect(settled).toMatchObject({ stale: true });
    await clock.advance(3200);
    expect(cache.lookup("www.example.test/1", toWire("www.example.test"), A)).toMatchObject({
      stale: false,
    });
  });

  it("asks a failing upstream at most once per 30 s per name", async () => {
    auth.failWith = "origin down";
    await lookup("www.example.test");
    await seconds(29);
    expect(cache.lookup("www.example.test/1", toWire("www.example.test"), A)).toMatchObject({
      stale: true,
    });
    expect(auth.calls).toBe(2);
    await seconds(2);
    await lookup("www.example.test");
    expect(auth.calls).toBe(3);
  });

  it("stops serving stale after max-stale, then fails", async () => {
    auth.failWith = "origin down";
    await seconds(86_400);
    await expect(lookup("www.example.test")).rejects.toThrow("origin down");
  });
});

describe("serve-stale behind an edge: answers already expired upstream (Age >= TTL)", () => {
  const hit = () => cache.lookup("www.example.test/1", toWire("www.example.test"), A);

  it("answers stale from the own entry and ask at most once per 30 s", async () => {
    const own = (await lookup("www.example.test")).answer;
    await seconds(101);
    auth.age = 150; // the edge's stale-if-error copy: TTL 100, Age 150
    expect(await lookup("www.example.test")).toEqual({ answer: own, elapsed: 0, stale: true });
    expect(auth.calls).toBe(2);
    for (let i = 0; i < 5; i++) {
      await seconds(5);
      expect(hit()).toMatchObject({ answer: own, stale: true });
    }
    expect(auth.calls).toBe(2);
    await seconds(6);
    expect(await lookup("www.example.test")).toMatchObject({ stale: true });
    expect(auth.calls).toBe(3);
    expect(cache.metrics).toMatchObject({ upstreamStale: 2, staleServed: 7 });
    auth.age = 0;
    await seconds(31);
    expect(await lookup("www.example.test")).toMatchObject({ stale: false });
    expect(hit()).toMatchObject({ stale: false, elapsed: 0 });
  });

  it("a miss stores the expired answer as stale, its max-stale counted from its upstream expiry", async () => {
    setup({ minTtl: 300, maxStaleMs: 3_600_000 });
    auth.age = 1_900; // 1800 s past its TTL of 100
    const first = await lookup("www.example.test");
    expect(first).toMatchObject({ stale: true, answer: { staleness: 1_800 } });
    expect(cache.entries).toBe(1);
    await seconds(29);
    expect(hit()).toMatchObject({ answer: first.answer, stale: true });
    expect(auth.calls).toBe(1);
    // 1800 s stale upstream + 1800 s here reaches max-stale (1 h): dropped; the edge's copy aged too.
    await seconds(1_771);
    auth.age = 3_700;
    await expect(lookup("www.example.test")).rejects.toThrow(/beyond max-stale/);
    expect(cache.entries).toBe(0);
  });

  it("counts Age above the TTL as stale, not Age equal to it (caches round Age up)", async () => {
    auth.age = 101;
    expect(await lookup("www.example.test")).toMatchObject({ stale: true });
    setup();
    auth.age = 100;
    expect(await lookup("www.example.test")).toMatchObject({ stale: false, answer: { ttl: 0 } });
    expect(cache.entries).toBe(0);
    expect(cache.metrics.upstreamStale).toBe(0);
  });

  it("within stale-while-revalidate the path is refreshing: answered, not kept, asked again", async () => {
    const own = (await lookup("www.example.test")).answer;
    await seconds(101);
    auth.staleWhileRevalidate = 30;
    auth.age = 130; // 30 s past its TTL: an edge may still be revalidating (RFC 5861 §3)
    expect(await lookup("www.example.test")).toMatchObject({ stale: false, answer: { ttl: 0 } });
    expect(hit()).toBeInstanceOf(Promise);
    await clock.advance(0);
    expect(auth.calls).toBe(3);
    auth.age = 131; // beyond it: only stale-if-error (RFC 5861 §4) serves this
    expect(await lookup("www.example.test")).toEqual({ answer: own, elapsed: 0, stale: true });
    expect(hit()).toMatchObject({ answer: own, stale: true });
    expect(auth.calls).toBe(4);
    expect(cache.metrics.upstreamStale).toBe(1);
  });

  it("an answer that expired on the way (Cache-Status: every cache refreshed) is no failure", async () => {
    const own = (await lookup("www.example.test")).answer;
    await seconds(100);
    // Asked as the edge's copy ends: the regional's fresh hit (ttl=0) revalidates it, and the
    // Age each tier rounds up puts it a second past its TTL (fuzz seeds 118066, 118345).
    auth.set("www.example.test", "A", 100, ["192.0.2.99"]);
    auth.age = 101;
    auth.cacheStatus = "regional-1; hit; ttl=0, edge-3; fwd=stale; fwd-status=304; ttl=-1; stored";
    const served = await lookup("www.example.test");
    expect(served).toMatchObject({ stale: false, answer: { ttl: 0 } });
    expect(served.answer).not.toEqual(own);
    expect(cache.metrics.upstreamStale).toBe(0);
    // Not kept, no failure recheck: the next question asks again, and gets the fresh copy.
    expect(hit()).toBeInstanceOf(Promise);
    await clock.advance(0);
    expect(auth.calls).toBe(3);
    auth.age = 0;
    auth.cacheStatus =
      "regional-1; fwd=miss; fwd-status=200; stored, edge-3; fwd=miss; fwd-status=200; stored";
    expect(await lookup("www.example.test")).toMatchObject({ stale: false, answer: { ttl: 100 } });
    expect(hit()).toMatchObject({ stale: false });
    expect(auth.calls).toBe(4);
  });

  it("keeps its own entry unless the upstream's stale copy carries a newer serial", async () => {
    await lookup("www.example.test");
    await seconds(101);
    auth.set("www.example.test", "A", 100, ["192.0.2.99"]);
    auth.age = 150;
    auth.serial = 8;
    const served = await lookup("www.example.test");
    expect(served.stale).toBe(true);
    expect(served.answer.wire.includes(Buffer.from([192, 0, 2, 99]))).toBe(true);
    expect(hit()).toMatchObject({ answer: served.answer, stale: true });
  });

  it("prefetch that gets a stale copy keeps the fresh entry and does not retry for 30 s", async () => {
    const own = (await lookup("www.example.test")).answer;
    await seconds(91);
    auth.age = 150;
    expect(hit()).toMatchObject({ answer: own, stale: false });
    await clock.advance(0);
    expect(auth.calls).toBe(2);
    await seconds(5);
    expect(hit()).toMatchObject({ answer: own, stale: false, elapsed: 96 });
    expect(auth.calls).toBe(2);
  });
});

describe("purge", () => {
  beforeEach(async () => {
    auth.set("alias.example.test", "CNAME", 100, ["www.example.test"]);
    auth.set("other.test", "A", 100, ["192.0.2.99"]);
    await lookup("www.example.test");
    await lookup("alias.example.test");
    await lookup("other.test");
    expect(cache.entries).toBe(3);
  });

  it("hard by name drops the name and answers that depend on it", () => {
    expect(cache.purge({ name: "www.example.test" }, "hard")).toBe(2);
    expect(cache.entries).toBe(1);
  });

  it("soft marks expired: the next query refreshes, or serves stale if the upstream fails", async () => {
    expect(cache.purge({ zone: "example.test" }, "soft")).toBe(2);
    expect(cache.entries).toBe(3);
    auth.failWith = "origin down";
    expect(await lookup("www.example.test")).toMatchObject({ stale: true });
    auth.failWith = undefined;
    expect(await lookup("alias.example.test")).toMatchObject({ stale: false });
    expect(auth.calls).toBe(5);
  });

  it("applies purge bus events: zone keys, names, '*', and no-op for mode ttl", () => {
    const event = (keys: string[], mode: PurgeEvent["mode"]): PurgeEvent => ({
      changeId: "c1",
      zone: "example.test",
      serial: 2,
      keys,
      mode,
      ts: clock.now(),
    });
    cache.applyPurge(event(["zone:example.test"], "ttl"));
    expect(cache.entries).toBe(3);
    cache.applyPurge(event(["zone:example.test"], "invalidate"));
    expect(cache.entries).toBe(1);
    cache.applyPurge(event(["*"], "invalidate"));
    expect(cache.entries).toBe(0);
  });

  it("a change event spares entries at or past its serial; an operator's purge or a whole-zone event does not", async () => {
    const event = (serial: number, extra: Partial<PurgeEvent> = {}): PurgeEvent => ({
      changeId: `c${serial}`,
      zone: "example.test",
      serial,
      keys: ["www.example.test"],
      mode: "invalidate",
      ts: clock.now(),
      ...extra,
    });
    // Every entry was filled at the authority's serial 7: a change at 7 is held already.
    cache.applyPurge(event(7));
    cache.applyPurge(event(7, { mode: "soft" }));
    expect(cache.entries).toBe(3);
    expect(cache.lookup("www.example.test/1", toWire("www.example.test"), A)).not.toBeInstanceOf(
      Promise,
    );
    expect(cache.metrics.purged).toBe(0);
    cache.applyPurge(event(7, { explicit: true }));
    expect(cache.entries).toBe(1);
    await lookup("www.example.test");
    await lookup("alias.example.test");
    cache.applyPurge(event(7, { keys: ["zone:example.test"] }));
    expect(cache.entries).toBe(1);
    await lookup("www.example.test");
    await lookup("alias.example.test");
    // A change after the fill (serial 8) drops the name and the answer through it.
    cache.applyPurge(event(8));
    expect(cache.entries).toBe(1);
    expect(cache.metrics.purged).toBe(6);
  });

  it("judges a name by a deeper zone a purge event names after the name was first asked", async () => {
    auth.set("a.sub.example.test", "A", 100, ["192.0.2.20"]);
    await lookup("a.sub.example.test");
    expect(cache.metrics.floorRefusals).toBe(0);
    // The first event of zone sub.example.test: its floor (9) is above the authority's 7.
    cache.applyPurge({
      changeId: "c9",
      zone: "sub.example.test",
      serial: 9,
      keys: ["a.sub.example.test"],
      mode: "invalidate",
      ts: clock.now(),
    });
    await lookup("a.sub.example.test");
    // Refused, asked once more, refused again (and answered, below the floor).
    expect(cache.metrics.floorRefusals).toBe(2);
  });

  it("does not store an answer that was in flight during a hard purge", async () => {
    cache.purge({ all: true }, "hard");
    auth.delayMs = 100;
    const p = lookup("www.example.test");
    cache.purge({ name: "www.example.test" }, "hard");
    await clock.advance(100);
    await p;
    expect(cache.entries).toBe(0);
  });
});

describe("bounded by bytes", () => {
  it("evicts the least recently used entries and counts them", async () => {
    setup({ maxBytes: 1500 });
    for (let i = 0; i < 10; i++) {
      auth.set(`h${i}.example.test`, "A", 100, ["192.0.2.1"]);
      await lookup(`h${i}.example.test`);
    }
    expect(cache.bytes).toBeLessThanOrEqual(1500);
    expect(cache.metrics.evictions).toBe(10 - cache.entries);
    expect(cache.entries).toBeGreaterThan(0);
    expect(cache.purge({ name: "h0.example.test" }, "hard")).toBe(0);
  });
});
