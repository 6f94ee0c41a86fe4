/**
 * A min-heap of slots (0..n-1) by (key, tie), kept in typed arrays: each
 * slot is in it at most once and knows its place, so it is put, moved or
 * removed in O(log n) with no object per entry. The simulator keeps one per
 * kind of per-node instant: the observer's next questions (core/clock.ts
 * `SlotTimers`, tie: the clock's timer id) and the client load's next
 * arrivals (infra/sim/clients.ts, tie: the slot).
 *
 * Four children per node, and each entry's key and tie stored in heap order
 * beside its slot: a sift compares the children of one node in one or two
 * cache lines, where keys kept by slot cost a cache miss per comparison (at
 * 100,000 resolvers the arrays are megabytes, and a slot's key is anywhere
 * in them). Half the levels of a binary heap, too.
 */
export class SlotHeap {
  /** By place in the heap: the key, the tie and the slot of the entry there. */
  private hKey: Float64Array;
  private hTie: Float64Array;
  private hSlot: Int32Array;
  /** Per slot: its place in the heap, -1 while not in it. */
  private pos: Int32Array;
  private size = 0;

  constructor(n: number) {
    this.hKey = new Float64Array(n);
    this.hTie = new Float64Array(n);
    this.hSlot = new Int32Array(n);
    this.pos = new Int32Array(n).fill(-1);
  }

  /** Slots 0..n-1 (n at least the current capacity), those held kept. */
  grow(n: number): void {
    this.hKey = grown(this.hKey, n);
    this.hTie = grown(this.hTie, n);
    this.hSlot = grown(this.hSlot, n);
    const pos = new Int32Array(n).fill(-1);
    pos.set(this.pos);
    this.pos = pos;
  }

  get capacity(): number {
    return this.pos.length;
  }

  get length(): number {
    return this.size;
  }

  /** The earliest slot, -1 when empty. */
  top(): number {
    return this.size > 0 ? this.hSlot[0]! : -1;
  }

  /** A held slot's key. */
  keyOf(slot: number): number {
    return this.hKey[this.pos[slot]!]!;
  }

  /** A held slot's tie. */
  tieOf(slot: number): number {
    return this.hTie[this.pos[slot]!]!;
  }

  /** Puts `slot` at (key, tie), or moves it there if it is in already. */
  put(slot: number, key: number, tie: number): void {
    let i = this.pos[slot]!;
    if (i < 0) {
      i = this.size++;
      this.up(i, slot, key, tie);
      return;
    }
    const k = this.hKey[i]!;
    if (key < k || (key === k && tie < this.hTie[i]!)) this.up(i, slot, key, tie);
    else this.down(i, slot, key, tie);
  }

  /** Drops every slot: O(entries), against O(log n) for each one removed. */
  clear(): void {
    for (let i = 0; i < this.size; i++) this.pos[this.hSlot[i]!] = -1;
    this.size = 0;
  }

  /** Takes `slot` out, if it is in. */
  remove(slot: number): void {
    const i = this.pos[slot]!;
    if (i < 0) return;
    this.pos[slot] = -1;
    const n = --this.size;
    if (i === n) return;
    // The last entry fills the hole, from there up or down.
    const s = this.hSlot[n]!;
    const key = this.hKey[n]!;
    const tie = this.hTie[n]!;
    if (i > 0) {
      const p = (i - 1) >> 2;
      const pk = this.hKey[p]!;
      if (key < pk || (key === pk && tie < this.hTie[p]!)) {
        this.up(i, s, key, tie);
        return;
      }
    }
    this.down(i, s, key, tie);
  }

  /** Places (slot, key, tie) at the hole i or above it. */
  private up(i: number, slot: number, key: number, tie: number): void {
    const hk = this.hKey;
    const ht = this.hTie;
    const hs = this.hSlot;
    while (i > 0) {
      const p = (i - 1) >> 2;
      const pk = hk[p]!;
      if (!(key < pk || (key === pk && tie < ht[p]!))) break;
      this.place(i, hs[p]!, pk, ht[p]!);
      i = p;
    }
    this.place(i, slot, key, tie);
  }

  /** Places (slot, key, tie) at the hole i or below it. */
  private down(i: number, slot: number, key: number, tie: number): void {
    const hk = this.hKey;
    const ht = this.hTie;
    const n = this.size;
    for (;;) {
      const first = 4 * i + 1;
      if (first >= n) break;
      // The least of up to four children.
      let c = first;
      let ck = hk[first]!;
      let ct = ht[first]!;
      const end = Math.min(first + 4, n);
      for (let j = first + 1; j < end; j++) {
        const jk = hk[j]!;
        if (jk < ck || (jk === ck && ht[j]! < ct)) {
          c = j;
          ck = jk;
          ct = ht[j]!;
        }
      }
      if (!(ck < key || (ck === key && ct < tie))) break;
      this.place(i, this.hSlot[c]!, ck, ct);
      i = c;
    }
    this.place(i, slot, key, tie);
  }

  private place(i: number, slot: number, key: number, tie: number): void {
    this.hKey[i] = key;
    this.hTie[i] = tie;
    this.hSlot[i] = slot;
    this.pos[slot] = i;
  }
}

/** A copy of `a` with room for `n` elements (n at least its length), the rest zero. */
export function grown<T extends Float64Array | Int32Array>(a: T, n: number): T {
  const b = new (a.constructor as new (n: number) => T)(n);
  b.set(a);
  return b;
}
