import { beforeEach, describe, expect, it } from "vitest";
import { VirtualClock } from "../../core/clock.ts";
import { Edge, type EdgeOptions } from "../../edge/cache.ts";
import { type CacheStatus, formatCacheStatus, sameStatus } from "../../edge/key.ts";
import { LruStorage } from "../../edge/storage-lru.ts";
import { cacheStatusOf } from "../support/cache-status.ts";
import { FakeParent, get, makeEdge, START, settle } from "./support.ts";

let clock: VirtualClock;
let parent: FakeParent;
let edge: Edge;

function edgeOptions(): EdgeOptions {
  return {
    id: "edge-1",
    parent: "http://parent.test",
    fetch: parent.fetch,
    clock,
    storage: new LruStorage(),
  };
}

beforeEach(() => {
  clock = new VirtualClock(START);
  parent = new FakeParent(clock);
  edge = makeEdge(clock, parent.fetch);
});

describe("miss, hit, Age and Cache-Status", () => {
  it("tells apart two statuses that differ in any one parameter the member writes", () => {
    const base: CacheStatus = { fwd: "stale", fwdStatus: 304, ttl: 5, detail: "x" };
    // One other value per parameter; typed so that a parameter added to
    // CacheStatus fails the typecheck here until sameStatus is told of it.
    const other: Required<CacheStatus> = {
      hit: true,
      fwd: "request",
      fwdStatus: 200,
      ttl: 6,
      stored: true,
      collapsed: true,
      key: "/k",
      detail: "y",
    };
    // `key` is compared apart (statusMember), not by sameStatus.
    const variants = (Object.keys(other) as (keyof CacheStatus)[])
      .filter((k) => k !== "key")
      .map((k) => ({ ...base, [k]: other[k] }) as CacheStatus);
    expect(variants).toHaveLength(7);
    for (const v of variants) {
      // Every variant formats differently from the base, so the memo must not take one for the other.
      expect(formatCacheStatus("e", v)).not.toBe(formatCacheStatus("e", base));
      expect(sameStatus(v, base), JSON.stringify(v)).toBe(false);
    }
    expect(sameStatus({ ...base }, base)).toBe(true);
  });

  it("writes each answer's own Cache-Status member, also when the answers before it repeat one", async () => {
    const key = 'key="/resolve?name=www.example.test&type=A"';
    await (await edge.handle(get())).arrayBuffer();
    const seen: string[] = [];
    for (const stepMs of [0, 0, 1_000, 0, 30_000]) {
      await clock.advance(stepMs);
      seen.push(cacheStatusOf(await edge.handle(get()), "edge-1")!);
    }
    // A revalidation between hits, then hits again with the TTL left.
    parent.etag = '"1"';
    const revalidated = await edge.handle(
      get("/resolve?name=www.example.test&type=A", { "cache-control": "no-cache" }),
    );
    seen.push(cacheStatusOf(revalidated, "edge-1")!);
    seen.push(cacheStatusOf(await edge.handle(get()), "edge-1")!);
    expect(seen).toEqual([
      `edge-1; hit; ttl=60; ${key}`,
      `edge-1; hit; ttl=60; ${key}`,
      `edge-1; hit; ttl=59; ${key}`,
      `edge-1; hit; ttl=59; ${key}`,
      `edge-1; hit; ttl=29; ${key}`,
      `edge-1; fwd=request; fwd-status=304; ttl=60; stored; ${key}`,
      `edge-1; hit; ttl=60; ${key}`,
    ]);
  });

  it("stores a miss, then answers hits with Age counting up and X-Serial passed through", async () => {
    const miss = await edge.handle(get());
    expect(miss.status).toBe(200);
    expect(await miss.text()).toBe("v1");
    expect(miss.headers.get("cache-status")).toBe(
      'edge-1; fwd=uri-miss; fwd-status=200; ttl=60; stored; key="/resolve?name=www.example.test&type=A"',
    );
    expect(miss.headers.get("age")).toBe("0");
    await clock.advance(10_000);
    const hit = await edge.handle(get("/resolve?type=a&name=WWW.example.test."));
    expect(await hit.text()).toBe("v1");
    expect(cacheStatusOf(hit, "edge-1")).toMatch(/^edge-1; hit; ttl=50; key=/);
    expect(hit.headers.get("age")).toBe("10");
    expect(hit.headers.get("x-serial")).toBe("1");
    expect(parent.calls).toBe(1);
    expect(edge.metrics()).toMatchObject({ hits: 1, misses: 1, entries: 1 });
  });

  it("quotes an id that is not an sf-token, and refuses one that cannot be an sf-string", async () => {
    edge = new Edge({ ...edgeOptions(), id: "1 edge" });
    const res = await edge.handle(get());
    expect(cacheStatusOf(res, "1 edge")).toMatch(/^"1 edge"; fwd=uri-miss; /);
    expect(() => new Edge({ ...edgeOptions(), id: "edge\n1" })).toThrow(/printable ASCII/);
  });

  it("appends itself after the parent's Cache-Status (RFC 9211 §2: origin first, client last)", async () => {
    parent.extra = { "cache-status": "origin-cache; hit" };
    const res = await edge.handle(get());
    expect(res.headers.get("cache-status")).toMatch(
      /^origin-cache; hit, edge-1; fwd=uri-miss; [^,]*$/,
    );
    const hit = await edge.handle(get());
    expect(hit.headers.get("cache-status")).toMatch(/^origin-cache; hit, edge-1; hit; [^,]*$/);
  });

  it("answers the client's If-None-Match with 304 from the cache", async () => {
    await edge.handle(get());
    const res = await edge.handle(get(undefined, { "if-none-match": '"1"' }));
    expect(res.status).toBe(304);
    expect(res.headers.get("etag")).toBe('"1"');
    expect(parent.calls).toBe(1);
  });

  it("does not store no-store or private responses, and needs validation for no-cache", async () => {
    parent.cacheControl = "no-store, max-age=60";
    await edge.handle(get());
    const again = await edge.handle(get());
    expect(cacheStatusOf(again, "edge-1")).toContain("detail=no-store");
    expect(parent.calls).toBe(2);
    parent.cacheControl = "private, max-age=60";
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toContain("detail=private");
    parent.cacheControl = "no-cache, max-age=60";
    await edge.handle(get());
    const validated = await edge.handle(get());
    expect(cacheStatusOf(validated, "edge-1")).toMatch(/fwd=stale; fwd-status=304/);
    expect(parent.requests.at(-1)?.headers.get("if-none-match")).toBe('"1"');
  });

  it("stores a response fresh by Expires alone (RFC 9111 §3, §4.2.1): two requests, one parent fetch", async () => {
    parent.cacheControl = "";
    parent.extra = { expires: new Date(START + 90_000).toUTCString() };
    const miss = await edge.handle(get());
    expect(cacheStatusOf(miss, "edge-1")).toMatch(/fwd=uri-miss; fwd-status=200; ttl=90; stored/);
    await clock.advance(30_000);
    const hit = await edge.handle(get());
    expect(cacheStatusOf(hit, "edge-1")).toMatch(/^edge-1; hit; ttl=60;/);
    expect(parent.calls).toBe(1);
    await clock.advance(60_000);
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/fwd=stale/);
    expect(parent.calls).toBe(2);
  });

  it("uses s-maxage over max-age", async () => {
    parent.cacheControl = "max-age=60, s-maxage=5";
    await edge.handle(get());
    await clock.advance(6_000);
    const res = await edge.handle(get());
    expect(cacheStatusOf(res, "edge-1")).toMatch(/fwd=stale/);
  });

  it("gives up on a silent parent after the timeout with 504", async () => {
    parent.delayMs = 60_000;
    const res = await settle(clock, edge.handle(get()), 500);
    expect(res.status).toBe(504);
    // RFC 9211 §2: a response the edge generates itself carries no Cache-Status member.
    expect(res.headers.has("cache-status")).toBe(false);
    expect(await res.json()).toEqual({
      error: "parent timeout",
      reason: "edge-1: parent http://parent.test did not answer within 5000 ms",
    });
    // The request sent to the parent is aborted with the timeout, so a real fetch stops.
    const sent = parent.requests.at(-1)!;
    expect(sent.signal.aborted).toBe(true);
    expect((sent.signal.reason as Error).name).toBe("TimeoutError");
  });

  it("aborts a fill's signal on the timeout even when its request reads it only later", async () => {
    let signalOf: (() => AbortSignal) | undefined;
    class LazyEdge extends Edge {
      protected override parentRequest(
        base: string,
        key: string,
        headers: Headers,
        signal: () => AbortSignal,
      ): Request {
        signalOf = signal;
        return new Request(base + key, { headers });
      }
    }
    parent.delayMs = 60_000;
    const lazy = new LazyEdge(edgeOptions());
    const res = await settle(clock, lazy.handle(get()), 500);
    expect(res.status).toBe(504);
    expect(signalOf!().aborted).toBe(true);
    expect((signalOf!().reason as Error).name).toBe("TimeoutError");
  });
});

