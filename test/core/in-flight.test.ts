import { describe, expect, it } from "vitest";
import { InFlight } from "../../core/in-flight.ts";
import { Random } from "../../core/random.ts";

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

  it("answers as a plain map would under random sets, deletes and listings over a few keys", () => {
    // One key in the fields, the others in the map, past KEPT at times.
    const rnd = new Random(11);
    const m = new InFlight<number>();
    const ref = new Map<string, number>();
    for (let step = 0; step < 20_000; step++) {
      const key = `k${rnd.nextUint32() % 12}`;
      const op = rnd.next();
      if (op < 0.45) {
        m.set(key, step);
        ref.set(key, step);
      } else if (op < 0.9) {
        m.delete(key);
        ref.delete(key);
      } else {
        const listed = [...m].sort(([a], [b]) => a.localeCompare(b));
        expect(listed).toEqual([...ref].sort(([a], [b]) => a.localeCompare(b)));
      }
      expect(m.get(key)).toBe(ref.get(key));
    }
  });
});
