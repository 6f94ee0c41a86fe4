/**
 * The purge bus on a real Redis Cluster (3 primaries, 3 replicas): a small
 * topology runs on it, the primary serving the bus's slot is killed
 * mid-stream, and every change, made before, during and after the replica's
 * promotion, is applied and acknowledged by every node.
 */
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterSeeds, RedisBus } from "../../core/redis-bus.ts";
import { type RedisCluster, startRedisCluster } from "../support/redis-cluster.ts";
import { waitFor } from "../support/wait.ts";
import { digShort, node, putA, smallTopology, startTopology, waitConverged } from "./support.ts";

describe("cluster seeds from the bus URL", () => {
  it("reads redis+cluster:// and comma-joined redis:// URLs, and leaves one URL a single node", () => {
    expect(clusterSeeds("redis+cluster://u:p%40ss@10.0.0.1:7000,[::1]:7001")).toEqual({
      nodes: [
        { host: "10.0.0.1", port: 7000 },
        { host: "::1", port: 7001 },
      ],
      username: "u",
      password: "p@ss",
      tls: false,
    });
    expect(clusterSeeds("redis+cluster://u:a:b@h:1")).toMatchObject({
      username: "u",
      password: "a:b",
    });
    expect(clusterSeeds("rediss+cluster://:secret@h:6380")).toEqual({
      nodes: [{ host: "h", port: 6380 }],
      password: "secret",
      tls: true,
    });
    expect(clusterSeeds("redis://a:7000,redis://b:7001")).toEqual({
      nodes: [
        { host: "a", port: 7000 },
        { host: "b", port: 7001 },
      ],
      tls: false,
    });
    expect(clusterSeeds("redis://a:6379")).toBeUndefined();
    expect(() => clusterSeeds("redis+cluster://a")).toThrow(/"a" .* is not host:port/);
  });

  it("hash-tags the stream and positions into one slot on a cluster only", () => {
    const opts = { lazyConnect: true };
    const one = new RedisBus({ url: "redis://127.0.0.1:1", redis: opts });
    const many = new RedisBus({ url: "redis+cluster://127.0.0.1:1", redis: opts });
    expect(one.stream).toBe("propagate:purge");
    expect(many.stream).toBe("{propagate}:purge");
    void one.close();
    void many.close();
  });
});

let cluster: RedisCluster;
beforeAll(async () => {
  cluster = await startRedisCluster();
}, 60_000);
afterAll(async () => {
  await cluster?.stop();
});

describe("the fabric on a Redis Cluster", () => {
  let t: Awaited<ReturnType<typeof startTopology>>;
  let res1: string;
  beforeAll(async () => {
    // Anti-entropy slowed right down: only the bus can explain convergence.
    t = await startTopology(
      smallTopology({ bus: cluster.url, defaults: { pollIntervalMs: 600_000 } }),
    );
    res1 = node(t, "res-1").address;
  }, 30_000);
  afterAll(async () => {
    await t?.close();
  });

  /** How often a node answered `-<code>` (INFO errorstats). */
  async function redirects(port: number, code: "ASK" | "MOVED"): Promise<number> {
    const c = new Redis(port, "127.0.0.1", { maxRetriesPerRequest: 0 });
    try {
      const info = String(await c.call("INFO", "errorstats"));
      return Number(new RegExp(`errorstat_${code}:count=(\\d+)`).exec(info)?.[1] ?? 0);
    } finally {
      c.disconnect();
    }
  }

  it("follows ASK while the bus's slot migrates and MOVED once it has moved", async () => {
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.10");
    const first = await putA(t, "www", "192.0.2.90");
    expect((await waitConverged(t, first.changeId, 10_000)).status).toBe("INSYNC");

    const slot = await cluster.keySlot("{propagate}:purge");
    expect(await cluster.keySlot("{propagate}:positions")).toBe(slot);
    const from = await waitFor("every node to agree on the slot's owner", () =>
      cluster.ownerOf(slot).catch(() => undefined),
    );
    const to = (await cluster.nodes()).find((n) => n.role === "master" && n.port !== from.port)!;
    const asked = await redirects(from.port, "ASK");
    await cluster.beginMigration(slot, to.port);
    // The keys are at the new owner, the slot still the old one's: it answers ASK.
    const migrating = await putA(t, "mail", "192.0.2.27");
    const m = await waitConverged(t, migrating.changeId, 15_000);
    expect(m.status).toBe("INSYNC");
    expect(await redirects(from.port, "ASK")).toBeGreaterThan(asked);

    const moved = await redirects(from.port, "MOVED");
    await cluster.finishMigration(slot, to.port);
    const done = await putA(t, "www", "192.0.2.91");
    const d = await waitConverged(t, done.changeId, 15_000);
    expect(d.status).toBe("INSYNC");
    console.log(
      `redis cluster: bus slot migrating (ASK): commit -> last receipt ${m.convergedAt! - m.committedAt} ms; moved (MOVED): ${d.convergedAt! - d.committedAt} ms`,
    );
    expect(await redirects(from.port, "MOVED")).toBeGreaterThan(moved);
    // Replicas learn the new owner by gossip: wait until every node agrees.
    await waitFor("every node to see the new owner", async () => {
      const owner = await cluster.ownerOf(slot).catch(() => undefined);
      return owner?.port === to.port;
    });
    expect(await digShort(res1, "mail.example.test")).toBe("192.0.2.27");
    expect(await digShort(res1, "www.example.test")).toBe("192.0.2.91");
  }, 40_000);

  it("applies and acknowledges every change across the failover of the bus's primary", async () => {
    const slot = await cluster.keySlot("{propagate}:purge");
    const primary = await waitFor("every node to agree on the slot's owner", () =>
      cluster.ownerOf(slot).catch(() => undefined),
    );
    await cluster.kill9(primary.port);
    const killedAt = Date.now();
    // Made while the slot has no primary: its publish waits out the promotion.
    const during = await putA(t, "mail", "192.0.2.26");
    const promoted = await cluster.waitForFailover(slot, primary.port);
    const promotedAt = Date.now();
    expect(promoted.port).not.toBe(primary.port);
    const after = await putA(t, "ftp", "192.0.2.22");

    const s1 = await waitConverged(t, during.changeId, 25_000);
    const s2 = await waitConverged(t, after.changeId, 25_000);
    expect(s1.nodes.filter((n) => n.status !== "INSYNC")).toEqual([]);
    expect(s2.nodes.filter((n) => n.status !== "INSYNC")).toEqual([]);
    console.log(
      `redis cluster: primary 127.0.0.1:${primary.port} (slot ${slot}) killed; replica 127.0.0.1:${promoted.port} seen serving it ${promotedAt - killedAt} ms later; kill -> last receipt of the next change: ${s1.convergedAt! - killedAt} ms`,
    );
    expect(await digShort(res1, "mail.example.test")).toBe("192.0.2.26");
    expect(await digShort(res1, "ftp.example.test")).toBe("192.0.2.22");
    // Every node had every change from the bus: the feed (anti-entropy) repaired nothing.
    for (const n of t.nodes.filter((x) => x.sync)) {
      expect(n.sync!(), n.id).toMatchObject({ feedChanges: 0 });
    }
  }, 40_000);
});