describe("revalidation (RFC 9111 §4.3)", () => {
  it("sends If-None-Match when stale; a 304 refreshes the entry and carries the parent's Age", async () => {
    await edge.handle(get());
    await clock.advance(61_000);
    parent.extra = { age: "20" };
    const res = await edge.handle(get());
    expect(parent.requests[1]?.headers.get("if-none-match")).toBe('"1"');
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("v1");
    expect(res.headers.get("age")).toBe("20");
    expect(cacheStatusOf(res, "edge-1")).toMatch(
      /^edge-1; fwd=stale; fwd-status=304; ttl=40; stored/,
    );
    await clock.advance(39_000);
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/hit; ttl=1;/);
    await clock.advance(1_000);
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/fwd=stale/);
    expect(edge.metrics().notModified).toBe(2);
  });
});

describe("stale serving (RFC 5861)", () => {
  it("stale-while-revalidate serves stale and refreshes once in the background", async () => {
    parent.cacheControl = "max-age=60, stale-while-revalidate=30";
    parent.delayMs = 1_000;
    await settle(clock, edge.handle(get()));
    await clock.advance(65_000);
    parent.body = "v2";
    parent.etag = '"2"';
    const stale = await Promise.all([1, 2, 3, 4, 5].map(() => edge.handle(get())));
    for (const r of stale) {
      expect(await r.text()).toBe("v1");
      expect(cacheStatusOf(r, "edge-1")).toMatch(
        /hit; ttl=-\d+; key=.*detail=stale-while-revalidate/,
      );
    }
    expect(parent.calls).toBe(2);
    await clock.advance(1_000);
    const fresh = await edge.handle(get());
    expect(await fresh.text()).toBe("v2");
    expect(cacheStatusOf(fresh, "edge-1")).toMatch(/hit/);
    expect(parent.calls).toBe(2);
  });

  it("a background refresh that fails is reported through the injected log", async () => {
    const logged: string[] = [];
    const storage = new LruStorage();
    edge = new Edge({ ...edgeOptions(), storage, log: (m) => logged.push(m) });
    parent.cacheControl = "max-age=60, stale-while-revalidate=30";
    await edge.handle(get());
    await clock.advance(65_000);
    storage.set = () => {
      throw new Error("disk on fire");
    };
    const stale = await edge.handle(get());
    expect(await stale.text()).toBe("v1");
    await clock.advance(0);
    await new Promise((r) => setImmediate(r));
    expect(logged).toEqual([
      expect.stringMatching(/^edge-1: background refresh of \/resolve\?.* failed: .*disk on fire/),
    ]);
  });

  it("past the stale-while-revalidate window it revalidates in line", async () => {
    parent.cacheControl = "max-age=60, stale-while-revalidate=30";
    await edge.handle(get());
    await clock.advance(91_000);
    const res = await edge.handle(get());
    expect(cacheStatusOf(res, "edge-1")).toMatch(/fwd=stale; fwd-status=304/);
  });

  it("stale-if-error serves stale on 5xx and an unreachable parent, not on 404", async () => {
    parent.cacheControl = "max-age=60, stale-if-error=100";
    await edge.handle(get());
    await clock.advance(70_000);
    parent.fail = 503;
    const on503 = await edge.handle(get());
    expect(on503.status).toBe(200);
    expect(cacheStatusOf(on503, "edge-1")).toMatch(
      /fwd=stale; fwd-status=503; ttl=-10; .*detail=stale-if-error/,
    );
    parent.fail = "down";
    const onDown = await edge.handle(get());
    expect(await onDown.text()).toBe("v1");
    expect(cacheStatusOf(onDown, "edge-1")).toContain("detail=stale-if-error");
    parent.fail = 404;
    const on404 = await edge.handle(get());
    expect(on404.status).toBe(404);
    parent.fail = "down";
    await clock.advance(100_000);
    const tooLate = await edge.handle(get());
    expect(tooLate.status).toBe(502);
    expect(tooLate.headers.has("cache-status")).toBe(false);
    expect(await tooLate.json()).toMatchObject({
      error: "parent unreachable",
      reason: expect.stringMatching(/^edge-1: parent http:\/\/parent.test unreachable: /),
    });
  });

  it("must-revalidate forbids stale answers even when the parent is down", async () => {
    parent.cacheControl =
      "max-age=60, must-revalidate, stale-if-error=100, stale-while-revalidate=100";
    await edge.handle(get());
    await clock.advance(61_000);
    parent.fail = "down";
    expect((await edge.handle(get())).status).toBe(502);
  });
});

