import { describe, expect, it } from "vitest";
import {
  BEGINNING,
  type DeliveryFailure,
  decodePurgeEvent,
  MemoryBus,
  TAIL,
} from "../../core/bus.ts";
import { VirtualClock } from "../../core/clock.ts";
import { LinkDelay } from "../../core/delay.ts";
import type { PurgeEvent } from "../../core/purge.ts";

/** Lets every promise chain that waits on no I/O finish (a macrotask runs only after all microtasks). */
function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * clock.advance(ms), settling after each group of timers, so a chain of async
 * work started by a timer finishes at that timer's virtual time.
 */
async function run(clock: VirtualClock, ms: number): Promise<void> {
  const end = clock.now() + ms;
  await settle();
  for (;;) {
    const at = clock.nextAt();
    if (at === undefined || at > end) break;
    await clock.advance(at - clock.now());
    await settle();
  }
  await clock.advance(end - clock.now());
  await settle();
}

function ev(n: number, extra: Partial<PurgeEvent> = {}): PurgeEvent {
  return {
    changeId: `c${n}`,
    zone: "example.test",
    serial: n,
    keys: ["www.example.test"],
    mode: "invalidate",
    ts: n,
    ...extra,
  };
}

/** A handler that records change ids and the virtual time each arrived. */
function recorder(clock: VirtualClock) {
  const seen: string[] = [];
  const at: number[] = [];
  return {
    seen,
    at,
    handler: async (e: PurgeEvent) => {
      seen.push(e.changeId);
      at.push(clock.now());
    },
  };
}

async function publishN(bus: MemoryBus, from: number, to: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i <= to; i++) ids.push(await bus.publish(ev(i)));
  return ids;
}

const ids = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `c${from + i}`);

