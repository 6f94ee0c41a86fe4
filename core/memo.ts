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