describe("request coalescing", () => {
  it("makes one parent request for N concurrent misses", async () => {
    parent.delayMs = 500;
    const all = Promise.all(Array.from({ length: 20 }, () => edge.handle(get())));
    const responses = await settle(clock, all);
    expect(parent.calls).toBe(1);
    for (const r of responses) expect(await r.text()).toBe("v1");
    const collapsed = responses.filter((r) => cacheStatusOf(r, "edge-1")?.includes("collapsed"));
    expect(collapsed).toHaveLength(19);
    expect(edge.metrics().coalesced).toBe(19);
  });
});

describe("purge", () => {
  const other = "/resolve?name=mail.example.test&type=A";

  it("hard purge by surrogate key drops only the entries carrying it", async () => {
    await edge.handle(get());
    parent.keys = "mail.example.test zone:example.test";
    await edge.handle(get(other));
    expect(edge.purge({ key: "www.example.test", mode: "hard" })).toBe(1);
    expect(cacheStatusOf(await edge.handle(get(other)), "edge-1")).toMatch(/hit/);
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/fwd=uri-miss/);
  });

  it("by zone, by URL and all", async () => {
    await edge.handle(get());
    expect(edge.purge({ zone: "Example.Test.", mode: "hard" })).toBe(1);
    await edge.handle(get());
    expect(edge.purge({ url: "/resolve?name=www.example.test&type=a", mode: "hard" })).toBe(1);
    await edge.handle(get());
    expect(edge.purge({ all: true, mode: "hard" })).toBe(1);
    expect(edge.metrics()).toMatchObject({ entries: 0, purges: 3, purgedEntries: 3 });
  });

  it("soft purge marks stale: the next request revalidates in line, even inside stale-while-revalidate", async () => {
    parent.cacheControl = "max-age=60, stale-while-revalidate=30";
    await edge.handle(get());
    edge.purge({ zone: "example.test", mode: "soft" });
    parent.body = "v2";
    parent.etag = '"2"';
    const res = await edge.handle(get());
    expect(await res.text()).toBe("v2");
    expect(cacheStatusOf(res, "edge-1")).toMatch(/fwd=stale; fwd-status=200; ttl=60; stored/);
  });

  it("applyPurge: invalidate drops, soft marks stale, ttl does nothing, * matches all", async () => {
    // Filled at serial 1; each event is a change committed after it.
    const event = { changeId: "c1", zone: "example.test", serial: 2, ts: 0 };
    await edge.handle(get());
    parent.serial = 2;
    edge.applyPurge({ ...event, keys: ["www.example.test"], mode: "ttl" });
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/hit/);
    edge.applyPurge({ ...event, keys: ["www.example.test"], mode: "soft" });
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/fwd=stale; fwd-status=304/);
    // "*" drops whatever the entries' serials (a whole-zone event: see sparesCurrent).
    edge.applyPurge({ ...event, keys: ["*"], mode: "invalidate" });
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/fwd=uri-miss/);
  });

  it("a change event spares an entry filled at or past its serial; an operator's purge or a whole-zone event does not", async () => {
    // The entry already holds serial 3 (a fill raced ahead of the event on the bus).
    parent.serial = 3;
    await edge.handle(get());
    const event = { changeId: "c3", zone: "example.test", serial: 3, ts: 0 };
    for (const mode of ["invalidate", "soft"] as const) {
      edge.applyPurge({ ...event, keys: ["www.example.test"], mode });
      expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/; hit/);
    }
    expect(parent.calls).toBe(1);
    expect(edge.metrics().purgedEntries).toBe(0);
    edge.applyPurge({ ...event, keys: ["www.example.test"], mode: "invalidate", explicit: true });
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/fwd=uri-miss/);
    edge.applyPurge({ ...event, keys: ["zone:example.test"], mode: "invalidate" });
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/fwd=uri-miss/);
    // The next change (serial 4) finds the entry older and drops it.
    parent.serial = 4;
    edge.applyPurge({ ...event, serial: 4, keys: ["www.example.test"], mode: "invalidate" });
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/fwd=uri-miss/);
    expect(parent.calls).toBe(4);
  });
});

