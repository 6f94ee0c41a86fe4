/**
 * Redis failing over to a replica while changes flow. A real primary, a real
 * `redis-server --replicaof` replica and a real Sentinel (`redis-server
 * --sentinel`, quorum 1, down-after 1 s); the fabric's bus is
 * `redis+sentinel://SENTINEL/propagate` (core/redis-bus.ts). The primary is
 * killed with -9 while a writer keeps changing records; the Sentinel promotes
 * the replica (`REPLICAOF NO ONE`), every node's connections ask the Sentinel
 * again and reach the new primary, and every change, before, during and after
 * the promotion, is applied at every node and acknowledged (INSYNC), the
 * resolvers answering the last values.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisBus, sentinelTarget } from "../../core/redis-bus.ts";
import {
  digShort,
  node,
  putA,
  smallTopology,
  startTopology,
  waitConverged,
} from "../e2e/support.ts";
import { waitFor } from "../support/wait.ts";

const run = promisify(execFile);
let dir: string;
const procs = new Map<string, ChildProcess>();
let primary: number;
let replica: number;
let sentinel: number;

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

const cli = async (port: number, ...args: string[]) =>
  (await run("redis-cli", ["-p", String(port), ...args], { timeout: 5_000 })).stdout;

async function launch(name: string, port: number, args: string[]): Promise<void> {
  procs.set(name, spawn("redis-server", args, { stdio: "ignore" }));
  await waitFor(`${name} to answer PING`, async () => {
    try {
      return (await cli(port, "ping")).trim() === "PONG";
    } catch {
      return false;
    }
  });
}

function stop(name: string, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  const p = procs.get(name);
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    p.once("exit", () => resolve());
    p.kill(signal);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "propagate-failover-"));
  [primary, replica, sentinel] = await Promise.all([freePort(), freePort(), freePort()]);
  const base = (port: number, sub: string) => [
    ...["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
    ...["--dir", dir, "--dbfilename", `${sub}.rdb`],
  ];
  await launch("primary", primary, base(primary, "primary"));
  await launch("replica", replica, [
    ...base(replica, "replica"),
    ...["--replicaof", "127.0.0.1", String(primary)],
  ]);
  await waitFor("the replica to sync", async () =>
    /master_link_status:up/.test(await cli(replica, "info", "replication")),
  );
  // Sentinel rewrites its configuration file: it lives in the temp dir.
  const conf = join(dir, "sentinel.conf");
  await writeFile(
    conf,
    [
      `port ${sentinel}`,
      "bind 127.0.0.1",
      `dir ${dir}`,
      `sentinel monitor propagate 127.0.0.1 ${primary} 1`,
      "sentinel down-after-milliseconds propagate 1000",
      "sentinel failover-timeout propagate 10000",
      "",
    ].join("\n"),
  );
  await launch("sentinel", sentinel, [conf, "--sentinel"]);
  // The Sentinel learns the replica from the primary's INFO; a failover needs it known.
  await waitFor(
    "the sentinel to know the replica",
    async () =>
      (await cli(sentinel, "sentinel", "replicas", "propagate")).includes(String(replica)),
    20_000,
    100,
  );
}, 60_000);

afterAll(async () => {
  for (const name of ["sentinel", "replica", "primary"]) await stop(name);
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("redis+sentinel:// URLs", () => {
  it("name the sentinels and the master; a malformed one is refused", () => {
    expect(sentinelTarget("redis+sentinel://u:p:w@127.0.0.1:26379,h2:26380/propagate")).toEqual({
      sentinels: [
        { host: "127.0.0.1", port: 26379 },
        { host: "h2", port: 26380 },
      ],
      name: "propagate",
      username: "u",
      password: "p:w",
      tls: false,
    });
    expect(sentinelTarget("redis://127.0.0.1:6379")).toBeUndefined();
    expect(() => sentinelTarget("redis+sentinel://127.0.0.1:26379")).toThrow(/MASTER-NAME/);
    expect(() => new RedisBus({ url: "redis+replicas://127.0.0.1:6379" })).toThrow(
      /scheme "redis\+replicas:" is unknown/,
    );
  });
});

describe("the bus through Redis Sentinel", () => {
  it("every change is applied and acknowledged across the primary's death and the replica's promotion", async () => {
    const t = await startTopology(
      smallTopology({
        bus: `redis+sentinel://127.0.0.1:${sentinel}/propagate`,
        // Anti-entropy slowed right down, so the bus (or its gap repair) explains convergence.
        defaults: { pollIntervalMs: 600_000 },
      }),
    );
    try {
      const first = await putA(t, "www", "192.0.2.81");
      expect((await waitConverged(t, first.changeId, 10_000)).status).toBe("INSYNC");

      // A writer changes a new name every round until a few rounds after the promotion.
      const changes: { name: string; address: string; changeId: string }[] = [];
      let promotedAt: number | undefined;
      let afterPromotion = 0;
      const writer = (async () => {
        for (let i = 1; afterPromotion < 5 && i < 250; i++) {
          const name = `f${i}`;
          const address = `192.0.2.${i}`;
          changes.push({ name, address, ...(await putA(t, name, address)) });
          if (promotedAt !== undefined) afterPromotion++;
          await new Promise((r) => setTimeout(r, 50)); // pacing the writer, not a wait
        }
      })();
      await waitFor("a few changes before the fault", () => changes.length >= 3, 10_000);
      const killedAt = Date.now();
      await stop("primary", "SIGKILL");
      await waitFor(
        "the sentinel to promote the replica",
        async () => /^role:master/m.test(await cli(replica, "info", "replication")),
        30_000,
        50,
      );
      promotedAt = Date.now();
      await writer;
      expect(afterPromotion).toBe(5);

      // Every change acknowledged by every node.
      let lastConverged = 0;
      for (const c of changes) {
        const s = await waitConverged(t, c.changeId, 30_000);
        expect(
          s.nodes.filter((n) => n.status !== "INSYNC"),
          c.name,
        ).toEqual([]);
        lastConverged = Math.max(lastConverged, s.convergedAt ?? 0);
      }
      // And applied: both resolvers answer every name's value (one cached before is replaced).
      for (const id of ["res-1", "res-2"]) {
        const addr = node(t, id).address;
        for (const c of [changes[0]!, changes[changes.length - 6]!, changes.at(-1)!])
          expect(await digShort(addr, `${c.name}.example.test`), `${id} ${c.name}`).toBe(c.address);
      }
      expect(await digShort(node(t, "res-1").address, "www.example.test")).toBe("192.0.2.81");
      // Through the bus: every node took an event for each change (more if one was published again).
      for (const n of t.nodes.filter((x) => x.sync))
        expect(n.sync!().busEvents, n.id).toBeGreaterThanOrEqual(changes.length + 1);
      console.log(
        `failover: ${changes.length} changes; replica promoted ${promotedAt - killedAt} ms after the kill; ` +
          `every change INSYNC ${Math.max(0, lastConverged - promotedAt)} ms after the promotion`,
      );
    } finally {
      await t.close();
    }
  }, 90_000);
});
