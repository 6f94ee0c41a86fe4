/**
 * Zone.at answers from its by-name index: the RRsets a name owns, in the
 * order they were first put, after replaces and deletes, and nothing for a
 * name that owns none (empty non-terminals included).
 */
import { describe, expect, it } from "vitest";
import type { RRset } from "../../core/records.ts";
import { Zone } from "../../origin/zone.ts";

const soa: RRset<"SOA"> = {
  name: "example.test",
  type: "SOA",
  ttl: 60,
  data: [
    {
      mname: "ns1.example.test",
      rname: "hostmaster.example.test",
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: 60,
    },
  ],
};

describe("Zone.at", () => {
  it("lists a name's RRsets after puts, replaces and deletes", () => {
    const zone = new Zone("example.test", soa);
    const a = (ip: string): RRset<"A"> => ({
      name: "www.example.test",
      type: "A",
      ttl: 60,
      data: [ip],
    });
    const txt: RRset<"TXT"> = { name: "www.example.test", type: "TXT", ttl: 60, data: [["v"]] };
    const deep: RRset<"A"> = { name: "a.b.example.test", type: "A", ttl: 60, data: ["192.0.2.9"] };
    zone.put(a("192.0.2.1"));
    zone.put(txt);
    zone.put(deep);
    expect(zone.at("www.example.test")).toEqual([a("192.0.2.1"), txt]);
    zone.put(a("192.0.2.2"));
    expect(zone.at("www.example.test")).toEqual([a("192.0.2.2"), txt]);
    expect(zone.at("example.test")).toEqual([soa]);
    // b.example.test exists (RFC 8020) but owns nothing.
    expect(zone.exists("b.example.test")).toBe(true);
    expect(zone.at("b.example.test")).toEqual([]);
    expect(zone.delete("www.example.test", "A")).toBe(true);
    expect(zone.at("www.example.test")).toEqual([txt]);
    expect(zone.delete("www.example.test", "TXT")).toBe(true);
    expect(zone.at("www.example.test")).toEqual([]);
    expect(zone.exists("www.example.test")).toBe(false);
    expect(zone.delete("www.example.test", "TXT")).toBe(false);
    // Put back after the name emptied: listed again, and counted once.
    zone.put(txt);
    expect(zone.at("www.example.test")).toEqual([txt]);
    expect(zone.size).toBe(3);
  });
});
