/**
 * A min-heap of slots (0..n-1) by (key, tie), kept in typed arrays: each
 * slot is in it at most once and knows its place, so it is put, moved or
 * removed in O(log n) with no object per entry. The simulator keeps one per
 * kind of per-node instant: the observer's next questions (core/clock.ts
 * `SlotTimers`, tie: the clock's timer id) and the client load's next
 * arrivals (infra/sim/clients.ts, tie: the slot).
 */
export class SlotHeap {
  private key: Float64Array;
  private tie: Float64Array;
  /** Per slot: its place in `heap`, -1 while not in it. */
  private pos: Int32Array;
  private heap: Int32Array;
  private size = 0;

  constructor(n: number) {
    this.key = new Float64Array(n);
    this.tie = new Float64Array(n);
    this.pos = new Int32Array(n).fill(-1);
    this.heap = new Int32Array(n);
  }

  /** Slots 0..n-1 (n at least the current capacity), those held kept. */
  grow(n: number): void {
    const key = new Float64Array(n);
    key.set(this.key);
    this.key = key;
    const tie = new Float64Array(n);
    tie.set(this.tie);
    this.tie = tie;
    const pos = new Int32Array(n).fill(-1);
    pos.set(this.pos);
    this.pos = pos;
    const heap = new Int32Array(n);
    heap.set(this.heap);
    this.heap = heap;
  }

  get capacity(): number {
    return this.pos.length;
  }

  get length(): number {
    return this.size;
  }

  /** The earliest slot, -1 when empty. */
  top(): number {
    return this.size > 0 ? this.heap[0]! : -1;
  }

  keyOf(slot: number): number {
    return this.key[slot]!;
  }

  tieOf(slot: number): number {
    return this.tie[slot]!;
  }

  /** Puts `slot` at (key, tie), or moves it there if it is in already. */
  put(slot: number, key: number, tie: number): void {
    this.key[slot] = key;
    this.tie[slot] = tie;
    let i = this.pos[slot]!;
    if (i < 0) {
      i = this.size++;
      this.heap[i] = slot;
    }
    this.down(this.up(i, slot));
  }

  /** Takes `slot` out, if it is in. */
  remove(slot: number): void {
    const i = this.pos[slot]!;
    if (i < 0) return;
    this.pos[slot] = -1;
    const last = this.heap[--this.size]!;
    if (i === this.size) return;
    this.down(this.up(i, last));
  }

  private before(a: number, b: number): boolean {
    const ka = this.key[a]!;
    const kb = this.key[b]!;
    return ka < kb || (ka === kb && this.tie[a]! < this.tie[b]!);
  }

  /** Places `slot` at i or above; returns where it went. */
  private up(i: number, slot: number): number {
    const h = this.heap;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.before(slot, h[p]!)) break;
      h[i] = h[p]!;
      this.pos[h[i]!] = i;
      i = p;
    }
    h[i] = slot;
    this.pos[slot] = i;
    return i;
  }

  /** Moves the slot at i down to its place. */
  private down(i: number): void {
    const h = this.heap;
    const n = this.size;
    const slot = h[i]!;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      if (c + 1 < n && this.before(h[c + 1]!, h[c]!)) c++;
      if (!this.before(h[c]!, slot)) break;
      h[i] = h[c]!;
      this.pos[h[i]!] = i;
      i = c;
    }
    h[i] = slot;
    this.pos[slot] = i;
  }
}
