import { describe, expect, it } from "vitest";
import { fqdn, isInZone, NameError, normaliseName, parentName } from "../../core/names.ts";

describe("normaliseName", () => {
  it("lower-cases and drops the trailing dot", () => {
    expect(normaliseName("WWW.Example.TEST.")).toBe("www.example.test");
    expect(normaliseName(".")).toBe("");
  });

  it("accepts a 63-octet label and rejects a 64-octet one", () => {
    expect(normaliseName(`${"a".repeat(63)}.test`)).toHaveLength(68);
    expect(() => normaliseName(`${"a".repeat(64)}.test`)).toThrow(/longer than 63/);
  });

  it("rejects names over 255 octets in wire form", () => {
    const label = "a".repeat(63);
    const name = [label, label, label, "a".repeat(61)].join(".");
    expect(normaliseName(name)).toBe(name); // 4 + 63*3 + 61 + 1 = 255
    expect(() => normaliseName(`a.${name}`)).toThrow(/257 octets/);
  });

  it("names the bad label", () => {
    expect(() => normaliseName("bad name.test")).toThrow(NameError);
    expect(() => normaliseName("a..test")).toThrow(/empty label/);
    expect(() => normaliseName("-a.test")).toThrow(/"-a"/);
    expect(() => normaliseName("a.*.test")).toThrow(/leftmost/);
  });

  it("allows underscores and a leading wildcard", () => {
    expect(normaliseName("_sip._tcp.example.test")).toBe("_sip._tcp.example.test");
    expect(normaliseName("*.example.test")).toBe("*.example.test");
  });
});

describe("zone helpers", () => {
  it("isInZone matches whole labels only", () => {
    expect(isInZone("www.example.test", "example.test")).toBe(true);
    expect(isInZone("example.test", "example.test")).toBe(true);
    expect(isInZone("badexample.test", "example.test")).toBe(false);
    expect(isInZone("anything", "")).toBe(true);
  });

  it("parentName and fqdn", () => {
    expect(parentName("www.example.test")).toBe("example.test");
    expect(parentName("test")).toBe("");
    expect(fqdn("example.test")).toBe("example.test.");
    expect(fqdn("")).toBe(".");
  });
});
