/**
 * Purge bus fan-out: time from the publish() call to the last of N
 * subscribers' handlers running (the last receipt), zero modelled delay; and
 * how long publish() takes to resolve. With Redis the ack can come after the
 * fan-out: Redis serves blocked readers before the writer's reply is read.
 * Runs MemoryBus, then RedisBus against a redis-server it starts on a free
 * port (AOF off, as a cache bus usually runs). Changes are published one at
 * a time, each after the previous reached every node.
 *
 *   npx tsx bench/bus-fanout.ts [nodes=100] [changes=500]
 */
import { performance } from "node:perf_hooks";
import { MemoryBus, type PurgeBus } from "../core/bus.ts";
import type { PurgeEvent } from "../core/purge.ts";
import { RedisBus } from "../core/redis-bus.ts";
import { startRedis } from "../test/support/redis.ts";
import { machine } from "./support.ts";

const nodes = Number(process.argv[2] ?? 100);
const changes = Number(process.argv[3] ?? 500);

async function run(name: string, bus: PurgeBus): Promise<void> {
  let waiting = 0;
  let doneAt = 0;
  let release: () => void = () => {};
  for (let i = 0; i < nodes; i++) {
    await bus.subscribe(`node-${i}`, async () => {
      if (--waiting === 0) {
        doneAt = performance.now();
        release();
      }
    });
  }
  const publishMs: number[] = [];
  const fanoutMs: number[] = [];
  const start = performance.now();
  for (let i = 1; i <= changes; i++) {
    const event: PurgeEvent = {
      changeId: `c${i}`,
      zone: "bench.test",
      serial: i,
      keys: ["www.bench.test"],
      mode: "invalidate",
      ts: Date.now(),
    };
    waiting = nodes;
    const all = new Promise<void>((resolve) => {
      release = resolve;
    });
    const t0 = performance.now();
    await bus.publish(event);
    const acked = performance.now();
    await all;
    publishMs.push(acked - t0);
    fanoutMs.push(doneAt - t0);
  }
  const seconds = (performance.now() - start) / 1000;
  await bus.close();
  console.log(
    `| ${name} | ${nodes} | ${changes} | ${q(publishMs, 0.5)} | ${q(fanoutMs, 0.5)} | ${q(fanoutMs, 0.99)} | ${q(fanoutMs, 1)} | ${Math.round((changes * nodes) / seconds)} |`,
  );
}

function q(xs: number[], p: number): string {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!.toFixed(2);
}

console.log(`machine: ${machine()}`);
console.log(
  "| bus | nodes | changes | publish() p50 ms | publish -> last receipt p50 ms | p99 ms | max ms | deliveries/s |",
);
console.log("|---|---|---|---|---|---|---|---|");
await run("memory", new MemoryBus());
const redis = await startRedis();
try {
  await run("redis", new RedisBus({ url: redis.url, log: (m) => console.error(m) }));
} finally {
  await redis.stop();
}
