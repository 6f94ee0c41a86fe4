import { describe, expect, it } from "vitest";
import { MemoryBus } from "../../core/bus.ts";
import { VirtualClock } from "../../core/clock.ts";
import { LinkDelay } from "../../core/delay.ts";
import type { PurgeEvent } from "../../core/purge.ts";
import {
  type AckAnswer,
  AckBatcher,
  type AckItem,
  eventFromFeed,
  type FeedChange,
  type FeedResult,
  NodeSync,
} from "../../core/sync.ts";

/** A change feed over a list of changes, with a compaction point. */
function origin(startSerial = 10) {
  const o = {
    serial: startSerial,
    base: startSerial,
    log: [] as FeedChange[],
    commit(name: string, ts = 0) {
      o.serial++;
      const change: FeedChange = {
        changeId: `c${o.serial}`,
        op: "update",
        serial: o.serial,
        ts,
        changes: [{ name, type: "A", rrset: { name, type: "A", ttl: 60, data: ["192.0.2.1"] } }],
      };
      o.log.push(change);
      return change;
    },
    feed: async (_zone: string, since: number): Promise<FeedResult> =>
      since < o.base
        ? { kind: "gone" }
        : { kind: "changes", serial: o.serial, changes: o.log.filter((c) => c.serial > since) },
  };
  return o;
}

function node(clock: VirtualClock, o: ReturnType<typeof origin>, residualMs = 0) {
  const applied: PurgeEvent[] = [];
  const acks: [string, number, number][] = [];
  const sync = new NodeSync({
    nodeId: "edge-1",
    clock,
    target: { id: "edge-1", applyPurge: (e) => void applied.push(e), residualMs: () => residualMs },
    feed: o.feed,
    zones: async () => [{ zone: "example.test", serial: o.serial }],
    ack: async (zone, serial) => void acks.push([zone, serial, clock.now()]),
    modeOf: () => "invalidate",
    pollIntervalMs: 1_000,
    pollJitter: 0.2,
    seed: 7,
  });
  return { sync, applied, acks };
}

