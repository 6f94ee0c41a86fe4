/**
 * RFC 1982 serial number arithmetic with SERIAL_BITS = 32, as used for the
 * SOA serial (RFC 1035 §3.3.13) and for every change's version.
 */

const MOD = 2 ** 32;
const HALF = 2 ** 31;

export function isSerial(n: number): boolean {
  return Number.isInteger(n) && n >= 0 && n < MOD;
}

/** RFC 1982 §3.1: s + n, with 0 <= n <= 2^31 - 1. */
export function serialAdd(s: number, n: number): number {
  if (!isSerial(s)) throw new RangeError(`serial ${s} is not an unsigned 32-bit integer`);
  if (!Number.isInteger(n) || n < 0 || n > HALF - 1) {
    throw new RangeError(`serial increment ${n} must be in [0, 2^31 - 1] (RFC 1982 §3.1)`);
  }
  return (s + n) % MOD;
}

/**
 * RFC 1982 §3.2 comparison: -1 if a < b, 0 if equal, 1 if a > b, and
 * undefined when the two are exactly 2^31 apart (the comparison is undefined).
 */
export function serialCompare(a: number, b: number): -1 | 0 | 1 | undefined {
  if (a === b) return 0;
  const d = (b - a + MOD) % MOD;
  if (d === HALF) return undefined;
  return d < HALF ? -1 : 1;
}

export function serialLt(a: number, b: number): boolean {
  return serialCompare(a, b) === -1;
}

export function serialGt(a: number, b: number): boolean {
  return serialCompare(a, b) === 1;
}

/** a >= b in serial arithmetic (false when undefined). */
export function serialGte(a: number, b: number): boolean {
  const c = serialCompare(a, b);
  return c === 0 || c === 1;
}

/** The larger of two serials; `a` when they are incomparable. */
export function serialMax(a: number, b: number): number {
  return serialLt(a, b) ? b : a;
}

/**
 * The next serial for a zone: a date-based serial (YYYYMMDDnn) is kept
 * monotonic by RFC 1982 increment; any serial simply increments by one.
 */
export function serialNext(s: number): number {
  return serialAdd(s, 1);
}

/** The larger of optional serials; undefined when none is given. */
export function maxSerial(...serials: (number | undefined)[]): number | undefined {
  let out: number | undefined;
  for (const s of serials) {
    if (s !== undefined && (out === undefined || serialLt(out, s))) out = s;
  }
  return out;
}

/** True when a response's serial is known to be older than the required one. */
export function olderThan(serial: number | undefined, required: number | undefined): boolean {
  return serial !== undefined && required !== undefined && serialLt(serial, required);
}
