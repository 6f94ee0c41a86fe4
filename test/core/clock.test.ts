import { describe, expect, it } from "vitest";
import { sleep, VirtualClock } from "../../core/clock.ts";

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
