/**
 * The version floor both cache tiers use (core/floor.ts): floors per key and
 * per zone, compared only within a zone, and the eviction rule (a forgotten
 * key floor raises its zone's floor).
 */
import { describe, expect, it } from "vitest";
import { VersionFloor, ZoneSerials } from "../../core/floor.ts";

describe("VersionFloor", () => {
  it("keeps floors per zone: another zone's serial is never compared", () => {
    const floor = new VersionFloor();
    floor.raise(["a.example.test"], 5, "example.test");
    floor.raise(["x.other.test"], 40, "other.test");
    expect(floor.floorOf(["a.example.test"], "example.test")).toBe(5);
    expect(floor.floorOf(["b.example.test"], "example.test")).toBeUndefined();
    expect(floor.floorOf(["x.other.test"], "other.test")).toBe(40);
    // Through a CNAME: the target's floor counts only within the question's zone.
    expect(floor.floorOf(["alias.example.test", "x.other.test"], "example.test")).toBeUndefined();
    expect(floor.floorOf(["alias.example.test", "a.example.test"], "example.test")).toBe(5);
    floor.raiseZone("example.test", 7);
    expect(floor.floorOf(["b.example.test"], "example.test")).toBe(7);
    expect(floor.floorOf(["a.sub.example.test"], "sub.example.test")).toBeUndefined();
  });

  it("is empty until a floor is raised, by a key or by a zone, and finds nothing while empty", () => {
    const byKey = new VersionFloor();
    expect(byKey.empty).toBe(true);
    expect(byKey.floorOf(["a.example.test", "zone:example.test"], "example.test")).toBeUndefined();
    byKey.raise(["a.example.test"], 5, "example.test");
    expect(byKey.empty).toBe(false);
    expect(byKey.floorOf(["a.example.test"], "example.test")).toBe(5);
    const byZone = new VersionFloor();
    byZone.raise(["zone:example.test"], 6);
    expect(byZone.empty).toBe(false);
    expect(byZone.size).toBe(1);
    expect(byZone.floorOf(["b.example.test"], "example.test")).toBe(6);
  });

  it("never lowers a floor", () => {
    const floor = new VersionFloor();
    floor.raise(["a.example.test"], 9, "example.test");
    floor.raise(["a.example.test"], 4, "example.test");
    floor.raiseZone("example.test", 3);
    floor.raiseZone("example.test", 2);
    expect(floor.floorOf(["a.example.test"], "example.test")).toBe(9);
    expect(floor.floorOf(["b.example.test"], "example.test")).toBe(3);
  });

  it("compares serials in RFC 1982 arithmetic, across the wrap", () => {
    const floor = new VersionFloor();
    floor.raise(["a.example.test"], 4_294_967_290, "example.test");
    floor.raise(["a.example.test"], 3, "example.test");
    expect(floor.floorOf(["a.example.test"], "example.test")).toBe(3);
  });

  it("reads the purge bus's keys: `*` and `zone:<zone>` floor a zone, the zone key names an entry's zone", () => {
    const floor = new VersionFloor();
    floor.raise(["*"], 6, "example.test");
    floor.raise(["zone:other.test"], 8);
    floor.raise(["www.other.test"], 9, "other.test");
    // An edge entry's surrogate keys: its owner name and its zone key.
    expect(floor.floorOf(["api.example.test", "zone:example.test"])).toBe(6);
    expect(floor.floorOf(["mail.other.test", "zone:other.test"])).toBe(8);
    expect(floor.floorOf(["www.other.test", "zone:other.test"])).toBe(9);
    // The name's floor was raised for other.test: it does not count in example.test.
    expect(floor.floorOf(["www.other.test", "zone:example.test"])).toBe(6);
    // `*` without a zone floors nothing: there is no zone it could mean.
    floor.raise(["*"], 50);
    expect(floor.floorOf(["x", "zone:example.test"])).toBe(6);
  });

  it("counts a floor raised without a zone for every zone, and without a zone every floor counts", () => {
    const floor = new VersionFloor();
    floor.raise(["tag-1"], 5);
    floor.raise(["www.example.test"], 7, "example.test");
    expect(floor.floorOf(["tag-1", "zone:example.test"])).toBe(5);
    expect(floor.floorOf(["tag-1", "www.example.test"])).toBe(7);
  });

  it("is bounded: a forgotten key floor raises its zone's floor instead", () => {
    const floor = new VersionFloor(2);
    floor.raise(["a.example.test"], 5, "example.test");
    floor.raise(["b.example.test"], 6, "example.test");
    expect(floor.floorOf(["z.example.test"], "example.test")).toBeUndefined();
    floor.raise(["c.example.test"], 7, "example.test");
    expect(floor.size).toBe(3); // two keys and one zone
    expect(floor.floorOf(["a.example.test"], "example.test")).toBe(5);
    expect(floor.floorOf(["z.example.test"], "example.test")).toBe(5);
    expect(floor.floorOf(["b.example.test"], "example.test")).toBe(6);
    expect(floor.floorOf(["c.example.test"], "example.test")).toBe(7);
    // The same through an edge's surrogate keys.
    expect(floor.floorOf(["z.example.test", "zone:example.test"])).toBe(5);
  });

  it("forgets an evicted floor that has no zone to fall back on", () => {
    const floor = new VersionFloor(1);
    floor.raise(["tag-1"], 5);
    floor.raise(["tag-2"], 6);
    expect(floor.floorOf(["tag-1"])).toBeUndefined();
    expect(floor.size).toBe(1);
  });
});

describe("ZoneSerials", () => {
  it("advances only on a newer serial", () => {
    const seen = new ZoneSerials();
    expect(seen.advance("example.test", 3)).toBe(true);
    expect(seen.advance("example.test", 3)).toBe(false);
    expect(seen.advance("example.test", 2)).toBe(false);
    expect(seen.advance("example.test", 4)).toBe(true);
    expect(seen.advance("other.test", 1)).toBe(true);
  });
});
