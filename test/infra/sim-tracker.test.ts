import { describe, expect, it } from "vitest";
import { Tracker } from "../../infra/sim/tracker.ts";

describe("Tracker", () => {
  it("counts n answers at once as n answers one by one", () => {
    let now = 0;
    const one = new Tracker(3, () => now);
    const bulk = new Tracker(3, () => now);
    const answers: [number, number | undefined, number][] = [
      [0, 4, 3], // before the change: counted, not stale
      [1, 5, 2],
      [0, 5, 4], // old once the change (serial 6) begins
      [1, 6, 5], // fresh: its first time
      [2, undefined, 2], // no version (an error answer)
      [1, 6, 3],
      [0, 7, 1],
    ];
    for (const [k, [i, v, n]] of answers.entries()) {
      if (k === 2) {
        one.begin(6);
        bulk.begin(6);
      }
      now += 10;
      for (let j = 0; j < n; j++) one.served(i, v);
      bulk.servedTimes(i, v, n);
    }
    expect(bulk.answers).toBe(one.answers);
    expect(bulk.answers).toBe(20);
    expect([...bulk.stale]).toEqual([...one.stale]);
    expect([...bulk.stale]).toEqual([4, 0, 0]);
    expect([...bulk.firstNew]).toEqual([...one.firstNew]);
    expect(bulk.pending).toBe(one.pending);
    expect(bulk.isFresh(1)).toBe(true);
  });
});
