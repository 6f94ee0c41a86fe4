import { describe, expect, it } from "vitest";
import { formatCacheControl, parseCacheControl, parseSerialHeader } from "../../core/http.ts";

describe("Cache-Control", () => {
  it("parses directives case-insensitively, with quoted values", () => {
    expect(
      parseCacheControl(
        'Max-Age="60", s-maxage=30, stale-while-revalidate=5, STALE-IF-ERROR=600, must-revalidate',
      ),
    ).toEqual({
      maxAge: 60,
      sMaxAge: 30,
      staleWhileRevalidate: 5,
      staleIfError: 600,
      mustRevalidate: true,
    });
  });

  it("treats an invalid max-age as 0 (RFC 9111 §4.2.1)", () => {
    expect(parseCacheControl("max-age=-1").maxAge).toBe(0);
    expect(parseCacheControl("max-age=abc").maxAge).toBe(0);
  });

  it("parses each value once: the result is shared and frozen, so no reader can change another's", () => {
    const a = parseCacheControl("max-age=300, stale-while-revalidate=10");
    expect(parseCacheControl("max-age=300, stale-while-revalidate=10")).toBe(a);
    expect(Object.isFrozen(a)).toBe(true);
    expect(() => {
      (a as { maxAge?: number }).maxAge = 1;
    }).toThrow(TypeError);
    expect(parseCacheControl("max-age=300, stale-while-revalidate=10").maxAge).toBe(300);
    expect(parseCacheControl(null)).toEqual({});
    expect(Object.isFrozen(parseCacheControl(""))).toBe(true);
    // A long value is parsed each time, the same.
    const long = `max-age=5, ${"x".repeat(300)}`;
    expect(parseCacheControl(long)).toEqual({ maxAge: 5 });
    expect(Object.isFrozen(parseCacheControl(long))).toBe(true);
  });

  it("round-trips through format", () => {
    const cc = { maxAge: 60, staleWhileRevalidate: 30, staleIfError: 86400 };
    expect(formatCacheControl(cc)).toBe(
      "max-age=60, stale-while-revalidate=30, stale-if-error=86400",
    );
    expect(parseCacheControl(formatCacheControl(cc))).toEqual(cc);
  });

  it("reads serial headers strictly", () => {
    expect(parseSerialHeader("42")).toBe(42);
    expect(parseSerialHeader("4294967296")).toBeUndefined();
    expect(parseSerialHeader("-1")).toBeUndefined();
    expect(parseSerialHeader(null)).toBeUndefined();
  });
});
