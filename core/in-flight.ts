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
  private readonly map = new Map<string, V | undefined>();

  /** The work in flight for `key`, if any. */
  get(key: string): V | undefined {
    return this.map.get(key);
  }

  set(key: string, work: V): void {
    this.map.set(key, work);
  }

  /** `key`'s work landed (or is dropped): a later `get` finds none. */
  delete(key: string): void {
    if (this.map.size > KEPT) this.map.delete(key);
    else if (this.map.get(key) !== undefined) this.map.set(key, undefined);
  }

  /** The keys with work in flight, and their work. */
  *[Symbol.iterator](): IterableIterator<[string, V]> {
    for (const [key, work] of this.map) if (work !== undefined) yield [key, work];
  }
}
