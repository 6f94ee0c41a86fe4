import { describe, expect, it } from "vitest";
import { RealClock, sleep, VirtualClock } from "../../core/clock.ts";

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

  it("runAll drains every timer", async () => {
    const clock = new VirtualClock();
    let last = 0;
    for (const ms of [300, 100, 200]) clock.setTimeout(() => (last = clock.now()), ms);
    await clock.runAll();
    expect(last).toBe(300);
    expect(clock.nextAt()).toBeUndefined();
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
