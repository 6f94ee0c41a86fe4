import { describe, expect, it } from "vitest";
import { RealClock, sleep, VirtualClock } from "../../core/clock.ts";
import { Random } from "../../core/random.ts";

describe("VirtualClock", () => {
  it("fires timers in deadline order, equal deadlines in creation order", async () => {
    const clock = new VirtualClock(1000);
    const fired: string[] = [];
    clock.setTimeout(() => fired.push(`b@${clock.now()}`), 20);
    clock.setTimeout(() => fired.push(`a@${clock.now()}`), 10);
    clock.setTimeout(() => fired.push(`c@${clock.now()}`), 20);
    await clock.advance(15);
    expect(fired).toEqual(["a@1010"]);
    expect(clock.now()).toBe(1015);
    await clock.advance(100);
    expect(fired).toEqual(["a@1010", "b@1020", "c@1020"]);
    expect(clock.now()).toBe(1115);
  });

  it("does not fire cleared timers and counts pending ones", async () => {
    const clock = new VirtualClock();
    let n = 0;
    const id = clock.setTimeout(() => n++, 5);
    clock.setTimeout(() => n++, 6);
    expect(clock.pending).toBe(2);
    clock.clearTimeout(id);
    expect(clock.pending).toBe(1);
    await clock.advance(10);
    expect(n).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it("runs async chains at the virtual time they belong to", async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    const chain = (async () => {
      await sleep(clock, 100);
      seen.push(clock.now());
      await sleep(clock, 50);
      seen.push(clock.now());
    })();
    await clock.advance(1000);
    await chain;
    expect(seen).toEqual([100, 150]);
  });

  it("timers scheduled by timers fire within the same advance", async () => {
    const clock = new VirtualClock();
    const seen: number[] = [];
    clock.setTimeout(() => {
      seen.push(clock.now());
      clock.setTimeout(() => seen.push(clock.now()), 10);
    }, 10);
    clock.advanceSync(25);
    expect(seen).toEqual([10, 20]);
  });

  it("advanceSyncTo lands on the instant itself, where now + (end - now) misses it", () => {
    // From 8.300138541349042, a step of 13480.825182453415 - now lands a bit short.
    const from = 8.300138541349042;
    const end = 13480.825182453415;
    expect(from + (end - from)).not.toBe(end);
    const stepped = new VirtualClock(from);
    stepped.advanceSync(end - from);
    expect(stepped.now()).not.toBe(end);
    const c = new VirtualClock(from);
    const fired: number[] = [];
    c.setTimeout(() => fired.push(c.now()), 5_000);
    c.advanceSyncTo(end);
    expect(fired).toEqual([from + 5_000]);
    expect(c.now()).toBe(end);
  });

  it("runAll drains every timer", async () => {
    const clock = new VirtualClock();
    let last = 0;
    for (const ms of [300, 100, 200]) clock.setTimeout(() => (last = clock.now()), ms);
    await clock.runAll();
    expect(last).toBe(300);
    expect(clock.nextAt()).toBeUndefined();
  });
  it("fires thousands of timers by (instant, creation order), ties and clears among them", () => {
    // Many more timers than the heap's first allocation (16), with whole-millisecond
    // instants so ties are common; the expected order is a plain sort.
    const clock = new VirtualClock(0);
    const rnd = new Random(7);
    const fired: number[] = [];
    const made: { seq: number; at: number; id: number }[] = [];
    const cleared = new Set<number>();
    for (let seq = 0; seq < 5000; seq++) {
      const at = rnd.nextUint32() % 300;
      made.push({ seq, at, id: clock.setTimeout(() => fired.push(seq), at) });
      if (rnd.next() < 0.2) {
        const victim = made[rnd.nextUint32() % made.length]!;
        clock.clearTimeout(victim.id);
        cleared.add(victim.seq);
      }
    }
    // Half the time passes, then more timers are set among those left.
    clock.advanceSync(150);
    for (let seq = 5000; seq < 7000; seq++) {
      const at = 150 + (rnd.nextUint32() % 300);
      made.push({ seq, at, id: clock.setTimeout(() => fired.push(seq), at - 150) });
    }
    clock.advanceSync(1000);
    const expected = made
      .filter((t) => !cleared.has(t.seq))
      .sort((a, b) => a.at - b.at || a.seq - b.seq)
      .map((t) => t.seq);
    expect(fired).toEqual(expected);
    expect(clock.pending).toBe(0);
    expect(clock.nextAt()).toBeUndefined();
  });
});

describe("SlotTimers", () => {
  it("fire among the clock's timers by (instant, creation order), moved and dropped in place", () => {
    const clock = new VirtualClock(0);
    const fired: string[] = [];
    const slots = clock.slots(3, (s) => fired.push(`s${s}@${clock.now()}`));
    clock.setTimeout(() => fired.push(`t1@${clock.now()}`), 10);
    slots.set(0, 10); // same instant, made after t1: fires after it
    clock.setTimeout(() => fired.push(`t2@${clock.now()}`), 10);
    slots.set(1, 5);
    slots.set(2, 7);
    slots.set(1, 30); // moved: fires once, at its new instant
    slots.clear(2); // dropped: never fires
    expect(clock.pending).toBe(4);
    expect(clock.nextAt()).toBe(10);
    clock.advanceSync(100);
    expect(fired).toEqual(["t1@10", "s0@10", "t2@10", "s1@30"]);
    expect(clock.pending).toBe(0);
    expect(clock.nextAt()).toBeUndefined();
  });

  it("keep the order setTimeout would under random sets, moves and clears", async () => {
    // The same schedule twice: as clock timers (cleared and set again) and as slots.
    const run = async (useSlots: boolean): Promise<string[]> => {
      const clock = new VirtualClock(0);
      const rnd = new Random(42);
      const fired: string[] = [];
      const n = 50;
      const ids = new Array<number | undefined>(n).fill(undefined);
      const slots = clock.slots(n, (s) => fired.push(`${s}@${clock.now()}`));
      const set = (s: number, ms: number) => {
        if (useSlots) return slots.set(s, ms);
        if (ids[s] !== undefined) clock.clearTimeout(ids[s]);
        ids[s] = clock.setTimeout(() => {
          ids[s] = undefined;
          fired.push(`${s}@${clock.now()}`);
        }, ms);
      };
      const clear = (s: number) => {
        if (useSlots) return slots.clear(s);
        if (ids[s] !== undefined) clock.clearTimeout(ids[s]);
        ids[s] = undefined;
      };
      for (let step = 0; step < 2000; step++) {
        const s = rnd.nextUint32() % n;
        const op = rnd.next();
        // Whole milliseconds, so instants tie often and the creation order decides.
        if (op < 0.6) set(s, rnd.nextUint32() % 20);
        else if (op < 0.8) clear(s);
        else await clock.advance(rnd.nextUint32() % 5);
      }
      clock.advanceSync(1000);
      return fired;
    };
    const slotted = await run(true);
    expect(slotted.length).toBeGreaterThan(200);
    expect(slotted).toEqual(await run(false));
  });
});

describe("RealClock", () => {
  it("never fires a timer before its delay, a fractional one included", async () => {
    // Node keeps a timer's start in whole milliseconds and compares whole
    // milliseconds, so a bare setTimeout(2.95) set late in a millisecond
    // fires up to ~1 ms early.
    const clock = new RealClock({ keepAlive: true });
    const early: number[] = [];
    for (let i = 0; i < 60; i++) {
      // Set at a different point of the millisecond each time.
      const spin = performance.now() + (i % 10) / 10;
      while (performance.now() < spin) {}
      const set = performance.now();
      const fired = await new Promise<number>((r) =>
        clock.setTimeout(() => r(performance.now()), 2.95),
      );
      if (fired - set < 2.95) early.push(fired - set);
    }
    expect(early).toEqual([]);
  });

  it("cancels a timer that was armed again", async () => {
    const clock = new RealClock({ keepAlive: true });
    await new Promise((r) => setImmediate(r));
    const start = performance.now();
    while (performance.now() - start < 20) {}
    let fired = false;
    const id = clock.setTimeout(() => {
      fired = true;
    }, 15);
    clock.clearTimeout(id);
    // A timer due after it has fired (and a RealClock timer never fires early):
    // the cancelled one's moment has passed.
    await new Promise<void>((r) => clock.setTimeout(r, 20));
    expect(fired).toBe(false);
  });
});
