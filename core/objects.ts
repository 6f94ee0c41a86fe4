/**
 * `{ ...base, ...fields }` without the slow path V8 11 (Node 20) takes for
 * it: an object made by a spread that then gains a property its source did
 * not have (`{ ...status, stored: true }`, or two spreads) is given a
 * hidden class built for it and then migrated (`Factory::NewMap`,
 * `JSObject::MigrateToMap`): ~1-2 us, where `Object.assign` onto a fresh
 * literal follows the shared transitions in ~0.04 us (Node 24's V8 takes
 * the fast path for both). An edge's revalidation made four such objects:
 * bench/sim-revalidate.ts, 24.5-28.6 -> 18.8-21.9 us per request through
 * an edge and its regional (bench/results/simulate.md); the origin's
 * resolution, several spreads first, ~8 us (bench/origin-resolve.ts). A
 * spread that only overrides properties the source has, or that comes
 * after the literal's own properties (`{ key, ...base, more }`), is fast
 * and needs none of this.
 *
 * For objects of our own making: `Object.assign` sets rather than defines,
 * so a `__proto__` key parsed from input would set the result's prototype.
 */
export function extend<T extends object, U extends object>(
  base: T,
  fields: U,
): Omit<T, keyof U> & U {
  return Object.assign({}, base, fields);
}
