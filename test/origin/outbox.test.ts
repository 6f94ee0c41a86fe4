import { describe, expect, it } from "vitest";
import type { PurgeBus } from "../../core/bus.ts";
import { VirtualClock } from "../../core/clock.ts";
import type { PurgeEvent } from "../../core/purge.ts";
import { Outbox } from "../../origin/fabric-outbox.ts";

function event(serial: number): PurgeEvent {
  return {
    changeId: `c${serial}`,
    zone: "example.test",
    serial,
    keys: ["www.example.test"],
    mode: "invalidate",
    ts: 0,
  };
}

/** A bus that refuses publishes while `down` is true. */
function flakyBus() {
  const published: number[] = [];
  const bus = {
    down: true,
    publish: async (e: PurgeEvent) => {
      if (bus.down) throw new Error("connection refused");
      published.push(e.serial);
      return String(published.length);
    },
    subscribe: async () => {
      throw new Error("not used");
    },
    close: async () => {},
  };
  return { bus, published };
}

describe("Outbox", () => {
  it("keeps events through a bus outage and publishes them in commit order", async () => {
    const clock = new VirtualClock();
    const { bus, published } = flakyBus();
    const log: string[] = [];
    const outbox = new Outbox(bus as unknown as PurgeBus, clock, (m) => log.push(m));
    for (let s = 1; s <= 3; s++) outbox.push(event(s));
    await clock.advance(1_000);
    expect(published).toEqual([]);
    expect(outbox.stats().queued).toBe(3);
    expect(log[0]).toMatch(/publishing c1 failed \(connection refused\); retrying/);
    bus.down = false;
    outbox.push(event(4));
    await clock.advance(5_000);
    expect(published).toEqual([1, 2, 3, 4]);
    expect(outbox.stats()).toEqual({ queued: 0, published: 4, dropped: 0 });
  });

  it("backs off exponentially up to its cap", async () => {
    const clock = new VirtualClock();
    const { bus } = flakyBus();
    const log: string[] = [];
    new Outbox(bus as unknown as PurgeBus, clock, (m) => log.push(m), {
      capacity: 10,
      maxBackoffMs: 400,
    }).push(event(1));
    await clock.advance(2_000);
    const waits = log.map((m) => Number(/retrying in (\d+) ms/.exec(m)?.[1]));
    expect(waits.slice(0, 6)).toEqual([50, 100, 200, 400, 400, 400]);
  });

  it("drops the oldest events past its capacity", async () => {
    const clock = new VirtualClock();
    const { bus, published } = flakyBus();
    const outbox = new Outbox(bus as unknown as PurgeBus, clock, () => {}, { capacity: 2 });
    for (let s = 1; s <= 4; s++) outbox.push(event(s));
    bus.down = false;
    await clock.advance(5_000);
    expect(published).toEqual([3, 4]);
    expect(outbox.stats().dropped).toBe(2);
  });
});
