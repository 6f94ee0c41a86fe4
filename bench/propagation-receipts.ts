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

async function run(bus: string): Promise<{ p50: number; p90: number; p99: number; max: number }> {
  const dir = await mkdtemp(join(tmpdir(), "propagate-bench-"));
  const t = await up(topology(bus), { dataDir: dir, anyPort: true, log: () => {} });
  const nodes = t.nodes.length - 1;
  const times: number[] = [];
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
          convergedAt?: number;
          nodes: unknown[];
        };
        if (s.nodes.length !== nodes)
          throw new Error(`expected ${nodes} receipts, got ${s.nodes.length}`);
        if (s.convergedAt !== undefined) {
          times.push(s.convergedAt - acked);
          break;
        }
        await new Promise((r) => setTimeout(r, 2));
      }
    }
  } finally {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  }
  times.sort((a, b) => a - b);
  return {
    p50: quantile(times, 0.5),
    p90: quantile(times, 0.9),
    p99: quantile(times, 0.99),
    max: times.at(-1)!,
  };
}

console.log(`machine: ${machine()}; ${changes} changes per bus, 100 nodes`);
const memory = await run("memory");
console.log(
  `memory bus: write ack -> last receipt p50 ${memory.p50} ms, p90 ${memory.p90} ms, p99 ${memory.p99} ms, max ${memory.max} ms`,
);
const redis = await startRedis();
try {
  const r = await run(redis.url);
  console.log(
    `redis bus:  write ack -> last receipt p50 ${r.p50} ms, p90 ${r.p90} ms, p99 ${r.p99} ms, max ${r.max} ms`,
  );
} finally {
  await redis.stop();
}
