/**
 * RFC 9111 §4.2.3 through three tiers: whatever the hop delays and clock
 * skew, no edge serves a response fresh once max-age seconds have passed
 * since the origin produced it.
 */
import { describe, expect, it } from "vitest";
import { sleep, VirtualClock } from "../../core/clock.ts";
import type { Edge } from "../../edge/cache.ts";
import { cacheOf, cacheStatusMembers, cacheStatusOf } from "../support/cache-status.ts";
import { FakeParent, get, makeEdge, START, settle } from "./support.ts";

const MAX_AGE = 60;

function chain(clock: VirtualClock, origin: FakeParent, hopMs: number): Edge[] {
  const hop = (next: (req: Request) => Promise<Response>) => async (req: Request) => {
    await sleep(clock, hopMs);
    const res = await next(req);
    await sleep(clock, hopMs);
    return res;
  };
  const e1 = makeEdge(clock, hop(origin.fetch), { id: "edge-1" });
  const e2 = makeEdge(
    clock,
    hop((r) => e1.handle(r)),
    { id: "edge-2" },
  );
  const e3 = makeEdge(
    clock,
    hop((r) => e2.handle(r)),
    { id: "edge-3" },
  );
  return [e1, e2, e3];
}

/**
 * Every `stepMs` for `seconds`, asks one of the three edges (a seeded
 * pseudo-random choice, so tiers fill at staggered times and each child
 * fills from a half-aged parent); returns the worst age of a fresh hit.
 */
async function worstFreshAge(skewMs: number, hopMs: number, stepMs: number, seconds: number) {
  const clock = new VirtualClock(START + 300);
  const origin = new FakeParent(clock);
  origin.cacheControl = `max-age=${MAX_AGE}`;
  origin.skewMs = skewMs;
  const produced: number[] = [];
  const produce = origin.fetch;
  // The body names the moment the origin produced it; without an ETag every
  // refresh is a full response, so the stamp is the production time.
  const stamped = async (req: Request) => {
    const res = await produce(req);
    produced.push(clock.now());
    const headers = new Headers(res.headers);
    headers.delete("etag");
    return new Response(String(clock.now()), { status: res.status, headers });
  };
  const edges = chain(clock, { ...origin, fetch: stamped } as FakeParent, hopMs);
  let worst = 0;
  let hits = 0;
  let seed = 7;
  for (let t = 0; t < seconds * 1000; t += stepMs) {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    const tier = (seed >> 16) % 3;
    const res = await settle(clock, edges[tier]!.handle(get()), 50);
    const bornAt = Number(await res.text());
    if (cacheStatusOf(res, `edge-${tier + 1}`)?.startsWith(`edge-${tier + 1}; hit`)) {
      hits++;
      worst = Math.max(worst, (clock.now() - bornAt) / 1000);
    }
    await clock.advance(stepMs);
  }
  return { worst, hits, fills: produced.length };
}

describe("three tiers never extend the origin's max-age", () => {
  for (const [name, skewMs] of [
    ["no skew", 0],
    ["origin clock 30 s ahead", 30_000],
    ["origin clock 30 s behind", -30_000],
  ] as const) {
    it(`${name}: every fresh hit at any tier is younger than max-age`, async () => {
      const { worst, hits, fills } = await worstFreshAge(skewMs, 300, 700, 300);
      expect(hits).toBeGreaterThan(200);
      expect(fills).toBeGreaterThan(4);
      expect(worst).toBeLessThan(MAX_AGE);
    });
  }

  it("edge 3 emits an Age at least the true age of the response", async () => {
    const clock = new VirtualClock(START);
    const origin = new FakeParent(clock);
    const [, , e3] = chain(clock, origin, 250);
    await settle(clock, e3!.handle(get()));
    await clock.advance(10_000);
    const res = await e3!.handle(get());
    // Produced about 10.75 s ago (three 250 ms hops back plus 10 s): Age rounds up.
    expect(Number(res.headers.get("age"))).toBeGreaterThanOrEqual(11);
    expect(res.headers.get("cache-status")).toMatch(
      /^edge-1; fwd=uri-miss.*, edge-2; fwd=uri-miss.*, edge-3; hit; /,
    );
  });

  it("rounding Age up costs up to a second per hop: max-age=5 is ~3 s fresh at edge 3, max-age=2 none", async () => {
    const clock = new VirtualClock(START);
    const origin = new FakeParent(clock);
    origin.cacheControl = "max-age=5";
    const [, , e3] = chain(clock, origin, 5);
    const fill = await settle(clock, e3!.handle(get()));
    expect(fill.headers.get("age")).toBe("3");
    expect(cacheStatusOf(fill, "edge-3")).toMatch(
      /^edge-3; fwd=uri-miss; fwd-status=200; ttl=2; stored/,
    );
    origin.cacheControl = "max-age=2";
    const path = "/resolve?name=short.example.test&type=A";
    await settle(clock, e3!.handle(get(path)));
    const calls = origin.calls;
    const again = await settle(clock, e3!.handle(get(path)));
    expect(cacheStatusOf(again, "edge-3")).toMatch(/^edge-3; fwd=stale; /);
    expect(origin.calls).toBe(calls);
  });
});

describe("Cache-Status through three tiers (RFC 9211 §2)", () => {
  function tiers(clock: VirtualClock, origin: FakeParent): Edge {
    const regional = makeEdge(clock, origin.fetch, { id: "regional" });
    const edge2 = makeEdge(clock, (r) => regional.handle(r), { id: "edge-2" });
    return makeEdge(clock, (r) => edge2.handle(r), { id: "edge-1" });
  }

  it("lists the members from the cache nearest the origin to the one nearest the client", async () => {
    const clock = new VirtualClock(START);
    const edge1 = tiers(clock, new FakeParent(clock));
    const miss = await edge1.handle(get());
    const filled =
      'fwd=uri-miss; fwd-status=200; ttl=60; stored; key="/resolve?name=www.example.test&type=A"';
    expect(miss.headers.get("cache-status")).toBe(
      `regional; ${filled}, edge-2; ${filled}, edge-1; ${filled}`,
    );
    await clock.advance(1_000);
    const hit = await edge1.handle(get());
    expect(cacheStatusMembers(hit.headers.get("cache-status")).map(cacheOf)).toEqual([
      "regional",
      "edge-2",
      "edge-1",
    ]);
    expect(cacheStatusOf(hit, "edge-1")).toMatch(/^edge-1; hit; ttl=59;/);
  });

  it("a tier's own 502 carries no member of its own; the tiers that relay it add theirs", async () => {
    const clock = new VirtualClock(START);
    const origin = new FakeParent(clock);
    origin.fail = "down";
    const res = await tiers(clock, origin).handle(get());
    expect(res.status).toBe(502);
    expect(cacheStatusMembers(res.headers.get("cache-status")).map(cacheOf)).toEqual([
      "edge-2",
      "edge-1",
    ]);
    expect(cacheStatusOf(res, "edge-2")).toMatch(/^edge-2; fwd=uri-miss; fwd-status=502/);
    expect(cacheStatusOf(res, "edge-1")).toMatch(/^edge-1; fwd=uri-miss; fwd-status=502/);
  });
});
