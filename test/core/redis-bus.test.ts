import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BEGINNING, type PurgeHandler } from "../../core/bus.ts";
import { RealClock } from "../../core/clock.ts";
import { LinkDelay } from "../../core/delay.ts";
import type { PurgeEvent } from "../../core/purge.ts";
import {
  compareStreamIds,
  lostSince,
  parseStreamId,
  RedisBus,
  type RedisBusOptions,
  type StreamInfo,
} from "../../core/redis-bus.ts";
import { type RedisServer, startRedis } from "../support/redis.ts";
import { waitFor as waitUntil } from "../support/wait.ts";

function ev(n: number): PurgeEvent {
  return {
    changeId: `c${n}`,
    zone: "example.test",
    serial: n,
    keys: ["www.example.test"],
    mode: "invalidate",
    ts: Date.now(),
  };
}
const ids = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `c${from + i}`);

function recorder() {
  const seen: string[] = [];
  const handler: PurgeHandler = async (e) => {
    seen.push(e.changeId);
  };
  return { seen, handler };
}

const waitFor = (what: string, ok: () => boolean, timeoutMs = 10_000) =>
  waitUntil(what, ok, timeoutMs, 10);

describe("stream ids and trim detection (no Redis)", () => {
  it("normalises and orders ids as 64-bit numbers", () => {
    expect(parseStreamId("0")).toBe("0-0");
    expect(parseStreamId("1700000000000")).toBe("1700000000000-0");
    expect(() => parseStreamId("12")).not.toThrow();
    expect(() => parseStreamId("abc")).toThrow(/not a Redis stream id/);
    expect(compareStreamIds("1-2", "1-10")).toBe(-1);
    expect(compareStreamIds("9007199254740993-0", "9007199254740992-5")).toBe(1);
    expect(compareStreamIds("5-0", "5")).toBe(0);
  });

  const info = (over: Partial<StreamInfo>): StreamInfo => ({
    length: 5,
    lastGeneratedId: "100-0",
    maxDeletedEntryId: "0-0",
    entriesAdded: 5,
    firstEntryId: "96-0",
    ...over,
  });

  it("finds no loss when nothing was removed, or the position is still in the stream", () => {
    expect(lostSince("0-0", info({}))).toBeUndefined();
    expect(lostSince("0-0", undefined)).toBeUndefined();
    expect(lostSince("97-0", info({ entriesAdded: 50 }))).toBeUndefined();
    expect(lostSince("96-0", info({ entriesAdded: 50 }))).toBeUndefined();
    expect(lostSince("100-0", info({ entriesAdded: 50 }))).toBeUndefined();
  });

  it("reports trimmed, deleted, reset and vanished positions", () => {
    expect(lostSince("95-0", info({ entriesAdded: 50 }))).toMatch(
      /95-0 was trimmed: the stream's oldest entry is 96-0 \(45 entries/,
    );
    expect(lostSince("0-0", info({ entriesAdded: 6 }))).toMatch(/trimmed/);
    expect(
      lostSince("50-0", info({ length: 0, firstEntryId: undefined, entriesAdded: 9 })),
    ).toMatch(/all 9 entries/);
    expect(
      lostSince("100-0", info({ length: 0, firstEntryId: undefined, entriesAdded: 9 })),
    ).toBeUndefined();
    expect(lostSince("97-0", info({ maxDeletedEntryId: "98-0", entriesAdded: 6 }))).toMatch(
      /deleted \(up to 98-0\)/,
    );
    expect(lostSince("101-0", info({}))).toMatch(
      /ahead of the stream's last id 100-0: the stream was reset/,
    );
    expect(lostSince("5-0", undefined)).toMatch(/does not exist/);
  });
});