describe("version floor and client guarantees", () => {
  it("refuses a fill below the purge serial, retries, then bypasses to the origin", async () => {
    const origin = new FakeParent(clock);
    origin.serial = 5;
    origin.body = "v5";
    edge = makeEdge(
      clock,
      (req) => (new URL(req.url).host === "origin.test" ? origin.fetch(req) : parent.fetch(req)),
      { origin: "http://origin.test" },
    );
    parent.serial = 4;
    edge.applyPurge({
      changeId: "c",
      zone: "example.test",
      serial: 5,
      ts: 0,
      keys: ["www.example.test"],
      mode: "invalidate",
    });
    const res = await edge.handle(get());
    expect(await res.text()).toBe("v5");
    expect(res.headers.get("x-serial")).toBe("5");
    expect(parent.calls).toBe(2);
    expect(parent.requests[1]?.headers.get("x-min-serial")).toBe("5");
    expect(origin.calls).toBe(1);
    expect(edge.metrics().floorRefusals).toBe(2);
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/hit/);
  });

  it("resetZone forgets the zone's floors: after it, a fill at the origin's serial is stored", async () => {
    parent.serial = 4;
    edge.applyPurge({
      changeId: "forged",
      zone: "example.test",
      serial: 999999,
      ts: 0,
      keys: ["zone:example.test", "www.example.test"],
      mode: "invalidate",
    });
    await (await edge.handle(get())).text();
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).not.toMatch(/hit/);
    edge.resetZone("example.test");
    await (await edge.handle(get())).text();
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/hit/);
  });

  it("serves an answer still below the floor without caching it", async () => {
    parent.serial = 4;
    edge.applyPurge({
      changeId: "c",
      zone: "example.test",
      serial: 5,
      ts: 0,
      keys: ["zone:example.test"],
      mode: "soft",
    });
    const res = await edge.handle(get());
    expect(cacheStatusOf(res, "edge-1")).toContain("detail=serial-below-floor");
    expect(cacheStatusOf(res, "edge-1")).not.toContain("stored");
    expect(cacheStatusOf(await edge.handle(get()), "edge-1")).toMatch(/fwd=uri-miss/);
  });

  it("X-Min-Serial: an older entry is a miss, and the floor is forwarded upstream", async () => {
    parent.serial = 3;
    await edge.handle(get());
    parent.serial = 4;
    const res = await edge.handle(get(undefined, { "x-min-serial": "4" }));
    expect(res.headers.get("x-serial")).toBe("4");
    expect(cacheStatusOf(res, "edge-1")).toMatch(
      /^edge-1; fwd=miss; fwd-status=304; ttl=60; stored; key=".*"; detail=min-serial$/,
    );
    expect(parent.requests[1]?.headers.get("x-min-serial")).toBe("4");
    const hit = await edge.handle(get(undefined, { "x-min-serial": "4" }));
    expect(cacheStatusOf(hit, "edge-1")).toMatch(/hit/);
  });

  it("a client X-Min-Serial is forwarded once: never retried, never sent to the origin", async () => {
    const origin = new FakeParent(clock);
    edge = makeEdge(
      clock,
      (req) => (new URL(req.url).host === "origin.test" ? origin.fetch(req) : parent.fetch(req)),
      { origin: "http://origin.test" },
    );
    const res = await edge.handle(get(undefined, { "x-min-serial": "4000" }));
    expect(res.headers.get("x-serial")).toBe("1");
    expect(parent.calls).toBe(1);
    expect(parent.requests[0]?.headers.get("x-min-serial")).toBe("4000");
    expect(origin.calls).toBe(0);
    expect(edge.metrics().floorRefusals).toBe(0);
  });

  it("passes a parent's 412 through without storing or retrying it", async () => {
    await edge.handle(get());
    await clock.advance(61_000);
    parent.fail = 412;
    const res = await edge.handle(get(undefined, { "x-min-serial": "4000" }));
    expect(res.status).toBe(412);
    expect(cacheStatusOf(res, "edge-1")).toMatch(/fwd=miss; fwd-status=412; .*detail=status/);
    expect(parent.calls).toBe(2);
    parent.fail = undefined;
    const next = await edge.handle(get());
    expect(next.status).toBe(200);
    expect(cacheStatusOf(next, "edge-1")).toMatch(/fwd=stale; fwd-status=304/);
  });

  it("never replaces a cached entry with an older serial (monotonic reads)", async () => {
    parent.serial = 7;
    await edge.handle(get());
    await clock.advance(61_000);
    parent.serial = 6;
    parent.etag = '"6"';
    parent.body = "old";
    const res = await edge.handle(get());
    expect(cacheStatusOf(res, "edge-1")).toContain("detail=serial-below-floor");
    const stored = await edge.handle(get());
    expect(cacheStatusOf(stored, "edge-1")).not.toContain("hit");
    parent.serial = 8;
    expect(await (await edge.handle(get())).text()).toBe("old");
    expect((await edge.handle(get())).headers.get("x-serial")).toBe("8");
  });
});

