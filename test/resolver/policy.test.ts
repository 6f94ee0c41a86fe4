/** The resolver's pure cache rules (resolver/policy.ts): no clock, no storage, numbers in and out. */
import { describe, expect, it } from "vitest";
import { answerFromRRset } from "../../resolver/answer.ts";
import { toWire } from "../../resolver/handler.ts";
import {
  DEFAULT_CACHE,
  elapsedSeconds,
  expire,
  newEntry,
  recheckPending,
  servedOnError,
  upstreamFreshness,
  withinMaxStale,
  zoneOf,
} from "../../resolver/policy.ts";

const NAME = "www.example.test";
const answer = answerFromRRset(
  { name: NAME, type: "A", ttl: 100, data: ["192.0.2.1"] },
  toWire(NAME),
  1,
  DEFAULT_CACHE,
);
const question = { key: `${NAME}/1`, name: NAME, wireName: toWire(NAME), qtype: 1 };
const T0 = 1_000_000;

describe("resolver policy", () => {
  it("makes an entry fresh for its TTL, prefetched in the last tenth of it", () => {
    const e = newEntry(question, answer, 7, T0, DEFAULT_CACHE);
    expect(e).toMatchObject({ storedAt: T0, expiresAt: T0 + 100_000, serial: 7 });
    expect(e.prefetchAt).toBe(T0 + 90_000);
    expect(elapsedSeconds(e, T0 + 41_999)).toBe(41);
  });

  it("serves an expired entry stale until the maximum stale timer (RFC 8767 §4)", () => {
    const e = newEntry(question, answer, undefined, T0, DEFAULT_CACHE);
    const config = { ...DEFAULT_CACHE, maxStaleMs: 60_000 };
    expect(withinMaxStale(e, T0 + 159_999, config)).toBe(true);
    expect(withinMaxStale(e, T0 + 160_000, config)).toBe(false);
  });

  it("holds back a refresh for the failure recheck timer after a failure", () => {
    const e = newEntry(question, answer, undefined, T0, DEFAULT_CACHE);
    expect(recheckPending(e, T0, DEFAULT_CACHE)).toBe(false);
    e.failedAt = T0;
    expect(recheckPending(e, T0 + 29_999, DEFAULT_CACHE)).toBe(true);
    expect(recheckPending(e, T0 + 30_000, DEFAULT_CACHE)).toBe(false);
  });

  it("judges an upstream answer by how far past its TTL it arrived (RFC 5861, RFC 8767)", () => {
    const config = { ...DEFAULT_CACHE, maxStaleMs: 3_600_000 };
    expect(upstreamFreshness(undefined, 30, config)).toBe("fresh");
    expect(upstreamFreshness(30, 30, config)).toBe("revalidating");
    expect(upstreamFreshness(31, 30, config)).toBe("failed");
    expect(upstreamFreshness(3_600, 30, config)).toBe("too-stale");
    // Past stale-while-revalidate, a path whose Cache-Status shows no cache served on error
    // refreshed: the copy expired on the way; unknown (no field) or an error: failed.
    expect(upstreamFreshness(31, 30, config, false)).toBe("expired");
    expect(upstreamFreshness(31, 30, config, true)).toBe("failed");
    expect(upstreamFreshness(30, 30, config, true)).toBe("revalidating");
    expect(upstreamFreshness(3_600, 30, config, false)).toBe("too-stale");
  });

  it("reads from Cache-Status whether a cache on the path served its copy for an error", () => {
    // The boundary the fuzz met (seeds 118066, 118345): the regional's fresh hit at ttl=0, the edge's 304.
    const refreshed =
      'regional-1; hit; ttl=0; key="/dns-query?dns=AAAB", edge-3; fwd=stale; fwd-status=304; ttl=-1; stored; key="/dns-query?dns=AAAB"';
    expect(servedOnError(refreshed)).toBe(false);
    expect(servedOnError("edge-1; fwd=stale; fwd-status=503; ttl=-4; detail=stale-if-error")).toBe(
      true,
    );
    // The parent unreachable: no fwd-status, the detail says it.
    expect(servedOnError("edge-1; fwd=stale; ttl=-4; detail=stale-if-error")).toBe(true);
    // A parent's member counts as much as the nearest one (the edge got a 200 of a stale copy).
    expect(
      servedOnError(
        'regional-1; fwd=stale; ttl=-9; detail="stale-if-error", edge-1; fwd=miss; fwd-status=200',
      ),
    ).toBe(true);
    // A relayed 5xx from a forward, whatever the detail.
    expect(servedOnError("edge-1; fwd=request; fwd-status=502")).toBe(true);
    expect(servedOnError("edge-1; hit; ttl=-2; detail=stale-while-revalidate")).toBe(false);
    // Quoted text is no parameter: a key, or a cache named by an sf-string.
    expect(
      servedOnError('edge-1; fwd=miss; fwd-status=200; key="/a; detail=stale-if-error, x"'),
    ).toBe(false);
    expect(servedOnError('"fwd; fwd-status=503"; hit; ttl=3')).toBe(false);
    // A cache named fwd is an item, not the parameter.
    expect(servedOnError("fwd; fwd-status=503")).toBe(false);
    expect(servedOnError(null)).toBeUndefined();
    expect(servedOnError(undefined)).toBeUndefined();
    expect(servedOnError("  ")).toBeUndefined();
  });

  it("a soft purge expires the entry now and clears the failure recheck timer", () => {
    const e = newEntry(question, answer, undefined, T0, DEFAULT_CACHE);
    e.failedAt = T0;
    expire(e, T0 + 5_000);
    expect(e).toMatchObject({ expiresAt: T0 + 5_000, failedAt: undefined });
    // Never extends: an entry already expired stays so.
    expire(e, T0 + 9_000);
    expect(e.expiresAt).toBe(T0 + 5_000);
  });

  it("judges a name by its deepest known zone", () => {
    const zones = new Set(["example.test", "sub.example.test"]);
    expect(zoneOf("a.example.test", zones)).toBe("example.test");
    expect(zoneOf("a.sub.example.test", zones)).toBe("sub.example.test");
    expect(zoneOf("sub.example.test", zones)).toBe("sub.example.test");
    expect(zoneOf("x.other.test", zones)).toBeUndefined();
  });
});
