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
});
