/**
 * A real Redis Cluster for a test file: three primaries and three replicas
 * from Debian's redis-server on free loopback ports (each port's cluster bus
 * port, +10000, free too), joined by `redis-cli --cluster create
 * --cluster-replicas 1`. No persistence (`--save ''`, AOF off) and a short
 * cluster-node-timeout, so a killed primary's replica is promoted in about
 * a second. Every wait is on a condition: PING, cluster_state:ok, the slot's owner.
 */
import { type ChildProcess, execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { exitOf, listenFree, spawnReady } from "./net.ts";
import { pings } from "./redis.ts";
import { waitFor } from "./wait.ts";

export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: "master" | "slave";
  /** A replica's primary (its node id); "-" for a primary. */
  master: string;
  failed: boolean;
  /** Slot ranges a primary serves, [from, to] inclusive. */
  slots: [number, number][];
}

export interface RedisCluster {
  readonly ports: number[];
  /** redis+cluster://127.0.0.1:p1,... (every node a seed). */
  readonly url: string;
  /** CLUSTER NODES as one live node sees it. */
  nodes(): Promise<ClusterNodeInfo[]>;
  /** CLUSTER KEYSLOT. */
  keySlot(key: string): Promise<number>;
  /** The live primary serving `slot`, as every live node agrees. */
  ownerOf(slot: number): Promise<ClusterNodeInfo>;
  /**
   * Starts moving `slot` to the primary on `toPort` (CLUSTER SETSLOT IMPORTING /
   * MIGRATING, then MIGRATE of its keys): the slot is left migrating, so a
   * command for it at the old owner is answered ASK.
   */
  beginMigration(slot: number, toPort: number): Promise<void>;
  /** Ends the move: every primary learns the new owner (SETSLOT NODE); the old one answers MOVED. */
  finishMigration(slot: number, toPort: number): Promise<void>;
  /** SIGKILL one node. */
  kill9(port: number): Promise<void>;
  /** Sends a signal to one node (SIGSTOP freezes it: replication to it stops; SIGCONT resumes). */
  signal(port: number, sig: NodeJS.Signals): void;
  /** Waits until a node other than `oldPort` serves `slot` and the cluster is ok everywhere. */
  waitForFailover(slot: number, oldPort: number, timeoutMs?: number): Promise<ClusterNodeInfo>;
  stop(): Promise<void>;
}

export const NODE_TIMEOUT_MS = 1000;