describe("RedisBus against a real redis-server", () => {
  let server: RedisServer;
  const buses: RedisBus[] = [];
  const logs: string[] = [];
  const open = (stream: string, extra: Partial<RedisBusOptions> = {}) => {
    const bus = new RedisBus({
      url: server.url,
      stream,
      positionsKey: `${stream}:positions`,
      blockMs: 1000,
      log: (m) => logs.push(m),
      ...extra,
    });
    buses.push(bus);
    return bus;
  };

  beforeAll(async () => {
    server = await startRedis({ appendonly: true });
  });
  afterAll(async () => {
    await Promise.all(buses.map((b) => b.close().catch(() => {})));
    await server?.stop();
  });

  it("delivers every event, in order, to each of N subscribers; a new one starts at the tail", async () => {
    const bus = open("order");
    await bus.publish(ev(0));
    const nodes = Array.from({ length: 5 }, recorder);
    for (const [i, n] of nodes.entries()) await bus.subscribe(`edge-${i}`, n.handler);
    const positions: string[] = [];
    for (let i = 1; i <= 100; i++) positions.push(await bus.publish(ev(i)));
    expect([...positions].sort(compareStreamIds)).toEqual(positions);
    await waitFor("every node to see 100 events", () => nodes.every((n) => n.seen.length >= 100));
    for (const n of nodes) expect(n.seen).toEqual(ids(1, 100));
    const all = recorder();
    await bus.subscribe("from-beginning", all.handler, { from: BEGINNING });
    await waitFor("a replay from the beginning", () => all.seen.length >= 101);
    expect(all.seen).toEqual(ids(0, 100));
  });

  it("a node that resubscribes gets exactly what it missed, with `from` or from its stored position", async () => {
    const bus = open("resume");
    const a = recorder();
    const sub = await bus.subscribe("edge-a", a.handler);
    for (let i = 1; i <= 5; i++) await bus.publish(ev(i));
    await waitFor("5 events", () => a.seen.length >= 5);
    await sub.close();
    const pos = sub.position()!;
    for (let i = 6; i <= 15; i++) await bus.publish(ev(i));
    const b = recorder();
    const again = await bus.subscribe("edge-a", b.handler, {
      from: pos,
      onResync: async () => expect.unreachable(),
    });
    await waitFor("the 10 missed events", () => b.seen.length >= 10);
    await again.close();
    expect(b.seen).toEqual(ids(6, 15));
    for (let i = 16; i <= 18; i++) await bus.publish(ev(i));
    // A restarted node: a new bus, no `from`; its position comes from the positions hash.
    const restarted = open("resume");
    const c = recorder();
    await restarted.subscribe("edge-a", c.handler);
    await waitFor("the 3 events since", () => c.seen.length >= 3);
    await new Promise((r) => setTimeout(r, 50));
    expect(c.seen).toEqual(ids(16, 18));
    expect(a.seen).toEqual(ids(1, 5));
  });

  it("loses no acknowledged purge when redis-server is killed (-9) and restarted mid-stream", async () => {
    const bus = open("kill");
    const nodes = Array.from({ length: 3 }, recorder);
    for (const [i, n] of nodes.entries()) await bus.subscribe(`edge-${i}`, n.handler);
    const acked: string[] = [];
    let outage: Promise<void> | undefined;
    for (let i = 1; i <= 150; i++) {
      if (i === 50) {
        outage = (async () => {
          await server.kill9();
          await new Promise((r) => setTimeout(r, 200));
          await server.restart();
        })();
      }
      // At least once: a publish that failed is retried (the origin does the same).
      for (;;) {
        try {
          await bus.publish(ev(i));
          acked.push(`c${i}`);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
    await outage;
    await waitFor(
      "every node to have every acknowledged event",
      () => nodes.every((n) => acked.every((id) => n.seen.includes(id))),
      15_000,
    );
    for (const n of nodes) {
      // Order holds; a duplicate (an XADD resent after the reconnect) is allowed: receivers are idempotent.
      const firsts = n.seen.filter((id, i) => n.seen.indexOf(id) === i);
      expect(firsts).toEqual(acked);
    }
    expect(logs.some((m) => /Redis connection error/.test(m))).toBe(true);
    expect(logs.some((m) => /reconnected/.test(m))).toBe(true);
  });

  it("a node whose position was trimmed away is told to resync, then continues from the tail", async () => {
    const bus = open("trim", { maxLen: 5, exactTrim: true });
    const a = recorder();
    const sub = await bus.subscribe("edge-a", a.handler);
    await bus.publish(ev(1));
    await waitFor("the first event", () => a.seen.length >= 1);
    await sub.close();
    for (let i = 2; i <= 20; i++) await bus.publish(ev(i));
    const b = recorder();
    const reasons: string[] = [];
    const again = await bus.subscribe("edge-a", b.handler, {
      onResync: async (reason) => {
        reasons.push(reason);
      },
    });
    await waitFor("a resync", () => reasons.length >= 1);
    expect(reasons[0]).toMatch(/was trimmed: the stream's oldest entry is .* \(15 entries trimmed/);
    for (let i = 21; i <= 23; i++) await bus.publish(ev(i));
    await waitFor("3 events after the resync", () => b.seen.length >= 3);
    expect(b.seen).toEqual(ids(21, 23));
    expect(again.stats()).toMatchObject({ resyncs: 1, delivered: 3 });
  });

  it("a live node that misses entries (a gap in the ordinals) is told to resync", async () => {
    const bus = open("gap");
    const a = recorder();
    const reasons: string[] = [];
    const sub = await bus.subscribe("edge-a", a.handler, {
      onResync: async (r) => void reasons.push(r),
    });
    const first = await bus.publish(ev(1));
    await waitFor("the first event", () => a.seen.length >= 1);
    // Entries 2 and 3 appear atomically and 2 is deleted at once: the reader sees 1, then 3.
    const raw = new Redis(server.url);
    const ms = Number(first.split("-")[0]) + 1;
    const body = (n: number) => ["n", String(n), "event", JSON.stringify(ev(n))];
    await raw
      .multi()
      .xadd("gap", `${ms}-1`, ...body(2))
      .xadd("gap", `${ms}-2`, ...body(3))
      .xdel("gap", `${ms}-1`)
      .exec();
    await raw.quit();
    await waitFor("the resync", () => reasons.length >= 1);
    expect(reasons[0]).toMatch(
      /1 entries after .* were trimmed or deleted before edge-a read them/,
    );
    await bus.publish(ev(4));
    await waitFor("event 4", () => a.seen.includes("c4"));
    expect(a.seen).toEqual(["c1", "c3", "c4"]);
    expect(sub.stats().resyncs).toBe(1);
  });

  it("applies each node's link delay model to its deliveries", async () => {
    const bus = open("delay");
    const clock = new RealClock();
    const arrived: number[] = [];
    const sent: number[] = [];
    await bus.subscribe("slow", async () => void arrived.push(Date.now()), {
      link: new LinkDelay({ latency: { kind: "fixed", ms: 150 } }, 1, clock),
    });
    const lossy = await bus.subscribe("lossy", async () => expect.unreachable(), {
      link: new LinkDelay({ loss: 1 }, 1, clock),
    });
    let last = "";
    for (let i = 1; i <= 3; i++) {
      sent.push(Date.now());
      last = await bus.publish(ev(i));
    }
    await waitFor("3 delayed deliveries", () => arrived.length >= 3);
    for (const [i, t] of arrived.entries()) {
      expect(t - sent[i]!).toBeGreaterThanOrEqual(145);
      expect(t - sent[i]!).toBeLessThan(1500);
    }
    await waitFor("the lossy node to move past every event", () => lossy.position() === last);
    expect(lossy.stats()).toMatchObject({ received: 3, dropped: 3, delivered: 0 });
  });
});
