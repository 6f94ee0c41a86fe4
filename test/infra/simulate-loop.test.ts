/**
 * The simulator's loop lets every promise chain of an instant settle before
 * time moves on, with a macrotask (`settle`, the slow path) or a tick
 * (`runInTurn`, the fast path): both must wait out chains of any depth.
 * The engines' timers are slots of the clock: they fire in the order clock
 * timers would, and a cleared one lets go of its callback at once.
 */
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
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

describe("SimLoop runs", () => {
  for (const inTurn of [false, true]) {
    it(`stops after the instant where stop() holds, and rejects with what a timer threw (${inTurn ? "in turn" : "macrotask"})`, async () => {
      const loop = new SimLoop(0, inTurn);
      const seen: number[] = [];
      for (const at of [1, 2, 3]) loop.engineClock.setTimeout(() => seen.push(at), at);
      await loop.runUntil(10, () => seen.length === 2);
      expect(seen).toEqual([1, 2]);
      expect(loop.now()).toBe(2);
      loop.engineClock.setTimeout(() => {
        throw new Error("boom");
      }, 1);
      await expect(loop.runUntil(10)).rejects.toThrow("boom");
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

describe("SimLoop engine timers", () => {
  it("fire by (instant, order set), among each other and among the loop's own timers", async () => {
    const loop = new SimLoop(0, true);
    const seen: string[] = [];
    loop.engineClock.setTimeout(() => seen.push("engine a"), 5);
    loop.at(5, () => seen.push("loop b"));
    loop.engineClock.setTimeout(() => seen.push("engine c"), 5);
    loop.engineClock.setTimeout(() => seen.push("engine d"), 4);
    // Past the first 64 slots: the slots grow, the order holds.
    const want: string[] = [];
    for (let i = 0; i < 200; i++) {
      const at = 10 + ((i * 37) % 50);
      loop.engineClock.setTimeout(() => seen.push(`late ${i}`), at);
    }
    for (let at = 10; at < 60; at++)
      for (let i = 0; i < 200; i++) if (10 + ((i * 37) % 50) === at) want.push(`late ${i}`);
    await loop.runUntil(100);
    expect(seen).toEqual(["engine d", "engine a", "loop b", "engine c", ...want]);
    expect(loop.events).toBe(204);
    expect(loop.clock.pending).toBe(0);
  });

  it("a cleared timer never fires, and clearing an old id again leaves the timer now in its slot", async () => {
    const loop = new SimLoop(0, true);
    const seen: string[] = [];
    const first = loop.engineClock.setTimeout(() => seen.push("first"), 5);
    loop.engineClock.clearTimeout(first);
    const second = loop.engineClock.setTimeout(() => seen.push("second"), 5);
    // The second took the first's slot: the first's id must not reach it.
    loop.engineClock.clearTimeout(first);
    loop.engineClock.clearTimeout(0);
    loop.engineClock.clearTimeout(-3);
    await loop.runUntil(10);
    expect(seen).toEqual(["second"]);
    // Fired: its id clears nothing, not the timer set after it in the same slot.
    const third = loop.engineClock.setTimeout(() => seen.push("third"), 5);
    loop.engineClock.clearTimeout(second);
    await loop.runUntil(20);
    expect(seen).toEqual(["second", "third"]);
    expect(third).not.toBe(second);
  });

  it("lets go of a cleared timer's callback at once, not at its instant", async () => {
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    const loop = new SimLoop(0, true);
    const arm = () => {
      const held = { payload: new Uint8Array(1024) };
      const ref = new WeakRef(held);
      const id = loop.engineClock.setTimeout(() => void held.payload, 60_000);
      return { id, ref };
    };
    const cleared = arm();
    const kept = arm();
    loop.engineClock.clearTimeout(cleared.id);
    // A WeakRef's target is kept to the end of the job that made it.
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    expect(cleared.ref.deref()).toBeUndefined();
    expect(kept.ref.deref()).toBeDefined();
    loop.engineClock.clearTimeout(kept.id);
  });
});
