/**
 * The resolver's part of the propagation fabric, on the virtual clock: the
 * version floor and read-your-writes upstream, `ttl` receipts (residualMs),
 * and `push` updates in place.
 */
import * as packet from "dns-packet";
import { beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import type { PropagationMode, PurgeEvent } from "../../core/purge.ts";
import type { RRset } from "../../core/records.ts";
import { NodeSync } from "../../core/sync.ts";
import { ResolverCache, type Served } from "../../resolver/cache.ts";
import { toWire } from "../../resolver/handler.ts";
import { type CacheConfig, DEFAULT_CACHE } from "../../resolver/policy.ts";
import { FakeAuthority } from "./fake-authority.ts";

const TYPES: Record<string, number> = { A: 1, CNAME: 5, TXT: 16, AAAA: 28 };
let clock: VirtualClock;
let auth: FakeAuthority;
let cache: ResolverCache;

function setup(config: Partial<CacheConfig> = {}): void {
  clock = new VirtualClock(1_000_000);
  auth = new FakeAuthority(clock);
  auth.set("www.example.test", "A", 100, ["192.0.2.10"]);
  auth.set("alias.example.test", "CNAME", 100, ["www.example.test"]);
  auth.set("www.example.test", "TXT", 100, [["v=1"]]);
  cache = new ResolverCache(
    "res-t",
    { ...DEFAULT_CACHE, zones: ["example.test"], ...config },
    clock,
    auth.upstream,
  );
}
beforeEach(() => setup());

const key = (name: string, type: string) => `${toWire(name).toString("latin1")}/${TYPES[type]}`;

function query(name: string, type = "A"): Served | Promise<Served> {
  return cache.lookup(key(name, type), toWire(name), TYPES[type]!);
}

/** Looks up and lets virtual time run until the answer settles. */
async function lookup(name: string, type = "A", ms = 0): Promise<Served> {
  const p = Promise.resolve(query(name, type));
  await clock.advance(ms);
  return p;
}

/** The data of the answer records (TXT as strings). */
function data(s: Served): unknown[] {
  return (packet.decode(s.answer.wire).answers ?? []).map((a) => {
    const d = (a as { data: unknown }).data;
    return Array.isArray(d) ? d.map(String) : d;
  });
}

function event(
  mode: PropagationMode,
  serial: number,
  keys: string[],
  rrsets?: RRset[],
): PurgeEvent {
  return {
    changeId: `c${serial}`,
    zone: "example.test",
    serial,
    keys,
    mode,
    ts: clock.now(),
    ...(rrsets && { rrsets }),
  };
}

describe("version floor and read-your-writes upstream", () => {
  it("after a purge at serial 8, refetches ask X-Min-Serial 8 and never store an older answer", async () => {
    await lookup("www.example.test");
    cache.applyPurge(event("invalidate", 8, ["www.example.test"]));
    // The upstream lags the purge: it still answers serial 7, twice.
    const old = await lookup("www.example.test");
    expect(data(old)).toEqual(["192.0.2.10"]);
    // Answered as what it is: older than the serial this cache has acked, so
    // stale (EDE 3), or the receipt that says serial 8 would be false.
    expect(old.stale).toBe(true);
    expect(cache.metrics.staleServed).toBe(1);
    expect(auth.minSerials).toEqual([undefined, 8, 8]);
    expect(cache.metrics.floorRefusals).toBe(2);
    expect(cache.entries).toBe(0);

    auth.set("www.example.test", "A", 100, ["192.0.2.77"]);
    auth.serial = 8;
    const current = await lookup("www.example.test");
    expect(data(current)).toEqual(["192.0.2.77"]);
    expect(current.stale).toBe(false);
    expect(cache.entries).toBe(1);
    expect(query("www.example.test")).not.toBeInstanceOf(Promise);
  });

  it("resetZone forgets the zone's floors: a floor no origin answer can meet goes away", async () => {
    cache.applyPurge(event("invalidate", 999999, ["www.example.test"]));
    cache.applyPurge(event("invalidate", 999999, ["zone:example.test"]));
    await lookup("www.example.test");
    expect(cache.entries).toBe(0); // serial 7 is below the floor: answered, never stored
    cache.resetZone("example.test");
    const before = auth.calls;
    expect(data(await lookup("www.example.test"))).toEqual(["192.0.2.10"]);
    expect(auth.minSerials.at(-1)).toBeUndefined();
    expect(cache.entries).toBe(1);
    expect(query("www.example.test")).not.toBeInstanceOf(Promise);
    expect(auth.calls).toBe(before + 1);
  });

  it("a retry that gets the new serial is stored", async () => {
    // An upstream that answers the floor on the second ask (a cache catching up).
    let calls = 0;
    const upstream = auth.upstream;
    cache = new ResolverCache("res-t", DEFAULT_CACHE, clock, (n, t, min) => {
      auth.serial = ++calls === 1 ? 7 : 8;
      return upstream(n, t, min);
    });
    cache.applyPurge(event("soft", 8, ["www.example.test"]));
    await lookup("www.example.test");
    expect(auth.minSerials).toEqual([8, 8]);
    expect(cache.metrics).toMatchObject({ floorRefusals: 1, upstreamQueries: 2 });
    expect(cache.entries).toBe(1);
  });

  it("a zone purge floors every name of the zone, and no other zone", async () => {
    cache.applyPurge(event("invalidate", 9, ["zone:example.test"]));
    auth.serial = 9;
    await lookup("www.example.test");
    await lookup("other.test");
    expect(auth.minSerials).toEqual([9, undefined]);
  });

  it("a key that is no valid name purges nothing and does not fail the event", async () => {
    await lookup("www.example.test");
    expect(() =>
      cache.applyPurge(
        event("invalidate", 9, ["x".repeat(300), "zone:bad zone", "www.example.test"]),
      ),
    ).not.toThrow();
    auth.serial = 9;
    await lookup("www.example.test");
    expect(auth.minSerials.at(-1)).toBe(9);
  });

  it("a floor raised while a fetch is out refuses its older answer and asks again with the floor", async () => {
    auth.delayMs = 100;
    const before = Promise.resolve(query("www.example.test"));
    cache.applyPurge(event("invalidate", 8, ["www.example.test"]));
    auth.set("www.example.test", "A", 100, ["192.0.2.77"]);
    auth.serial = 8;
    // Joins the fetch that started before the purge: that fetch's answer is
    // judged by the floor when it lands, not when it left.
    const after = Promise.resolve(query("www.example.test"));
    await clock.advance(200);
    expect(data(await after)).toEqual(["192.0.2.77"]);
    expect(data(await before)).toEqual(["192.0.2.77"]);
    expect(auth.minSerials).toEqual([undefined, 8]);
    expect(cache.metrics.floorRefusals).toBe(1);
    expect(cache.entries).toBe(1);
  });

  it("an operator's purge drops a fetch in flight: later queries start their own", async () => {
    auth.delayMs = 100;
    const before = Promise.resolve(query("www.example.test"));
    cache.applyPurge({ ...event("invalidate", 7, ["www.example.test"]), explicit: true });
    const after = Promise.resolve(query("www.example.test"));
    await clock.advance(200);
    await Promise.all([before, after]);
    // Two fetches: the query after the purge did not join the one before it.
    expect(auth.calls).toBe(2);
    expect(cache.entries).toBe(1);
  });

  it("an answer through a CNAME is held to the floor of its target", async () => {
    await lookup("alias.example.test");
    cache.applyPurge(event("invalidate", 8, ["www.example.test"]));
    expect(cache.entries).toBe(0);
    await lookup("alias.example.test");
    // The first ask cannot know the chain; the answer names www, whose floor is 8.
    expect(auth.minSerials.slice(1)).toEqual([undefined, 8]);
    expect(cache.entries).toBe(0);
  });
});

describe("ttl receipts: residualMs", () => {
  it("is the remaining TTL of entries older than the change; 0 when none", async () => {
    await lookup("www.example.test");
    auth.serial = 8;
    await lookup("www.example.test", "TXT");
    await clock.advance(40_000);
    const e = event("ttl", 8, ["zone:example.test"]);
    cache.applyPurge(e);
    // ttl mode purges nothing: the old entry is still a fresh hit.
    expect(query("www.example.test")).toMatchObject({ stale: false, elapsed: 40 });
    expect(cache.residualMs(e)).toBe(60_000);
    expect(cache.residualMs(event("ttl", 8, ["nope.example.test"]))).toBe(0);
    await clock.advance(60_000);
    expect(cache.residualMs(e)).toBe(0);
    // Once expired, the refetch asks for the change's serial.
    await lookup("www.example.test");
    expect(auth.minSerials.at(-1)).toBe(8);
  });

  it("counts entries without a serial as old, and CNAMEs into the changed name", async () => {
    auth.serial = undefined;
    await lookup("www.example.test", "TXT");
    auth.serial = 9;
    await lookup("alias.example.test");
    await clock.advance(10_000);
    expect(cache.residualMs(event("ttl", 8, ["www.example.test"]))).toBe(90_000);
    const other = { ...event("ttl", 3, ["www.example.test"]), zone: "other.test" };
    expect(cache.residualMs(other)).toBe(90_000);
  });

  it("is 0 right after an invalidate or soft purge", async () => {
    await lookup("www.example.test");
    cache.applyPurge(event("soft", 8, ["www.example.test"]));
    expect(cache.residualMs(event("soft", 8, ["www.example.test"]))).toBe(0);
  });

  it("makes NodeSync ack a ttl change only when the old entry has run out", async () => {
    await lookup("www.example.test");
    await clock.advance(30_000);
    const acks: number[] = [];
    const sync = new NodeSync({
      nodeId: "res-t",
      target: cache,
      clock,
      feed: async () => ({ kind: "changes", serial: 8, changes: [] }),
      zones: async () => [{ zone: "example.test", serial: 7 }],
      ack: async () => {
        acks.push(clock.now());
      },
      modeOf: () => "ttl",
      pollIntervalMs: 3_600_000,
      pollJitter: 0,
    });
    await sync.start();
    const start = clock.now();
    await sync.onEvent(event("ttl", 8, ["www.example.test"]));
    expect(acks).toEqual([]);
    await clock.advance(70_000);
    expect(acks).toEqual([start + 70_000]);
    await sync.stop();
  });
});

describe("push: updates in place", () => {
  const pushed = (rrsets: RRset[], serial = 8) =>
    event(
      "push",
      serial,
      rrsets.map((r) => r.name),
      rrsets,
    );

  beforeEach(async () => {
    await lookup("www.example.test");
    await lookup("www.example.test", "AAAA"); // NODATA
    await lookup("alias.example.test");
    await lookup("new.example.test"); // NXDOMAIN
    expect(cache.entries).toBe(4);
    await clock.advance(10_000);
  });

  it("rewrites entries answered directly by a pushed RRset, without asking upstream", async () => {
    const calls = auth.calls;
    const e = pushed([
      { name: "www.example.test", type: "A", ttl: 50, data: ["192.0.2.77"] },
      { name: "new.example.test", type: "A", ttl: 30, data: ["192.0.2.5", "192.0.2.6"] },
    ]);
    cache.applyPurge(e);
    const www = query("www.example.test");
    expect(www).toMatchObject({ stale: false, elapsed: 0, answer: { ttl: 50, rcode: 0 } });
    expect(data(www as Served)).toEqual(["192.0.2.77"]);
    const created = query("new.example.test") as Served;
    expect(created.answer).toMatchObject({ rcode: 0, negative: false, ttl: 30 });
    expect(data(created)).toEqual(["192.0.2.5", "192.0.2.6"]);
    expect(auth.calls).toBe(calls);
    expect(cache.metrics.pushed).toBe(2);
    // What the push cannot rewrite (a CNAME chain, another type at the name) is soft-purged.
    expect(query("alias.example.test")).toBeInstanceOf(Promise);
    expect(query("www.example.test", "AAAA")).toBeInstanceOf(Promise);
    expect(cache.residualMs(e)).toBe(0);
  });

  it("drops entries whose RRset was deleted", async () => {
    cache.applyPurge(pushed([{ name: "www.example.test", type: "A", ttl: 0, data: [] }]));
    expect(cache.entries).toBe(3);
    expect(query("www.example.test")).toBeInstanceOf(Promise);
  });

  it("clamps the pushed TTL and keeps TXT strings", async () => {
    setup({ maxTtl: 20 });
    await lookup("www.example.test", "TXT");
    cache.applyPurge(
      pushed([{ name: "WWW.example.test.", type: "TXT", ttl: 600, data: [["v=2", "x"]] }]),
    );
    const txt = query("www.example.test", "TXT") as Served;
    expect(txt.answer.ttl).toBe(20);
    expect(data(txt)).toEqual([["v=2", "x"]]);
    await clock.advance(21_000);
    expect(query("www.example.test", "TXT")).toBeInstanceOf(Promise);
  });

  it("a fetch in flight during the push cannot overwrite it with the old version", async () => {
    await clock.advance(90_000);
    auth.delayMs = 100;
    const refresh = Promise.resolve(query("www.example.test"));
    cache.applyPurge(
      pushed([{ name: "www.example.test", type: "A", ttl: 50, data: ["192.0.2.77"] }]),
    );
    await clock.advance(300);
    await refresh;
    expect(data(query("www.example.test") as Served)).toEqual(["192.0.2.77"]);
  });
});