describe("bounded memory", () => {
  it("evicts least recently used entries past max bytes and counts them", async () => {
    edge = makeEdge(clock, parent.fetch, { maxBytes: 4_000 });
    parent.body = "x".repeat(900);
    for (let i = 0; i < 10; i++) await edge.handle(get(`/resolve?name=n${i}.example.test&type=A`));
    const m = edge.metrics();
    expect(m.bytes).toBeLessThanOrEqual(4_000);
    expect(m.entries).toBeLessThan(10);
    expect(m.evictions).toBe(10 - m.entries);
  });
});

describe("request directives, Vary and HEAD", () => {
  it("request Cache-Control: no-cache revalidates a fresh entry (fwd=request)", async () => {
    await edge.handle(get());
    const res = await edge.handle(get(undefined, { "cache-control": "no-cache" }));
    expect(cacheStatusOf(res, "edge-1")).toMatch(/^edge-1; fwd=request; fwd-status=304/);
  });

  it("keys a Vary'd response on the named request header", async () => {
    parent.extra = { vary: "Accept" };
    await edge.handle(get(undefined, { accept: "application/dns-json" }));
    const same = await edge.handle(get(undefined, { accept: "application/dns-json" }));
    expect(cacheStatusOf(same, "edge-1")).toMatch(/hit/);
    const other = await edge.handle(get(undefined, { accept: "application/json" }));
    expect(cacheStatusOf(other, "edge-1")).toMatch(/fwd=vary-miss/);
  });

  it("answers HEAD from the cache without a body", async () => {
    await edge.handle(get());
    const res = await edge.handle(new Request(get().url, { method: "HEAD" }));
    expect(cacheStatusOf(res, "edge-1")).toMatch(/hit/);
    expect(await res.text()).toBe("");
  });

  it("a POST /purge with a serial raises the floor like a bus event", async () => {
    await edge.handle(get());
    edge.purge({ zone: "example.test", mode: "hard", serial: 9 });
    parent.serial = 8;
    const res = await edge.handle(get());
    expect(cacheStatusOf(res, "edge-1")).toContain("detail=serial-below-floor");
    expect(parent.requests.at(-1)?.headers.get("x-min-serial")).toBe("9");
  });
});

