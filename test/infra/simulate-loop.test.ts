/**
 * The simulator's loop lets every promise chain of an instant settle before
 * time moves on, with a macrotask (`settle`, the slow path) or a tick
 * (`settleInTurn`, the fast path): both must wait out chains of any depth.
 */
import { describe, expect, it } from "vitest";
import { SimLoop } from "../../infra/sim/loop.ts";

/** A chain of `depth` promise turns, then `done`. */
async function chain(depth: number, done: () => void): Promise<void> {
  for (let i = 0; i < depth; i++) await Promise.resolve();
  done();
}

describe("SimLoop settling", () => {
  for (const inTurn of [false, true]) {
    it(`waits for every chain of an instant before the next (${inTurn ? "in turn" : "macrotask"})`, async () => {
      const loop = new SimLoop(0, inTurn);
      const seen: string[] = [];
      // Two engine timers at 10 ms start chains of different depths, one a
      // chain of chains; the timer at 11 ms must see all of them finished.
      loop.engineClock.setTimeout(() => {
        void chain(2_000, () => seen.push("deep"));
        void chain(3, () => void chain(500, () => seen.push("nested")));
      }, 10);
      loop.engineClock.setTimeout(() => seen.push(`next at ${loop.now()}`), 11);
      await loop.runUntil(20);
      expect(seen).toEqual(["nested", "deep", "next at 11"]);
    });
  }
});

describe("SimLoop instants", () => {
  it("lands on each timer's instant and on the end itself, whatever the instant before", async () => {
    // From 8.300138541349042, now + (end - now) is a bit short of 13480.825182453415:
    // shards that reach one window's end from different last events must agree on it.
    const from = 8.300138541349042;
    const end = 13480.825182453415;
    const loop = new SimLoop(0, true);
    const seen: number[] = [];
    loop.engineClock.setTimeout(() => seen.push(loop.now()), from);
    await loop.runUntil(from);
    loop.engineClock.setTimeout(() => seen.push(loop.now()), end - from);
    await loop.runUntil(end);
    expect(seen).toEqual([from, from + (end - from)]);
    const loop2 = new SimLoop(0, true);
    loop2.engineClock.setTimeout(() => {}, from);
    await loop2.runUntil(from);
    await loop2.runUntil(end);
    expect(loop2.now()).toBe(end);
  });
});
