/**
 * Seeded randomness for reproducible runs: xoshiro128** (Blackman & Vigna),
 * seeded through splitmix32, with the samplers the delay model needs, and the
 * standard normal CDF and its inverse for closed-form predictions.
 * Never use Math.random() where a run must be replayable.
 */

/** A seed as a topology file states it: a number or a string (hashed). */
export type Seed = number | string;

/**
 * A 32-bit hash of one or more seed parts, so every link can get its own
 * stream from a run seed and the link's name: `hashSeed(runSeed, "edge-1")`.
 */
export function hashSeed(...parts: Seed[]): number {
  // FNV-1a over the parts' code points, joined by U+0000, then murmur3's
  // fmix32 to spread the bits. Read by index, not by joining the parts and
  // iterating the string: a simulator hashes every node's id several times
  // while it builds (its links, its clients, its population), and the join
  // and the string iterator were most of that (bench/results/simulate.md).
  let h = 0x811c9dc5;
  for (let p = 0; p < parts.length; p++) {
    // The separator, code point 0: h ^ 0 is h.
    if (p > 0) h = Math.imul(h, 0x01000193);
    const s = String(parts[p]);
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      // A surrogate pair is one code point, as `for...of` reads it; a lone surrogate is itself.
      if (c >= 0xd800 && c < 0xdc00 && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d < 0xe000) {
          c = ((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000;
          i++;
        }
      }
      h = Math.imul(h ^ c, 0x01000193);
    }
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The k-th output of splitmix32 from state `a` (a function, not a closure per Random: simulators make one per link). */
function splitmix32(a: number, k: number): number {
  const x = (a + Math.imul(k, 0x9e3779b9)) | 0;
  let t = x ^ (x >>> 16);
  t = Math.imul(t, 0x21f0aaad);
  t ^= t >>> 15;
  t = Math.imul(t, 0x735a2d97);
  return (t ^ (t >>> 15)) >>> 0;
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Random {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /**
   * Box-Muller makes two normals at a time; the second waits here (NaN:
   * none). Always a number: a field that is sometimes undefined holds a
   * number as a new heap object per store, which a link sampled once a
   * refresh keeps for minutes (the simulator: one per resolver).
   */
  private spareNormal = Number.NaN;

  constructor(seed: Seed) {
    // splitmix32 expands one 32-bit seed into the 128-bit state (never all zero).
    const a = hashSeed(seed);
    this.s0 = splitmix32(a, 1);
    this.s1 = splitmix32(a, 2);
    this.s2 = splitmix32(a, 3);
    this.s3 = splitmix32(a, 4);
  }

  /** A uniformly distributed unsigned 32-bit integer. */
  nextUint32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1), 32 bits of resolution. */
  next(): number {
    return this.nextUint32() / 2 ** 32;
  }

  /** Uniform in [min, max). */
  uniform(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** True with probability p. */
  bernoulli(p: number): boolean {
    return this.next() < p;
  }

  /** Normal(mean, stddev) by the Box-Muller transform. */
  normal(mean = 0, stddev = 1): number {
    let z = this.spareNormal;
    if (Number.isNaN(z)) {
      const u1 = 1 - this.next(); // in (0, 1]: log(0) must not happen
      const u2 = this.next();
      const r = Math.sqrt(-2 * Math.log(u1));
      z = r * Math.cos(2 * Math.PI * u2);
      this.spareNormal = r * Math.sin(2 * Math.PI * u2);
    } else {
      this.spareNormal = Number.NaN;
    }
    return mean + stddev * z;
  }

  /** Lognormal with the given median (= e^mu) and sigma of the underlying normal. */
  lognormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }
}

/**
 * Many xoshiro128** streams in one typed array, each drawing exactly what a
 * `Random` of the same seed draws with `next`. For a simulator that draws
 * from one of 100,000 streams at a time (a resolver's clients): a `Random`
 * per stream is an object somewhere in the heap, a cache miss per draw;
 * here a stream is 16 contiguous octets.
 */
export class RandomStreams {
  private s = new Int32Array(64);
  private n = 0;

  /** A new stream seeded as `new Random(seed)`; returns its index. */
  add(seed: Seed): number {
    const i = this.n++;
    if (4 * this.n > this.s.length) {
      const s = new Int32Array(this.s.length * 2);
      s.set(this.s);
      this.s = s;
    }
    const a = hashSeed(seed);
    for (let k = 0; k < 4; k++) this.s[4 * i + k] = splitmix32(a, k + 1);
    return i;
  }

  get length(): number {
    return this.n;
  }

  /** Copies stream i's state (4 words) to `out` at `at`. */
  save(i: number, out: Int32Array, at: number): void {
    for (let k = 0; k < 4; k++) out[at + k] = this.s[4 * i + k]!;
  }

  /** Sets stream i's state from `from` at `at` (what `save` wrote). */
  restore(i: number, from: Int32Array, at: number): void {
    for (let k = 0; k < 4; k++) this.s[4 * i + k] = from[at + k]!;
  }

  /** Stream i's next uniform in [0, 1) (as `Random.next`). */
  next(i: number): number {
    return RandomStreams.step(this.s, 4 * i);
  }

  /** The next uniform of the state at `o` in `s` (4 words), which it advances. */
  static step(s: Int32Array, o: number): number {
    const s0 = s[o]!;
    const s1 = s[o + 1]!;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    const s2 = s[o + 2]! ^ s0;
    const s3 = s[o + 3]! ^ s1;
    const n1 = s1 ^ s2;
    s[o] = s0 ^ s3;
    s[o + 1] = n1;
    s[o + 2] = s2 ^ t;
    s[o + 3] = rotl(s3, 11);
    return result / 2 ** 32;
  }
}

/** erfc's polynomial in t (Numerical Recipes' erfcc), highest power first. */
const ERFC = [
  0.17087277, -0.82215223, 1.48851587, -1.13520398, 0.27886807, -0.18628806, 0.09678418, 0.37409196,
  1.00002368, -1.26551223,
];

/** Standard normal CDF, via erfc (relative error < 1.2e-7). */
export function normalCdf(x: number): number {
  const z = Math.abs(x) / Math.SQRT2;
  const t = 1 / (1 + 0.5 * z);
  const erfc = t * Math.exp(-z * z + poly(ERFC, t));
  return x >= 0 ? 1 - erfc / 2 : erfc / 2;
}

/** Standard normal density. */
export function normalPdf(x: number): number {
  return Math.exp(-0.5 * x * x) / Math.sqrt(2 * Math.PI);
}

const A = [
  -39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716,
  2.506628277459239,
];
const B = [
  -54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572,
];
const C = [
  -0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734,
  4.374664141464968, 2.938163982698783,
];
const D = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];

function poly(coeffs: readonly number[], x: number): number {
  return coeffs.reduce((acc, c) => acc * x + c, 0);
}

/** Inverse of the standard normal CDF (Acklam's algorithm, relative error < 1.15e-9). */
export function normalQuantile(p: number): number {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`probability ${p} must be in [0, 1]`);
  if (p === 0) return Number.NEGATIVE_INFINITY;
  if (p === 1) return Number.POSITIVE_INFINITY;
  const low = 0.02425;
  if (p < low) {
    const q = Math.sqrt(-2 * Math.log(p));
    return poly(C, q) / (poly(D, q) * q + 1);
  }
  if (p > 1 - low) {
    const q = Math.sqrt(-2 * Math.log(1 - p));
    return -poly(C, q) / (poly(D, q) * q + 1);
  }
  const q = p - 0.5;
  const r = q * q;
  return (poly(A, r) * q) / (poly(B, r) * r + 1);
}