describe("a publish on a cluster", () => {
  it("resolves only once a replica holds the entry, so a failover loses no resolved entry", async () => {
    // A stream on a primary that still has a live replica (the test above killed one primary).
    const nodes = await cluster.nodes();
    let found: { tag: string; slot: number; primary: number; replica: number } | undefined;
    for (let i = 0; !found && i < 200; i++) {
      const slot = await cluster.keySlot(`{lossy${i}}`);
      const owner = await cluster.ownerOf(slot);
      const rep = nodes.find((n) => n.role === "slave" && !n.failed && n.master === owner.id);
      if (rep) found = { tag: `{lossy${i}}`, slot, primary: owner.port, replica: rep.port };
    }
    expect(found, "a primary with a replica").toBeDefined();
    const { tag, slot, primary, replica } = found!;
    const bus = new RedisBus({
      url: cluster.url,
      stream: `${tag}:purge`,
      positionsKey: `${tag}:positions`,
      log: () => {},
    });
    const event = (serial: number) => ({
      changeId: `c${serial}`,
      zone: "example.test",
      serial,
      keys: ["www.example.test"],
      mode: "invalidate" as const,
      ts: Date.now(),
    });
    try {
      const first = await bus.publish(event(1));
      // The replica frozen: the primary takes the next entry but cannot pass it on.
      cluster.signal(replica, "SIGSTOP");
      // Resolving here would be a promise the failover below breaks: the promoted
      // replica never had the entry, and would give the next one its ordinal.
      await expect(bus.publish(event(2))).rejects.toThrow(/reached none of 1 replicas/);
      await cluster.kill9(primary);
      cluster.signal(replica, "SIGCONT");
      const promoted = await cluster.waitForFailover(slot, primary);
      expect(promoted.port).toBe(replica);
      // What failed is published again (the origin's outbox does this), then the next change.
      await waitFor("the entry to be published again", () =>
        bus.publish(event(2)).then(
          () => true,
          () => false,
        ),
      );
      await bus.publish(event(3));
      // A node that was away during the failover resumes after the first entry and gets both.
      const seen: number[] = [];
      const resyncs: string[] = [];
      const sub = await bus.subscribe(
        "away-node",
        async (e) => {
          seen.push(e.serial);
        },
        { from: first, onResync: async (r) => void resyncs.push(r) },
      );
      try {
        await waitFor("the away node to read both", () => seen.includes(3), 10_000);
        // In order; a duplicate (a publish retried after its entry was written) is allowed.
        expect([...new Set(seen)]).toEqual([2, 3]);
        expect(resyncs).toEqual([]);
      } finally {
        await sub.close();
      }
    } finally {
      cluster.signal(replica, "SIGCONT");
      await bus.close();
    }
  }, 60_000);
});
