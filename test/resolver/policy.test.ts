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