describe("NodeSync", () => {
  it("applies bus events once and acks each", async () => {
    const clock = new VirtualClock();
    const o = origin();
    const { sync, applied, acks } = node(clock, o);
    await sync.start();
    const e = eventFromFeed("example.test", o.commit("www.example.test"), "invalidate");
    await sync.onEvent(e);
    await sync.onEvent(e);
    expect(applied).toHaveLength(1);
    expect(applied[0]).toMatchObject({
      keys: ["www.example.test"],
      serial: 11,
      mode: "invalidate",
    });
    expect(acks).toEqual([["example.test", 11, 0]]);
    expect(sync.stats().duplicates).toBe(1);
    await sync.stop();
  });

  it("anti-entropy applies what the bus lost within one jittered interval", async () => {
    const clock = new VirtualClock();
    const o = origin();
    const { sync, applied, acks } = node(clock, o);
    await sync.start();
    o.commit("a.example.test");
    o.commit("b.example.test");
    await clock.advance(799);
    expect(applied).toHaveLength(0); // jitter 20%: no poll before 800 ms
    await clock.advance(401);
    expect(applied.map((e) => e.keys[0])).toEqual(["a.example.test", "b.example.test"]);
    expect(acks.at(-1)?.[1]).toBe(12);
    // A late bus delivery of an applied change is a duplicate.
    await sync.onEvent(eventFromFeed("example.test", o.log[0]!, "invalidate"));
    expect(applied).toHaveLength(2);
    await sync.stop();
  });

  it("resyncs the zone when the feed was compacted past its position", async () => {
    const clock = new VirtualClock();
    const o = origin();
    const { sync, applied, acks } = node(clock, o);
    await sync.start();
    o.commit("a.example.test");
    o.commit("b.example.test");
    o.base = 12; // changes up to 12 forgotten
    await sync.poll();
    expect(applied).toEqual([
      expect.objectContaining({ keys: ["zone:example.test"], mode: "invalidate", serial: 12 }),
    ]);
    expect(acks).toEqual([["example.test", 12, 0]]);
    expect(sync.appliedSerial("example.test")).toBe(12);
    await sync.stop();
  });

  it("in ttl mode acks only after the residual lifetime of old entries", async () => {
    const clock = new VirtualClock();
    const o = origin();
    const { sync, acks } = node(clock, o, 5_000);
    await sync.start();
    await sync.onEvent(eventFromFeed("example.test", o.commit("www.example.test"), "ttl"));
    expect(acks).toEqual([]);
    await sync.stop();
    await clock.advance(5_000);
    expect(acks).toEqual([["example.test", 11, 5_000]]);
  });

  it("keeps polling after feed errors and counts them", async () => {
    const clock = new VirtualClock();
    const o = origin();
    let fail = true;
    const { sync, applied } = node(clock, {
      ...o,
      feed: async (zone, since) => {
        if (fail) throw new Error("connection refused");
        return o.feed(zone, since);
      },
    });
    await sync.start();
    o.commit("a.example.test");
    await clock.advance(1_200);
    expect(sync.stats().pollErrors).toBe(1);
    fail = false;
    await clock.advance(1_200);
    expect(applied).toHaveLength(1);
    await sync.stop();
  });

  it("push events carry the RRsets, deletions as empty data", () => {
    const change: FeedChange = {
      changeId: "c1",
      op: "update",
      serial: 2,
      ts: 5,
      changes: [
        {
          name: "a.example.test",
          type: "A",
          rrset: { name: "a.example.test", type: "A", ttl: 60, data: ["192.0.2.1"] },
        },
        { name: "b.example.test", type: "TXT", rrset: null },
      ],
    };
    expect(eventFromFeed("example.test", change, "push").rrsets).toEqual([
      { name: "a.example.test", type: "A", ttl: 60, data: ["192.0.2.1"] },
      { name: "b.example.test", type: "TXT", ttl: 0, data: [] },
    ]);
    expect(eventFromFeed("example.test", { ...change, op: "delete" }, "soft").keys).toEqual([
      "zone:example.test",
    ]);
  });

  it("applies explicit purges at a serial it already holds, and acks them by id", async () => {
    const clock = new VirtualClock();
    const o = origin();
    const purgeAcks: string[] = [];
    const applied: PurgeEvent[] = [];
    const sync = new NodeSync({
      nodeId: "edge-1",
      clock,
      target: { id: "edge-1", applyPurge: (e) => void applied.push(e) },
      feed: o.feed,
      zones: async () => [{ zone: "example.test", serial: o.serial }],
      ack: async () => {},
      ackPurge: async (id) => void purgeAcks.push(id),
      modeOf: () => "invalidate",
      pollIntervalMs: 1_000,
      pollJitter: 0,
    });
    await sync.start();
    const purge: PurgeEvent = {
      changeId: "prg1",
      zone: "example.test",
      serial: o.serial,
      keys: ["zone:example.test"],
      mode: "invalidate",
      ts: 0,
      explicit: true,
    };
    await sync.onEvent(purge);
    await sync.onEvent(purge);
    expect(applied).toHaveLength(2);
    expect(purgeAcks).toEqual(["prg1", "prg1"]);
    expect(sync.appliedSerial("example.test")).toBe(10);
    await sync.stop();
  });

  it("a bus event after a lost one first takes the missing change from the feed", async () => {
    const clock = new VirtualClock();
    const o = origin();
    const { sync, applied, acks } = node(clock, o);
    await sync.start();
    o.commit("lost.example.test"); // its event never arrives
    const next = eventFromFeed("example.test", o.commit("next.example.test"), "invalidate");
    await sync.onEvent(next);
    expect(applied.map((e) => [e.keys[0], e.serial])).toEqual([
      ["lost.example.test", 11],
      ["next.example.test", 12],
    ]);
    expect(acks.map((a) => a[1])).toEqual([11, 12]);
    expect(sync.stats()).toMatchObject({ gaps: 1, duplicates: 1 });
    await sync.stop();
  });

  it("with the feed down, a gap purges but neither advances nor acks until a poll fills it", async () => {
    const clock = new VirtualClock();
    const o = origin();
    let down = false;
    const { sync, applied, acks } = node(clock, {
      ...o,
      feed: async (zone, since) => {
        if (down) throw new Error("connection refused");
        return o.feed(zone, since);
      },
    });
    await sync.start();
    o.commit("lost.example.test");
    down = true;
    await sync.onEvent(eventFromFeed("example.test", o.commit("next.example.test"), "invalidate"));
    expect(applied.map((e) => e.keys[0])).toEqual(["next.example.test"]);
    expect(acks).toEqual([]);
    expect(sync.appliedSerial("example.test")).toBe(10);
    down = false;
    await clock.advance(1_200);
    expect(applied.map((e) => e.keys[0])).toEqual([
      "next.example.test",
      "lost.example.test",
      "next.example.test",
    ]);
    expect(acks.at(-1)?.[1]).toBe(12);
    await sync.stop();
  });

  it("a zone deleted and created again may start from a lower serial", async () => {
    const clock = new VirtualClock();
    const o = origin(50);
    const { sync, applied } = node(clock, o);
    await sync.start();
    const recreate: PurgeEvent = {
      changeId: "c-create",
      zone: "example.test",
      serial: 1,
      keys: ["zone:example.test"],
      mode: "invalidate",
      ts: 0,
    };
    await sync.onEvent(recreate);
    expect(sync.appliedSerial("example.test")).toBe(1);
    const change: PurgeEvent = {
      ...recreate,
      changeId: "c2",
      serial: 2,
      keys: ["www.example.test"],
    };
    await sync.onEvent(change);
    expect(applied.map((e) => e.changeId)).toEqual(["c-create", "c2"]);
    await sync.stop();
  });

  it("a change whose delivery a partition dropped is applied when the next one arrives", async () => {
    const clock = new VirtualClock();
    const o = origin();
    const { sync, applied, acks } = node(clock, o);
    await sync.start();
    const bus = new MemoryBus({ clock });
    const link = new LinkDelay({ partitions: [{ startMs: 0, endMs: 1_000 }] }, "p", clock, {
      startMs: 0,
    });
    await bus.subscribe("edge-1", (e) => sync.onEvent(e), { link });
    await bus.publish(eventFromFeed("example.test", o.commit("a.example.test"), "invalidate"));
    await clock.advance(500); // inside the partition, before any poll
    expect(applied).toEqual([]);
    await sync.stop(); // no polling: only the next event can repair
    clock.advanceSync(1_000);
    await bus.publish(eventFromFeed("example.test", o.commit("b.example.test"), "invalidate"));
    await clock.advance(10);
    expect(applied.map((e) => e.keys[0])).toEqual(["a.example.test", "b.example.test"]);
    expect(acks.map((a) => a[1])).toEqual([11, 12]);
    await bus.close();
  });

  it("an event for a zone it has not heard of makes it read the zone list at once", async () => {
    const clock = new VirtualClock();
    let lists = 0;
    let zones = [{ zone: "example.test", serial: 10 }];
    const sync = new NodeSync({
      nodeId: "res-1",
      clock,
      target: { id: "res-1", applyPurge: () => {} },
      feed: async () => ({ kind: "changes", serial: 10, changes: [] }),
      zones: async () => {
        lists++;
        return zones;
      },
      ack: async () => {},
      modeOf: () => "invalidate",
      pollIntervalMs: 60_000,
      pollJitter: 0,
    });
    await sync.start();
    expect(lists).toBe(1);
    zones = [...zones, { zone: "new.test", serial: 1 }];
    await sync.onEvent({
      changeId: "c1",
      zone: "new.test",
      serial: 1,
      keys: ["zone:new.test"],
      mode: "invalidate",
      ts: 0,
    });
    expect(lists).toBe(2);
    expect(sync.appliedSerial("new.test")).toBe(1);
    await sync.onEvent({
      changeId: "c2",
      zone: "example.test",
      serial: 11,
      keys: ["a.example.test"],
      mode: "invalidate",
      ts: 0,
    });
    expect(lists).toBe(2); // a known zone: no extra read
    await sync.stop();
  });

  it("refuses a bus event whose serial the origin's feed has not reached (never applied, never acked)", async () => {
    const clock = new VirtualClock();
    const o = origin();
    const { sync, applied, acks } = node(clock, o);
    await sync.start();
    await sync.onEvent({
      changeId: "chg_forged",
      zone: "example.test",
      serial: 999999,
      keys: ["www.example.test"],
      mode: "push",
      ts: 0,
      rrsets: [{ name: "www.example.test", type: "A", ttl: 3600, data: ["203.0.113.66"] }],
    });
    expect(applied).toEqual([]);
    expect(acks).toEqual([]);
    expect(sync.stats()).toMatchObject({ beyondOrigin: 1, gaps: 1 });
    expect(sync.appliedSerial("example.test")).toBe(10);
    // A real change after it applies as usual.
    await sync.onEvent(eventFromFeed("example.test", o.commit("www.example.test"), "invalidate"));
    expect(acks).toEqual([["example.test", 11, 0]]);
    await sync.stop();
  });

  it("resets a zone it holds above the origin's serial (the origin rolled back), then resyncs", async () => {
    const clock = new VirtualClock();
    let current = 20;
    const resets: string[] = [];
    const applied: PurgeEvent[] = [];
    const acks: [string, number][] = [];
    const sync = new NodeSync({
      nodeId: "edge-1",
      clock,
      target: {
        id: "edge-1",
        applyPurge: (e) => void applied.push(e),
        resetZone: (zone) => void resets.push(zone),
      },
      // Like the origin: a since ahead of the zone's serial is 410 (gone).
      feed: async (_zone, since) =>
        since > current ? { kind: "gone" } : { kind: "changes", serial: current, changes: [] },
      zones: async () => [{ zone: "example.test", serial: current }],
      ack: async (zone, serial) => void acks.push([zone, serial]),
      modeOf: () => "invalidate",
      pollIntervalMs: 1_000,
      pollJitter: 0,
    });
    await sync.start();
    current = 12; // restored from an older backup
    await sync.poll();
    expect(resets).toEqual(["example.test"]);
    expect(applied).toMatchObject([{ keys: ["zone:example.test"], serial: 12 }]);
    expect(acks).toEqual([["example.test", 12]]);
    expect(sync.appliedSerial("example.test")).toBe(12);
    expect(sync.stats().aheadResets).toBe(1);
    await sync.poll(); // in step again: nothing more
    expect(resets).toHaveLength(1);
    await sync.stop();
  });
});

