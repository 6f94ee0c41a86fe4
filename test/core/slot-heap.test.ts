import { describe, expect, it } from "vitest";
import { Random } from "../../core/random.ts";
import { SlotHeap } from "../../core/slot-heap.ts";

describe("SlotHeap", () => {
  it("yields the held slots by (key, tie) through puts, moves, removes and growth", () => {
    const rnd = new Random(7);
    const heap = new SlotHeap(8);
    // The model: what each slot holds, if anything.
    const held = new Map<number, [number, number]>();
    for (let step = 0; step < 5_000; step++) {
      const op = rnd.next();
      if (op < 0.02 && heap.capacity < 512) heap.grow(heap.capacity * 2);
      const slot = rnd.nextUint32() % heap.capacity;
      // Whole keys from a small range: ties are common and the tie decides.
      if (op < 0.6) {
        const key = rnd.nextUint32() % 50;
        const tie = rnd.nextUint32() % 4;
        heap.put(slot, key, tie);
        held.set(slot, [key, tie]);
      } else if (op < 0.85) {
        heap.remove(slot);
        held.delete(slot);
      } else {
        // The earliest is the model's least (key, tie, slot); several may tie on both.
        const top = heap.top();
        if (held.size === 0) expect(top).toBe(-1);
        else {
          const least = Math.min(...[...held.values()].map(([k, t]) => k * 10 + t));
          const [k, t] = held.get(top)!;
          expect(k * 10 + t).toBe(least);
        }
      }
      expect(heap.length).toBe(held.size);
    }
    // Drained in order.
    const out: number[] = [];
    for (let s = heap.top(); s >= 0; s = heap.top()) {
      out.push(heap.keyOf(s) * 10 + heap.tieOf(s));
      heap.remove(s);
    }
    expect(out).toEqual([...held.values()].map(([k, t]) => k * 10 + t).sort((a, b) => a - b));
  });

  it("drops every slot at once, each free to be held again", () => {
    const heap = new SlotHeap(32);
    for (let slot = 0; slot < 32; slot++) heap.put(slot, 32 - slot, slot);
    heap.clear();
    expect(heap.length).toBe(0);
    expect(heap.top()).toBe(-1);
    // A cleared slot is not held: removing it changes nothing, putting it holds it anew.
    heap.remove(7);
    expect(heap.length).toBe(0);
    for (const [slot, key] of [
      [7, 3],
      [20, 1],
      [0, 2],
    ] as const)
      heap.put(slot, key, 0);
    expect(heap.length).toBe(3);
    const out: number[] = [];
    for (let s = heap.top(); s >= 0; s = heap.top()) {
      out.push(s);
      heap.remove(s);
    }
    expect(out).toEqual([20, 0, 7]);
  });

  it("moves a held slot up on its tie alone, and out from any place", () => {
    const heap = new SlotHeap(64);
    for (let slot = 0; slot < 64; slot++) heap.put(slot, 5, 100 + slot);
    // Each slot in turn moved to the same key with the least tie: it must come first.
    for (let slot = 63; slot >= 0; slot--) {
      heap.put(slot, 5, slot - 1000);
      expect(heap.top()).toBe(slot);
      expect(heap.keyOf(slot)).toBe(5);
      expect(heap.tieOf(slot)).toBe(slot - 1000);
    }
    // Removed from every place, the rest still come out in order.
    for (let slot = 0; slot < 64; slot += 3) heap.remove(slot);
    const out: number[] = [];
    for (let s = heap.top(); s >= 0; s = heap.top()) {
      out.push(heap.tieOf(s));
      heap.remove(s);
    }
    expect(out).toEqual([...out].sort((a, b) => a - b));
    expect(out.length).toBe(64 - 22);
  });

  it("moves the entry that fills a removed place up when its tie is less than that place's parent", () => {
    // Slot i is put at place i (each tie at least its parent's: no sift), all
    // on one key: place 9 sits under place 2 (tie 50), the last place 20 under
    // place 4, with tie 10. Removing slot 9 brings slot 20 there, above 50.
    const ties = Array.from({ length: 21 }, (_, i) => 100 + i);
    for (const [place, tie] of [
      [0, 0],
      [1, 1],
      [2, 50],
      [3, 3],
      [4, 4],
      [9, 60],
      [20, 10],
    ] as const) {
      ties[place] = tie;
    }
    const heap = new SlotHeap(32);
    for (const [slot, tie] of ties.entries()) heap.put(slot, 5, tie);
    heap.remove(9);
    const out: number[] = [];
    for (let s = heap.top(); s >= 0; s = heap.top()) {
      out.push(heap.tieOf(s));
      heap.remove(s);
    }
    expect(out).toEqual(ties.filter((_, i) => i !== 9).sort((a, b) => a - b));
  });
});
