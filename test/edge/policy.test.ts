import { describe, expect, it } from "vitest";
import { parseCacheControl } from "../../core/http.ts";
import {
  appendCacheStatus,
  cacheIdentifier,
  cacheKey,
  cacheKeyOf,
  formatCacheStatus,
  invalidCacheId,
} from "../../edge/key.ts";
import {
  ageHeader,
  correctedInitialAge,
  currentAge,
  freshnessLifetime,
  noneMatch,
  notStorableReason,
  parseAge,
} from "../../edge/policy.ts";
import { cacheStatusMembers, cacheStatusOf } from "../support/cache-status.ts";

const T = Date.UTC(2026, 0, 1, 12, 0, 0);

describe("RFC 9111 §5.1 Age parsing", () => {
  it("takes a non-negative integer, the first member of a list, and ignores invalid values", () => {
    expect(parseAge("42")).toBe(42);
    expect(parseAge(" 7 ")).toBe(7);
    expect(parseAge("5, 10")).toBe(5);
    expect(parseAge(null)).toBeUndefined();
    expect(parseAge("-3")).toBeUndefined();
    expect(parseAge("1.5")).toBeUndefined();
    expect(parseAge("soon")).toBeUndefined();
  });
});

describe("RFC 9111 §4.2.3 age calculation, worked examples", () => {
  it("Age present: corrected_age_value = age_value + response_delay wins over apparent_age", () => {
    // Sent at T, answered 2 s later, parent says Age: 10, Date equal to response_time.
    const cia = correctedInitialAge({
      requestTime: T,
      responseTime: T + 2000,
      dateValue: T + 2000,
      ageValue: 10,
    });
    expect(cia).toBe(12);
    // 30 s resident: current_age = 12 + 30.
    expect(currentAge({ correctedInitialAge: cia, responseTime: T + 2000 }, T + 32_000)).toBe(42);
  });

  it("Age absent: apparent_age (response_time - Date) when it is larger than the delay", () => {
    const cia = correctedInitialAge({
      requestTime: T,
      responseTime: T + 1000,
      dateValue: T - 4000,
    });
    expect(cia).toBe(5);
  });

  it("Age invalid: treated as absent (parseAge gives undefined -> 0)", () => {
    const cia = correctedInitialAge({
      requestTime: T,
      responseTime: T + 500,
      dateValue: T + 500,
      ageValue: parseAge("abc"),
    });
    expect(cia).toBe(0.5);
  });

  it("Age listed: the first member counts", () => {
    const cia = correctedInitialAge({
      requestTime: T,
      responseTime: T,
      dateValue: T,
      ageValue: parseAge("20, 3"),
    });
    expect(cia).toBe(20);
  });

  it("parent clock ahead (Date in our future): apparent_age clamps to 0, Age still counts", () => {
    const cia = correctedInitialAge({
      requestTime: T,
      responseTime: T + 1000,
      dateValue: T + 3_600_000,
      ageValue: 8,
    });
    expect(cia).toBe(9);
  });

  it("parent clock behind: apparent_age is larger and wins (conservative)", () => {
    const cia = correctedInitialAge({
      requestTime: T,
      responseTime: T + 1000,
      dateValue: T - 30_000,
      ageValue: 8,
    });
    expect(cia).toBe(31);
  });

  it("Date absent: the response time stands in for it (RFC 9110 §6.6.1)", () => {
    expect(correctedInitialAge({ requestTime: T, responseTime: T + 250 })).toBe(0.25);
  });

  it("emits Age rounded up so a downstream cache never sees the response younger", () => {
    expect(ageHeader(0)).toBe("0");
    expect(ageHeader(12)).toBe("12");
    expect(ageHeader(12.001)).toBe("13");
  });
});

describe("RFC 9111 §4.2.1 freshness_lifetime for a shared cache", () => {
  const h = (headers: [string, string][]) => ({ headers });
  it("prefers s-maxage, then max-age, then Expires - Date, else 0", () => {
    expect(freshnessLifetime(parseCacheControl("max-age=60, s-maxage=10"), h([]))).toBe(10);
    expect(freshnessLifetime(parseCacheControl("max-age=60"), h([]))).toBe(60);
    const date = new Date(T).toUTCString();
    const expires = new Date(T + 90_000).toUTCString();
    const dated = h([
      ["date", date],
      ["expires", expires],
    ]);
    expect(freshnessLifetime({}, dated)).toBe(90);
    expect(freshnessLifetime(parseCacheControl("max-age=5"), dated)).toBe(5);
    expect(freshnessLifetime({}, h([["expires", "0"]]))).toBe(0);
    expect(freshnessLifetime({}, h([]))).toBe(0);
  });
});

