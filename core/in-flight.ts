/**
 * Work in flight by key (an edge's fill, a resolver's upstream request), for
 * the coalescing maps that hold a key or two at a time and see each come and
 * go with every request. V8 shrinks a Map's table when a delete leaves it
 * under half full and grows it again at the next set: such a Map made a new
 * table twice per request, in a call into the runtime (1.3 % of a simulated
 * hour's CPU, bench/results/simulate.md). Up to `KEPT` keys, a key whose
 * work lands stays as an empty entry instead; past that it is deleted, so
 * at most `KEPT` empty entries are ever kept.
 */
const KEPT = 8;

export class InFlight<V> {
  /**
   * One key and its work (undefined: none in flight) kept in fields, never
   * also in the map: a cache sees one key at a time far more often than two
   * (a simulated resolver asks one name, an edge fills one key), and the
   * fields are read with the object, where the map's table was two more
   * dependent loads per request (its get and set were 2.4 % of a simulator's
   * worker at 100,000 resolvers). The map is made for a second key at once.
   */
  private key: string | undefined = undefined;
  private work: V | undefined = undefined;
  private map: Map<string, V | undefined> | undefined = undefined;

  /** The work in flight for `key`, if any. */
  get(key: string): V | undefined {
    if (key === this.key) return this.work;
    return this.map?.get(key);
  }

  set(key: string, work: V): void {
    if (key === this.key) {
      this.work = work;
      return;
    }
    const map = this.map;
    if (map?.has(key)) {
      map.set(key, work);
      return;
    }
    // The fields are free once their key's work has landed.
    if (this.work === undefined) {
      this.key = key;
      this.work = work;
      return;
    }
    this.map ??= new Map();
    this.map.set(key, work);
  }

  /** `key`'s work landed (or is dropped): a later `get` finds none. */
  delete(key: string): void {
    if (key === this.key) {
      this.work = undefined;
      return;
    }
    const map = this.map;
    if (map === undefined) return;
    if (map.size > KEPT) map.delete(key);
    else if (map.get(key) !== undefined) map.set(key, undefined);
  }

  /** The keys with work in flight, and their work. */
  *[Symbol.iterator](): IterableIterator<[string, V]> {
    if (this.key !== undefined && this.work !== undefined) yield [this.key, this.work];
    if (this.map === undefined) return;
    for (const [key, work] of this.map) if (work !== undefined) yield [key, work];
  }
}