describe("AckBatcher", () => {
  /** A send that holds each request until released, recording what it carried. */
  function origin() {
    const requests: AckItem[][] = [];
    const pending: (() => void)[] = [];
    const send = (items: AckItem[]) =>
      new Promise<AckAnswer[]>((resolve, reject) => {
        requests.push(items);
        pending.push(() =>
          items.some((i) => i.node === "broken")
            ? reject(new Error("connection reset"))
            : resolve(
                items.map((i) =>
                  i.node === "ghost"
                    ? { status: 404, body: { reason: `node "${i.node}" is not registered` } }
                    : { status: 200, body: { acked: i } },
                ),
              ),
        );
      });
    return { requests, release: () => pending.shift()?.(), send };
  }
  const item = (node: string, serial = 1): AckItem => ({
    node,
    token: `t-${node}`,
    zone: "example.test",
    serial,
  });

  it("sends the first ack at once and the acks made meanwhile together, each with its own answer", async () => {
    const o = origin();
    const b = new AckBatcher(o.send);
    const first = b.ack(item("edge-1"));
    expect(o.requests).toEqual([[item("edge-1")]]);
    const rest = ["edge-2", "res-1", "ghost"].map((n) => b.ack(item(n)));
    expect(o.requests).toHaveLength(1); // queued behind the one in flight
    o.release();
    expect(await first).toEqual({ status: 200, body: { acked: item("edge-1") } });
    await new Promise((r) => setImmediate(r));
    expect(o.requests[1]).toEqual([item("edge-2"), item("res-1"), item("ghost")]);
    o.release();
    const answers = await Promise.all(rest);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 404]);
    expect(answers[1]!.body).toEqual({ acked: item("res-1") });
    expect(b.stats()).toEqual({ requests: 2, acks: 4 });
  });

  it("with a deferred start, the acks of one turn leave in one request", async () => {
    const o = origin();
    let later: (() => void) | undefined;
    const b = new AckBatcher(o.send, 1000, (send) => {
      later = send;
    });
    const acks = ["edge-1", "edge-2", "res-1"].map((n) => b.ack(item(n)));
    expect(o.requests).toHaveLength(0);
    later!();
    expect(o.requests).toEqual([[item("edge-1"), item("edge-2"), item("res-1")]]);
    o.release();
    expect((await Promise.all(acks)).map((a) => a.status)).toEqual([200, 200, 200]);
    expect(b.stats()).toEqual({ requests: 1, acks: 3 });
  });

  it("a failed request fails its own acks only, and at most `max` acks share one", async () => {
    const o = origin();
    const b = new AckBatcher(o.send, 2);
    const first = b.ack(item("broken"));
    const next = ["edge-1", "edge-2", "edge-3"].map((n) => b.ack(item(n)));
    o.release();
    await expect(first).rejects.toThrow("connection reset");
    await new Promise((r) => setImmediate(r));
    expect(o.requests.map((r) => r.length)).toEqual([1, 2]);
    o.release();
    await new Promise((r) => setImmediate(r));
    expect(o.requests.map((r) => r.length)).toEqual([1, 2, 1]);
    o.release();
    expect((await Promise.all(next)).map((a) => a.status)).toEqual([200, 200, 200]);
  });
});