describe("bounded request bodies", () => {
  const post = (body: BodyInit, headers: HeadersInit = {}) =>
    new Request("http://edge.test/v1/zones/example.test", {
      method: "POST",
      headers,
      body,
      duplex: "half",
    } as RequestInit);
  /** A body in 64 KiB chunks without Content-Length, counting the chunks the edge pulled. */
  const chunked = (chunks: number) => {
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>(
      {
        pull(c) {
          if (pulled++ === chunks) c.close();
          else c.enqueue(new Uint8Array(64 * 1024));
        },
      },
      { highWaterMark: 0 },
    );
    return { stream, pulled: () => pulled };
  };

  it("refuses a pass-through body over the limit by its Content-Length, unread", async () => {
    edge = new Edge({ ...edgeOptions(), maxBodyBytes: 1000 });
    const body = chunked(100);
    const res = await edge.handle(post(body.stream, { "content-length": String(100 * 64 * 1024) }));
    expect(res.status).toBe(413);
    expect((await res.json()).reason).toBe("edge-1: request bodies are limited to 1000 bytes");
    expect(res.headers.has("cache-status")).toBe(false);
    expect(body.pulled()).toBe(0);
    expect(parent.calls).toBe(0);
  });

  it("stops reading a body without Content-Length once it passes the limit (default 1 MiB)", async () => {
    const body = chunked(1000);
    const res = await edge.handle(post(body.stream));
    expect(res.status).toBe(413);
    expect(body.pulled()).toBeLessThanOrEqual(18);
    expect(parent.calls).toBe(0);
  });

  it("forwards a body within the limit whole", async () => {
    const res = await edge.handle(post(chunked(16).stream));
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-status")).toBe("edge-1; fwd=method");
    expect((await parent.requests[0]!.arrayBuffer()).byteLength).toBe(16 * 64 * 1024);
  });

  it("answers 502 of its own, without a Cache-Status member, when the parent is down", async () => {
    parent.fail = "down";
    const res = await edge.handle(post("{}"));
    expect(res.status).toBe(502);
    expect(res.headers.has("cache-status")).toBe(false);
    expect(await res.json()).toMatchObject({
      error: "parent unreachable",
      reason: expect.stringMatching(/^edge-1: parent http:\/\/parent.test unreachable: /),
    });
  });
});