describe("MemoryBus", () => {
  it("delivers every event to every subscriber, in order", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock });
    const nodes = Array.from({ length: 5 }, () => recorder(clock));
    for (const [i, n] of nodes.entries()) await bus.subscribe(`edge-${i}`, n.handler);
    const positions = await publishN(bus, 1, 50);
    expect(positions.slice(0, 3)).toEqual(["1", "2", "3"]);
    await run(clock, 0);
    for (const n of nodes) expect(n.seen).toEqual(ids(1, 50));
    await bus.close();
  });

  it("starts at the tail by default, or at the beginning", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock });
    await publishN(bus, 1, 3);
    const late = recorder(clock);
    const all = recorder(clock);
    await bus.subscribe("late", late.handler);
    await bus.subscribe("all", all.handler, { from: BEGINNING });
    await publishN(bus, 4, 4);
    await run(clock, 0);
    expect(late.seen).toEqual(["c4"]);
    expect(all.seen).toEqual(ids(1, 4));
    await bus.close();
  });

  it("a node that resubscribes gets exactly what it missed, with `from` or by its id", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock });
    const a = recorder(clock);
    const sub = await bus.subscribe("edge-a", a.handler);
    await publishN(bus, 1, 5);
    await run(clock, 0);
    const pos = sub.position();
    expect(pos).toBe("5");
    await sub.close();
    await publishN(bus, 6, 10);
    const b = recorder(clock);
    const again = await bus.subscribe("edge-a", b.handler, { from: pos! });
    await run(clock, 0);
    expect(b.seen).toEqual(ids(6, 10));
    await again.close();
    await publishN(bus, 11, 12);
    const c = recorder(clock);
    await bus.subscribe("edge-a", c.handler); // no `from`: the bus remembers edge-a's position
    await run(clock, 0);
    expect(c.seen).toEqual(ids(11, 12));
    await bus.close();
  });

  it("a node that closes before any event still resumes at its start, not at a later tail", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock });
    await (await bus.subscribe("edge-a", async () => {})).close();
    await publishN(bus, 1, 2);
    const a = recorder(clock);
    await bus.subscribe("edge-a", a.handler);
    await run(clock, 0);
    expect(a.seen).toEqual(ids(1, 2));
    await bus.close();
  });

  it("resyncs a node whose position fell off the ring, then continues from the tail", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock, capacity: 5 });
    await publishN(bus, 1, 12);
    const a = recorder(clock);
    const reasons: string[] = [];
    const sub = await bus.subscribe("edge-a", a.handler, {
      from: "3",
      onResync: async (reason) => {
        reasons.push(reason);
      },
    });
    await publishN(bus, 13, 14);
    await run(clock, 0);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/position 3 is no longer on the bus.*last 5 events \(oldest 8\)/);
    expect(a.seen).toEqual(ids(13, 14));
    expect(sub.stats()).toMatchObject({ resyncs: 1, delivered: 2 });
    // Exactly at the edge (7 = oldest - 1) nothing is lost: no resync.
    const b = recorder(clock);
    const edge = await bus.subscribe("edge-b", b.handler, {
      from: "9",
      onResync: async () => expect.unreachable(),
    });
    await run(clock, 0);
    expect(b.seen).toEqual(ids(10, 14));
    expect(edge.stats().resyncs).toBe(0);
    await bus.close();
  });

  it("resyncs a position from the future (the bus was reset)", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock });
    const reasons: string[] = [];
    await bus.subscribe("edge-a", async () => {}, {
      from: "99",
      onResync: async (r) => void reasons.push(r),
    });
    await run(clock, 0);
    expect(reasons[0]).toMatch(/ahead of the bus's last position 0/);
    await bus.close();
  });

  it("reports a resync that no onResync handles, instead of losing it silently", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock, capacity: 2 });
    await publishN(bus, 1, 5);
    const failures: DeliveryFailure[] = [];
    await bus.subscribe("edge-a", async () => {}, {
      from: BEGINNING,
      onError: (f) => failures.push(f),
    });
    await run(clock, 0);
    expect(failures).toHaveLength(1);
    expect(failures[0]!.message).toMatch(/edge-a missed events and has no onResync.*pass onResync/);
    await bus.close();
  });

  it("delays each delivery by the node's link, in order, on the bus's clock", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock });
    const fixed = recorder(clock);
    const jittery = recorder(clock);
    await bus.subscribe("fixed", fixed.handler, {
      link: new LinkDelay({ latency: { kind: "fixed", ms: 50 } }, 1, clock),
    });
    const link = new LinkDelay({ latency: { kind: "uniform", minMs: 0, maxMs: 100 } }, 7, clock);
    const replay = new LinkDelay({ latency: { kind: "uniform", minMs: 0, maxMs: 100 } }, 7, clock);
    await bus.subscribe("jittery", jittery.handler, { link });
    await publishN(bus, 1, 20);
    await run(clock, 49);
    expect(fixed.seen).toEqual([]);
    await run(clock, 1);
    expect(fixed.seen).toEqual(ids(1, 20));
    expect(fixed.at.every((t) => t === 50)).toBe(true);
    await run(clock, 100);
    expect(jittery.seen).toEqual(ids(1, 20));
    // FIFO link: event i arrives at max(its own sampled delay, the previous arrival).
    let expected = 0;
    for (const [i, t] of jittery.at.entries()) {
      const s = replay.sample();
      if (s.dropped) throw new Error("uniform link without loss dropped a message");
      expected = Math.max(expected, s.delayMs);
      expect(t, `event ${i}`).toBeCloseTo(expected, 9);
    }
    await bus.close();
  });

  it("a lossy link loses events (anti-entropy's job) but the position moves on", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock });
    const a = recorder(clock);
    const sub = await bus.subscribe("edge-a", a.handler, {
      link: new LinkDelay({ loss: 0.5 }, 3, clock),
    });
    await publishN(bus, 1, 200);
    await run(clock, 0);
    const { delivered, dropped } = sub.stats();
    expect(delivered + dropped).toBe(200);
    expect(dropped).toBeGreaterThan(70);
    expect(dropped).toBeLessThan(130);
    expect(a.seen).toHaveLength(delivered);
    expect(sub.position()).toBe("200");
    await bus.close();
  });

  it("retries a failing handler with capped exponential backoff and reports every failure", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock });
    const failures: DeliveryFailure[] = [];
    const attempts: number[] = [];
    const sub = await bus.subscribe(
      "edge-a",
      async (e) => {
        attempts.push(clock.now());
        if (attempts.length < 4) throw new Error(`disk full applying ${e.changeId}`);
      },
      { onError: (f) => failures.push(f), retry: { baseMs: 100, maxMs: 300 } },
    );
    await bus.publish(ev(1));
    await run(clock, 10_000);
    expect(attempts).toEqual([0, 100, 300, 600]);
    expect(failures.map((f) => [f.attempt, f.final])).toEqual([
      [1, false],
      [2, false],
      [3, false],
    ]);
    expect(failures[0]!.message).toMatch(
      /edge-a: change c1 .* failed \(attempt 1\/5\), will retry: disk full/,
    );
    expect(sub.stats()).toMatchObject({ delivered: 1, errors: 3, failed: 0 });
    expect(sub.position()).toBe("1");
    await bus.close();
  });

  it("gives up after maxAttempts and asks the node to resync, then goes on", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock });
    const failures: DeliveryFailure[] = [];
    const reasons: string[] = [];
    const ok: string[] = [];
    const sub = await bus.subscribe(
      "edge-a",
      async (e) => {
        if (e.changeId === "c1") throw new Error("bad event");
        ok.push(e.changeId);
      },
      {
        onError: (f) => failures.push(f),
        onResync: async (r) => void reasons.push(r),
        retry: { maxAttempts: 2, baseMs: 10 },
      },
    );
    await publishN(bus, 1, 2);
    await run(clock, 100);
    expect(failures.map((f) => f.final)).toEqual([false, true]);
    expect(reasons).toEqual(["handler for change c1 (zone example.test, serial 1) failed 2 times"]);
    expect(ok).toEqual(["c2"]);
    expect(sub.stats()).toMatchObject({ failed: 1, resyncs: 1, delivered: 1 });
    await bus.close();
  });

  it("close() cancels pending delays; unacked events are delivered on resume", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock });
    const a = recorder(clock);
    const link = new LinkDelay({ latency: { kind: "fixed", ms: 1000 } }, 1, clock);
    const sub = await bus.subscribe("edge-a", a.handler, { link });
    await publishN(bus, 1, 3);
    await run(clock, 10);
    await sub.close();
    expect(clock.pending).toBe(0);
    expect(sub.position()).toBe("0");
    const b = recorder(clock);
    await bus.subscribe("edge-a", b.handler);
    await run(clock, 0);
    expect(a.seen).toEqual([]);
    expect(b.seen).toEqual(ids(1, 3));
    await bus.close();
  });

  it("hands every node the same frozen copy of the event", async () => {
    const clock = new VirtualClock();
    const bus = new MemoryBus({ clock });
    const errors: DeliveryFailure[] = [];
    await bus.subscribe(
      "vandal",
      async (e) => {
        (e.keys as string[]).push("evil");
      },
      { onError: (f) => errors.push(f), retry: { maxAttempts: 1 } },
    );
    const b: PurgeEvent[] = [];
    await bus.subscribe("b", async (e) => void b.push(e));
    const original = ev(1);
    await bus.publish(original);
    original.keys.push("changed-after-publish");
    await run(clock, 0);
    expect(errors[0]!.message).toMatch(/not extensible|read.only|frozen/i);
    expect(b[0]!.keys).toEqual(["www.example.test"]);
    await bus.close();
  });

  it("refuses a second subscription for one node id, a bad position and use after close", async () => {
    const bus = new MemoryBus({ clock: new VirtualClock() });
    await bus.subscribe("edge-a", async () => {});
    await expect(bus.subscribe("edge-a", async () => {})).rejects.toThrow(/already subscribed/);
    await expect(
      bus.subscribe("edge-b", async () => {}, { from: "1700000000000-0" }),
    ).rejects.toThrow(/not a MemoryBus position/);
    await bus.subscribe("edge-c", async () => {}, { from: TAIL });
    await bus.close();
    await expect(bus.publish(ev(1))).rejects.toThrow(/closed/);
  });
});

describe("decodePurgeEvent", () => {
  it("round-trips an event, push RRsets included", () => {
    const e = ev(3, {
      mode: "push",
      rrsets: [{ name: "www.example.test", type: "A", ttl: 60, data: ["192.0.2.1"] }],
    });
    expect(decodePurgeEvent(JSON.stringify(e))).toEqual(e);
  });

  it("names the bad field", () => {
    expect(() => decodePurgeEvent(JSON.stringify({ ...ev(1), mode: "nuke" }))).toThrow(
      /not a purge event: mode/,
    );
    const bad = ev(1, {
      mode: "push",
      rrsets: [{ name: "a.example.test", type: "A", ttl: 60, data: ["not-an-ip"] }],
    });
    expect(() => decodePurgeEvent(JSON.stringify(bad))).toThrow(
      /rrsets\[0\]\.data\[0\]: not a valid A rdata/,
    );
  });
});