describe("storability (RFC 9111 §3)", () => {
  const cc = parseCacheControl;
  const res = (status: number, fields: [string, string][]) => {
    const c = cc(fields.find(([k]) => k === "cache-control")?.[1]);
    return {
      status,
      headers: fields,
      cc: c,
      freshnessLifetime: freshnessLifetime(c, { headers: fields, status }),
    };
  };
  const maxAge: [string, string] = ["cache-control", "max-age=5"];
  it("refuses no-store, private, Vary: *, uncacheable status and no explicit freshness", () => {
    expect(notStorableReason(res(200, [maxAge]), {})).toBeUndefined();
    expect(notStorableReason(res(404, [maxAge]), {})).toBeUndefined();
    expect(notStorableReason(res(200, [["cache-control", "no-store, max-age=5"]]), {})).toBe(
      "no-store",
    );
    expect(notStorableReason(res(200, [["cache-control", "private, max-age=5"]]), {})).toBe(
      "private",
    );
    expect(notStorableReason(res(500, [maxAge]), {})).toBeUndefined();
    expect(notStorableReason(res(206, [maxAge]), {})).toBe("status");
    expect(notStorableReason(res(200, [maxAge, ["vary", "accept, *"]]), {})).toBe("vary-star");
    expect(notStorableReason(res(200, []), {})).toBe("no-explicit-freshness");
    expect(notStorableReason(res(200, [maxAge]), cc("no-store"))).toBe("request-no-store");
  });

  it("stores a response whose only freshness is Expires (§3), even an invalid one", () => {
    const expires: [string, string] = ["expires", "Thu, 01 Jan 2026 12:01:30 GMT"];
    expect(notStorableReason(res(200, [expires]), {})).toBeUndefined();
    expect(notStorableReason(res(200, [["expires", "0"]]), {})).toBeUndefined();
  });
});

describe("cache keys and Cache-Status", () => {
  it("normalises the JSON API query and keeps DoH queries as sent", () => {
    expect(cacheKey(new URL("http://e/resolve?type=a&name=WWW.Example.TEST."))).toBe(
      "/resolve?name=www.example.test&type=A",
    );
    expect(cacheKey(new URL("http://e/dns-query?dns=AAABAAAB"))).toBe("/dns-query?dns=AAABAAAB");
  });

  it("keys a request URL as its parsed URL, the same again when asked again", () => {
    for (const href of [
      "http://e/resolve?type=a&name=WWW.Example.TEST.",
      "http://e/dns-query?dns=AAABAAAB",
      "http://e/a/../b?x=%41#frag",
      `http://e/dns-query?dns=${"A".repeat(600)}`,
    ]) {
      expect(cacheKeyOf(href)).toBe(cacheKey(new URL(href)));
      expect(cacheKeyOf(href)).toBe(cacheKey(new URL(href)));
    }
    // Past its bound the memo starts over and keeps answering.
    for (let i = 0; i < 5_000; i++) cacheKeyOf(`http://e/p${i}`);
    expect(cacheKeyOf("http://e/p1")).toBe("/p1");
  });

  it("formats RFC 9211 members and puts the cache nearest the client last", () => {
    const own = formatCacheStatus("edge-1", {
      fwd: "uri-miss",
      fwdStatus: 200,
      stored: true,
      key: "/x",
    });
    expect(own).toBe('edge-1; fwd=uri-miss; fwd-status=200; stored; key="/x"');
    expect(appendCacheStatus("regional; hit", own)).toBe(`regional; hit, ${own}`);
    expect(appendCacheStatus(undefined, own)).toBe(own);
  });

  it("the test helper finds a cache's own member, even in an sf-string with commas", () => {
    const odd = 'my "edge", \\1';
    const field = appendCacheStatus(
      'regional; fwd=uri-miss; key="/a,b", edge-2; hit',
      formatCacheStatus(odd, { hit: true, key: "/x, y" }),
    );
    expect(cacheStatusMembers(field)).toHaveLength(3);
    expect(cacheStatusOf(field, odd)).toBe('"my \\"edge\\", \\\\1"; hit; key="/x, y"');
    expect(cacheStatusOf(field, "regional")).toBe('regional; fwd=uri-miss; key="/a,b"');
    expect(cacheStatusOf(field, "edge-1")).toBeUndefined();
  });

  it("names the cache as an sf-token when it is one, else as an escaped sf-string (RFC 9211 §2)", () => {
    expect(cacheIdentifier("edge-1")).toBe("edge-1");
    expect(cacheIdentifier("regional.eu:1/a")).toBe("regional.eu:1/a");
    expect(cacheIdentifier("1edge")).toBe('"1edge"');
    expect(cacheIdentifier('my "edge", \\1')).toBe('"my \\"edge\\", \\\\1"');
    expect(formatCacheStatus("edge 1", { hit: true, key: '/a"b' })).toBe(
      '"edge 1"; hit; key="/a\\"b"',
    );
    expect(invalidCacheId("1edge")).toBeUndefined();
    expect(invalidCacheId("édge")).toMatch(/printable ASCII/);
    expect(invalidCacheId("")).toMatch(/printable ASCII/);
    expect(invalidCacheId("a\tb")).toMatch(/printable ASCII/);
  });

  it("matches If-None-Match weakly, lists and *", () => {
    expect(noneMatch('"3"', '"3"')).toBe(true);
    expect(noneMatch('W/"3", "4"', '"3"')).toBe(true);
    expect(noneMatch("*", '"9"')).toBe(true);
    expect(noneMatch('"2"', '"3"')).toBe(false);
    expect(noneMatch(null, '"3"')).toBe(false);
  });
});