export async function startRedisCluster(): Promise<RedisCluster> {
  const dir = await mkdtemp(join(tmpdir(), "propagate-redis-cluster-"));
  const ports: number[] = [];
  while (ports.length < 6) {
    const p = await freePortWithBus();
    if (!ports.includes(p)) ports.push(p);
  }
  const procs = new Map<number, ChildProcess>();
  const admin = new Map<number, Redis>();
  const cleanup = async () => {
    for (const c of admin.values()) c.disconnect();
    await Promise.all([...procs.values()].map((p) => exitOf(p, "SIGKILL")));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(ports.map(async (port) => procs.set(port, await launch(dir, port))));
    await promisify(execFile)(
      "redis-cli",
      [
        "--cluster",
        "create",
        ...ports.map((p) => `127.0.0.1:${p}`),
        "--cluster-replicas",
        "1",
        "--cluster-yes",
      ],
      { timeout: 30_000 },
    );
  } catch (err) {
    await cleanup();
    throw err;
  }
  const conn = (port: number) => {
    let c = admin.get(port);
    if (!c) {
      // One try per command: a dead node must fail fast, not be retried.
      c = new Redis(port, "127.0.0.1", { maxRetriesPerRequest: 0, lazyConnect: true });
      c.on("error", () => {});
      admin.set(port, c);
    }
    return c;
  };
  const alive = () =>
    [...procs.entries()].filter(([, p]) => p.exitCode === null && p.signalCode === null);
  const nodesSeenBy = async (port: number) =>
    parseNodes(String(await conn(port).call("CLUSTER", "NODES")));
  const cluster: RedisCluster = {
    ports,
    url: `redis+cluster://${ports.map((p) => `127.0.0.1:${p}`).join(",")}`,
    nodes: () => nodesSeenBy(alive()[0]![0]),
    keySlot: async (key) => Number(await conn(alive()[0]![0]).call("CLUSTER", "KEYSLOT", key)),
    ownerOf: async (slot) => {
      const views = await Promise.all(alive().map(([p]) => nodesSeenBy(p)));
      const owners = views.map(
        (v) => v.find((n) => n.role === "master" && !n.failed && covers(n, slot))?.port,
      );
      if (owners.some((o) => o === undefined || o !== owners[0])) {
        throw new Error(`nodes disagree on who serves slot ${slot}: ${owners.join(", ")}`);
      }
      return views[0]!.find((n) => n.port === owners[0])!;
    },
    beginMigration: async (slot, toPort) => {
      const from = await cluster.ownerOf(slot);
      const to = (await cluster.nodes()).find((n) => n.port === toPort)!;
      await conn(to.port).call("CLUSTER", "SETSLOT", String(slot), "IMPORTING", from.id);
      await conn(from.port).call("CLUSTER", "SETSLOT", String(slot), "MIGRATING", to.id);
      const keys = (await conn(from.port).call(
        "CLUSTER",
        "GETKEYSINSLOT",
        String(slot),
        "1000",
      )) as string[];
      if (keys.length > 0) {
        await conn(from.port).call(
          "MIGRATE",
          "127.0.0.1",
          String(to.port),
          "",
          "0",
          "5000",
          "KEYS",
          ...keys,
        );
      }
    },
    finishMigration: async (slot, toPort) => {
      const to = (await cluster.nodes()).find((n) => n.port === toPort)!;
      // The new owner first, then the old, then the rest (the order redis-cli uses).
      const primaries = (await cluster.nodes()).filter((n) => n.role === "master" && !n.failed);
      const order = [to, ...primaries.filter((n) => n.port !== toPort)];
      for (const n of order)
        await conn(n.port).call("CLUSTER", "SETSLOT", String(slot), "NODE", to.id);
    },
    kill9: async (port) => {
      const p = procs.get(port);
      if (p) await exitOf(p, "SIGKILL");
      admin.get(port)?.disconnect();
      admin.delete(port);
    },
    signal: (port, sig) => {
      procs.get(port)?.kill(sig);
    },
    waitForFailover: (slot, oldPort, timeoutMs = 20_000) =>
      waitFor(
        `a replica to take over slot ${slot} from 127.0.0.1:${oldPort}`,
        async () => {
          for (const [p] of alive()) {
            const info = String(await conn(p).call("CLUSTER", "INFO"));
            if (!/cluster_state:ok/.test(info)) return false;
          }
          const owner = await cluster.ownerOf(slot).catch(() => undefined);
          return owner && owner.port !== oldPort && owner;
        },
        timeoutMs,
        25,
      ),
    stop: cleanup,
  };
  // Every node agrees the cluster is ok, and every replica has synced with its primary.
  await waitFor(
    "the cluster to be ok with every replica in sync",
    async () => {
      for (const p of ports) {
        if (!/cluster_state:ok/.test(String(await conn(p).call("CLUSTER", "INFO")))) return false;
        const repl = String(await conn(p).call("INFO", "replication"));
        if (/role:slave/.test(repl) && !/master_link_status:up/.test(repl)) return false;
      }
      const nodes = await cluster.nodes();
      return nodes.filter((n) => n.role === "master").length === 3 && nodes.length === 6;
    },
    30_000,
    50,
  );
  return cluster;
}

function covers(n: ClusterNodeInfo, slot: number): boolean {
  return n.slots.some(([a, b]) => slot >= a && slot <= b);
}

/** CLUSTER NODES lines: `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slot>...`. */
function parseNodes(text: string): ClusterNodeInfo[] {
  return text
    .trim()
    .split("\n")
    .map((line) => {
      const f = line.trim().split(" ");
      const flags = f[2]!.split(",");
      return {
        id: f[0]!,
        port: Number(/:(\d+)@/.exec(f[1]!)![1]),
        role: flags.includes("master") ? "master" : "slave",
        master: f[3]!,
        failed: flags.includes("fail") || flags.includes("fail?"),
        slots: f
          .slice(8)
          .filter((s) => /^\d+(-\d+)?$/.test(s))
          .map((s) => {
            const [a, b] = s.split("-").map(Number);
            return [a!, b ?? a!] as [number, number];
          }),
      };
    });
}

async function launch(dir: string, port: number): Promise<ChildProcess> {
  const args = [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "no",
    "--cluster-enabled",
    "yes",
    "--cluster-config-file",
    `nodes-${port}.conf`,
    "--cluster-node-timeout",
    String(NODE_TIMEOUT_MS),
    "--dbfilename",
    `dump-${port}.rdb`,
  ];
  const { proc } = await spawnReady("redis-server", args, () => pings(port), {
    timeoutMs: 10_000,
    everyMs: 20,
  });
  return proc;
}

/** A free port whose cluster bus port (+10000) is free too. */
async function freePortWithBus(): Promise<number> {
  for (;;) {
    const p = await listenFree(0);
    if (p + 10000 > 65535) continue;
    const ok = await listenFree(p + 10000).then(
      () => true,
      () => false,
    );
    if (ok) return p;
  }
}
