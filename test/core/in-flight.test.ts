import { describe, expect, it } from "vitest";
import { InFlight } from "../../core/in-flight.ts";

describe("InFlight", () => {
  it("finds work until it lands, and lists only work in flight", () => {
    const m = new InFlight<string>();
    m.set("a", "fill a");
    m.set("b", "fill b");
    expect(m.get("a")).toBe("fill a");
    m.delete("a");
    expect(m.get("a")).toBeUndefined();
    expect([...m]).toEqual([["b", "fill b"]]);
    m.set("a", "fill a again");
    expect(m.get("a")).toBe("fill a again");
    expect([...m]).toEqual([
      ["a", "fill a again"],
      ["b", "fill b"],
    ]);
    m.delete("missing");
    expect(m.get("missing")).toBeUndefined();
    expect([...m].map(([k]) => k)).toEqual(["a", "b"]);
  });

  it("stays right past the keys it keeps empty, and may be emptied while listed", () => {
    const m = new InFlight<number>();
    for (let i = 0; i < 50; i++) m.set(`k${i}`, i);
    for (let i = 0; i < 50; i += 2) m.delete(`k${i}`);
    expect([...m].map(([, v]) => v)).toEqual(Array.from({ length: 25 }, (_, j) => 2 * j + 1));
    for (const [key] of m) m.delete(key);
    expect([...m]).toEqual([]);
    for (let i = 0; i < 50; i++) expect(m.get(`k${i}`)).toBeUndefined();
    m.set("k3", 3);
    expect([...m]).toEqual([["k3", 3]]);
  });
});
