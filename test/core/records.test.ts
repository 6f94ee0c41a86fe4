import { describe, expect, it } from "vitest";
import { isIPv4, isIPv6, parseRData, toRRType } from "../../core/records.ts";

describe("rdata validation", () => {
  it("checks addresses", () => {
    expect(isIPv4("192.0.2.1")).toBe(true);
    expect(isIPv4("256.0.0.1")).toBe(false);
    expect(isIPv4("01.2.3.4")).toBe(false);
    for (const ok of [
      "::",
      "::1",
      "2001:db8::1",
      "2001:db8:0:0:0:0:0:1",
      "::ffff:192.0.2.1",
      "fe80::",
    ]) {
      expect(isIPv6(ok), ok).toBe(true);
    }
    for (const bad of [
      "1::2::3",
      "2001:db8::g",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7",
      ":1",
      "12345::",
    ]) {
      expect(isIPv6(bad), bad).toBe(false);
    }
  });

  it("normalises names inside rdata", () => {
    expect(parseRData("CNAME", "Target.Example.Test.")).toBe("target.example.test");
    expect(parseRData("MX", { preference: 10, exchange: "MX.example.test" })).toEqual({
      preference: 10,
      exchange: "mx.example.test",
    });
  });

  it("accepts TXT as one string or a list, and limits character-strings to 255 octets", () => {
    expect(parseRData("TXT", "hello")).toEqual(["hello"]);
    expect(parseRData("TXT", ["a", "b"])).toEqual(["a", "b"]);
    expect(() => parseRData("TXT", "x".repeat(256))).toThrow(/255 octets/);
  });

  it("rejects out-of-range numbers and bad CAA tags", () => {
    expect(() =>
      parseRData("SRV", { priority: 1, weight: 1, port: 70000, target: "a.test" }),
    ).toThrow();
    expect(() => parseRData("CAA", { flags: 0, tag: "is sue", value: "ca.test" })).toThrow(
      /CAA tag/,
    );
    expect(parseRData("CAA", { tag: "issue", value: "ca.test" })).toEqual({
      flags: 0,
      tag: "issue",
      value: "ca.test",
    });
  });

  it("maps type mnemonics case-insensitively", () => {
    expect(toRRType("aaaa")).toBe("AAAA");
    expect(toRRType("HINFO")).toBeUndefined();
  });
});

describe("canonical IPv6 text (RFC 5952)", () => {
  it("lower-cases, drops leading zeros and compresses the longest zero run", async () => {
    const { canonicalIPv6 } = await import("../../core/records.ts");
    const cases: [string, string][] = [
      ["2001:DB8::1", "2001:db8::1"],
      ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
      ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
      ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
      ["0:0:0:0:0:0:0:0", "::"],
      ["::1", "::1"],
      ["fe80::", "fe80::"],
      ["::FFFF:192.0.2.1", "::ffff:192.0.2.1"],
      ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ];
    for (const [input, want] of cases) expect(canonicalIPv6(input), input).toBe(want);
    expect(parseRData("AAAA", "2001:DB8:0::0001")).toBe("2001:db8::1");
  });
});
