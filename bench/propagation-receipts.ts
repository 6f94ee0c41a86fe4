/**
 * Time from a write's acknowledgement to its last receipt, for 100 cache
 * nodes (10 regional edges, 40 edges, 50 resolvers) in one process, zero
 * modelled delay, over the memory bus and over Redis Streams.
 *
 *   npx tsx bench/propagation-receipts.ts [changes=200]
 *
 * Each change is a PUT; t0 is when its 200 arrives, and the end is the
 * origin's `convergedAt` (same machine, same clock). Changes run one at a
 * time so that each measures the fabric, not a queue.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseTopology } from "../infra/topology.ts";
import { up } from "../infra/up.ts";
import { startRedis } from "../test/support/redis.ts";
import { machine } from "./support.ts";

const changes = Number(process.argv[2] ?? 200);

function topology(bus: string) {
  const edges: { id: string; parent: string; tier: string }[] = [];
  for (let r = 1; r <= 10; r++) {
    edges.push({ id: `regional-${r}`, parent: "origin", tier: "regional" });
    for (let e = 1; e <= 4; e++)
      edges.push({ id: `edge-${r}-${e}`, parent: `regional-${r}`, tier: "edge" });
  }
  const resolvers = Array.from({ length: 50 }, (_, i) => ({
    id: `res-${i + 1}`,
    upstream: `edge-${(i % 10) + 1}-${(i % 4) + 1}`,
  }));
  return parseTopology({
    name: "bench-100",
    bus,
    edges,
    resolvers,
    defaults: { pollIntervalMs: 600_000 },
  });
}

function quantile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

type Stats = { p50: number; p90: number; p99: number; max: number };

function stats(times: number[]): Stats {
  const sorted = [...times].sort((a, b) => a - b);
  return {
    p50: quantile(sorted, 0.5),
    p90: quantile(sorted, 0.9),
    p99: quantile(sorted, 0.99),
    max: sorted.at(-1)!,
  };
}

/** Per change: commit -> last receipt, and the client's ack -> last receipt (negative: converged first). */
async function run(bus: string): Promise<{ fromCommit: Stats; fromAck: Stats }> {
  const dir = await mkdtemp(join(tmpdir(), "propagate-bench-"));
  const t = await up(topology(bus), { dataDir: dir, anyPort: true, log: () => {} });
  const nodes = t.nodes.length - 1;
  const fromCommit: number[] = [];
  const fromAck: number[] = [];
  try {
    for (let i = 0; i < changes; i++) {
      const res = await fetch(`${t.originUrl}/v1/zones/example.test/rrsets/bench/TXT`, {
        method: "PUT",
        headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
        body: JSON.stringify({ ttl: 60, data: [`change ${i}`] }),
      });
      const acked = Date.now();
      const { changeId } = (await res.json()) as { changeId: string };
      for (;;) {
        const s = (await (await fetch(`${t.originUrl}/v1/changes/${changeId}`)).json()) as {
          committedAt: number;
          convergedAt?: number;
          nodes: unknown[];
        };
        if (s.nodes.length !== nodes)
          throw new Error(`expected ${nodes} receipts, got ${s.nodes.length}`);
        if (s.convergedAt !== undefined) {
          fromCommit.push(s.convergedAt - s.committedAt);
          fromAck.push(s.convergedAt - acked);
          break;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  } finally {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  }
  return { fromCommit: stats(fromCommit), fromAck: stats(fromAck) };
}

const line = (label: string, s: Stats) =>
  `${label} p50 ${s.p50} ms, p90 ${s.p90} ms, p99 ${s.p99} ms, max ${s.max} ms`;

console.log(`machine: ${machine()}; ${changes} changes per bus, 100 nodes`);
const memory = await run("memory");
console.log(line("memory bus: commit -> last receipt    ", memory.fromCommit));
console.log(line("memory bus: write ack -> last receipt ", memory.fromAck));
const redis = await startRedis();
try {
  const r = await run(redis.url);
  console.log(line("redis bus:  commit -> last receipt    ", r.fromCommit));
  console.log(line("redis bus:  write ack -> last receipt ", r.fromAck));
} finally {
  await redis.stop();
}
