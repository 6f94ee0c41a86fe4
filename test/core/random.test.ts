import { describe, expect, it } from "vitest";
import { hashSeed, normalCdf, normalQuantile, Random, RandomStreams } from "../../core/random.ts";

function draw(r: Random, n: number): number[] {
  return Array.from({ length: n }, () => r.next());
}

describe("Random", () => {
  it("repeats its sequence for the same seed and differs for another", () => {
    expect(draw(new Random(42), 100)).toEqual(draw(new Random(42), 100));
    expect(draw(new Random("edge-1"), 100)).toEqual(draw(new Random("edge-1"), 100));
    expect(draw(new Random(42), 100)).not.toEqual(draw(new Random(43), 100));
  });

  it("draws uniformly in [0, 1)", () => {
    const xs = draw(new Random(7), 20_000);
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const buckets = new Array<number>(10).fill(0);
    for (const x of xs) buckets[Math.floor(x * 10)]!++;
    // Each decile holds 2000 +- 5 sigma (sigma ~ 42).
    for (const b of buckets) expect(Math.abs(b - 2000)).toBeLessThan(210);
  });

  it("samples normals with the asked mean and standard deviation (Box-Muller)", () => {
    const r = new Random(1);
    const xs = Array.from({ length: 20_000 }, () => r.normal(10, 3));
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const sd = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
    expect(mean).toBeCloseTo(10, 1);
    expect(sd).toBeCloseTo(3, 1);
  });

  it("samples lognormals around the asked median", () => {
    const r = new Random(2);
    const xs = Array.from({ length: 10_001 }, () => r.lognormal(20, 0.5)).sort((a, b) => a - b);
    expect(xs[5000]!).toBeGreaterThan(19);
    expect(xs[5000]!).toBeLessThan(21);
  });

  it("hashes seed parts into distinct, stable 32-bit seeds", () => {
    expect(hashSeed(1, "edge-1")).toBe(hashSeed(1, "edge-1"));
    expect(hashSeed(1, "edge-1")).not.toBe(hashSeed(1, "edge-2"));
    expect(hashSeed("a", "bc")).not.toBe(hashSeed("ab", "c"));
    expect(Number.isInteger(hashSeed(5)) && hashSeed(5) >= 0 && hashSeed(5) < 2 ** 32).toBe(true);
  });

  it("hashes the same seeds as ever: a seed in a saved report replays the same run", () => {
    // Values of FNV-1a over the parts' code points joined by U+0000, then
    // fmix32: pinned, so a faster way to compute them cannot change a run.
    const pinned: [(number | string)[], number][] = [
      [[1, "edge-1"], 2135819775],
      [[], 2872998923],
      [["", ""], 91794203],
      [[0], 1693486945],
      [[-1.5, "x"], 3973843459],
      [["a", "bc"], 4196258390],
      [["ab", "c"], 558897161],
      // A surrogate pair is one code point; a lone surrogate is its own.
      [["\u{1F600}"], 1248197370],
      [["\ud800"], 1463727854],
      [["x\udc00y"], 85011190],
      [["\ud800\ud800\udc00"], 1550507224],
      [["\u00e9", 3, "population"], 2050539722],
      [[42, "res-99999", "warm-up"], 2226771428],
      [[1e21], 3171208996],
    ];
    for (const [parts, h] of pinned) expect(hashSeed(...parts), JSON.stringify(parts)).toBe(h);
  });
});

describe("normalCdf and normalQuantile", () => {
  it("match known values", () => {
    expect(normalCdf(0)).toBeCloseTo(0.5, 7);
    expect(normalCdf(1.959964)).toBeCloseTo(0.975, 6);
    expect(normalCdf(-1)).toBeCloseTo(0.158655, 6);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 6);
    expect(normalQuantile(0.01)).toBeCloseTo(-2.326348, 6);
    expect(normalQuantile(0)).toBe(Number.NEGATIVE_INFINITY);
    expect(() => normalQuantile(1.5)).toThrow(/\[0, 1\]/);
  });

  it("are inverses across the range, tails included", () => {
    for (const x of [-4, -2.5, -1, -0.1, 0, 0.3, 1.7, 3, 4.5]) {
      expect(normalQuantile(normalCdf(x))).toBeCloseTo(x, 4);
    }
  });
});

describe("RandomStreams", () => {
  it("draws in each stream what a Random of its seed draws, streams interleaved in any order", () => {
    const seeds: (number | string)[] = [0, 1, 42, 0xffffffff, "edge-1", "r-99999"];
    const streams = new RandomStreams();
    const models = seeds.map((s) => new Random(s));
    for (const [i, s] of seeds.entries()) expect(streams.add(s)).toBe(i);
    expect(streams.length).toBe(seeds.length);
    const pick = new Random(3);
    for (let k = 0; k < 20_000; k++) {
      const i = pick.nextUint32() % seeds.length;
      expect(streams.next(i)).toBe(models[i]!.next());
    }
  });

  it("keeps every stream's state as it grows", () => {
    const streams = new RandomStreams();
    const models: Random[] = [];
    for (let i = 0; i < 300; i++) {
      streams.add(`s${i}`);
      models.push(new Random(`s${i}`));
      // Drawn from the first stream between growths: its state must move with the array.
      expect(streams.next(0)).toBe(models[0]!.next());
    }
    for (let i = 0; i < 300; i++) expect(streams.next(i)).toBe(models[i]!.next());
  });
});
