/**
 * A function of a string computed once per argument, for values that come
 * again on every request (a Cache-Control value, a URL, a Host) but may be
 * chosen by a client: the memo is bounded in entries (past `max` it starts
 * over) and in argument length (a longer argument is computed each time and
 * not kept). An undefined result is not kept either: it is computed again
 * each time (a value the function refuses, such as an unparsable URL, does
 * not take a place in the memo); null is a result like any other.
 */
export function memoized<T>(
  compute: (arg: string) => T,
  max: number,
  maxLength = Number.POSITIVE_INFINITY,
): (arg: string) => T {
  const kept = new Map<string, T>();
  return (arg) => {
    if (arg.length > maxLength) return compute(arg);
    let value = kept.get(arg);
    if (value === undefined) {
      value = compute(arg);
      if (value === undefined) return value;
      if (kept.size >= max) kept.clear();
      kept.set(arg, value);
    }
    return value;
  };
}

/**
 * Values computed from a byte string, the last `kept` of them kept by the
 * string's exact bytes (a copy: a caller's buffer changed in place later is
 * not taken for the one kept), the newest compared first. For inputs that
 * repeat byte for byte, few at a time (the same upstream answer stored by
 * thousands of simulated resolvers, the one name they ask), where decoding
 * costs more than a comparison. A value of undefined is not kept.
 */
export class RecentBytes<T> {
  private readonly keys: Uint8Array[] = [];
  private readonly values: T[] = [];

  constructor(private readonly kept: number) {}

  get(bytes: Uint8Array): T | undefined {
    for (let i = this.keys.length - 1; i >= 0; i--) {
      if (sameBytes(this.keys[i]!, bytes)) return this.values[i];
    }
    return undefined;
  }

  set(bytes: Uint8Array, value: T): void {
    if (value === undefined) return;
    if (this.keys.length === this.kept) {
      this.keys.shift();
      this.values.shift();
    }
    // A copy (a Buffer's `slice` would be a view of the caller's bytes).
    this.keys.push(new Uint8Array(bytes));
    this.values.push(value);
  }

  clear(): void {
    this.keys.length = 0;
    this.values.length = 0;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
