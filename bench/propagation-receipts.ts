/**
 * Time from a write's acknowledgement to its last receipt, for 100 cache
 * nodes (10 regional edges, 40 edges, 50 resolvers) in one process, zero
 * modelled delay, over the memory bus and over Redis Streams.
 *
 *   npx tsx bench/propagation-receipts.ts [changes=200] [--poll] [--memory | --redis]
 *
 * Each change is a PUT; t0 is when its 200 arrives, the end is when the
 * origin's receipts mark the change converged (its `convergedAt`). Changes
 * run one at a time, so each measures the fabric, not a queue.
 *
 * Where the time goes, per change (every timestamp from performance.now() in
 * this one process, by wrapping the prototypes of the parts on the path, not
 * by changing them): commit (the receipts start tracking it) -> publish (the
 * outbox hands it to the bus) -> first and last delivery (NodeSync.onEvent)
 * -> last apply done (the last node sends its ack) -> last receipt; the time
 * spent inside Receipts.ack (the registry), the ack requests the origin took,
 * and the CPU this process spent per change. Convergence is seen by the hook,
 * not by polling GET /v1/changes (which would add its own load; --poll polls
 * every 2 ms instead, as earlier versions did).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import * as sync from "../core/sync.ts";
import { parseTopology } from "../infra/topology.ts";
import { up } from "../infra/up.ts";
import { Receipts } from "../origin/receipts.ts";
import { startRedis } from "../test/support/redis.ts";
import { machine } from "./support.ts";

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const changes = Number(args[0] ?? 200);
const poll = process.argv.includes("--poll");

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

/** What one change went through, as the hooks saw it (performance.now() ms). */
interface Trace {
  commit?: number;
  publish?: number;
  firstDelivery?: number;
  lastDelivery?: number;
  lastApplied?: number;
  lastReceipt?: number;
  converged?: number;
  receiptMs: number;
  acks: number;
}
let trace: Trace = { receiptMs: 0, acks: 0 };
let onConverged: (() => void) | undefined;
let ackRequests = 0;

// The hooks: each wraps a prototype method and notes the time; behaviour unchanged.
type Tracked = { convergedAt?: number };
const proto = {
  receipts: Receipts.prototype as unknown as Record<string, (...a: unknown[]) => unknown>,
  sync: sync.NodeSync.prototype as unknown as Record<string, (...a: unknown[]) => unknown>,
  // Absent before acks were batched: this file also measures that code, as the reference.
  batcher: (sync as { AckBatcher?: { prototype: unknown } }).AckBatcher?.prototype as
    | Record<string, (...a: unknown[]) => unknown>
    | undefined,
};
/** The change being measured, as the receipts track it. */
let tracked: Tracked | undefined;
const converged = () => {
  if (trace.converged !== undefined || trace.commit === undefined) return;
  if (tracked?.convergedAt !== undefined) {
    trace.converged = performance.now();
    onConverged?.();
  }
};
const wrap = (
  target: Record<string, (...a: unknown[]) => unknown>,
  name: string,
  hook: (self: never, run: () => unknown) => unknown,
) => {
  const original = target[name]!;
  target[name] = function (this: never, ...a: unknown[]) {
    return hook(this, () => original.apply(this, a));
  };
};
wrap(proto.receipts, "track", (self: { changes: Map<string, Tracked> }, run) => {
  trace.commit ??= performance.now();
  const r = run();
  tracked = [...self.changes.values()].at(-1);
  converged();
  return r;
});
wrap(proto.receipts, "ack", (_self, run) => {
  const t = performance.now();
  const r = run();
  const end = performance.now();
  trace.receiptMs += end - t;
  trace.acks++;
  trace.lastReceipt = end;
  converged();
  return r;
});
wrap(proto.sync, "onEvent", (_self, run) => {
  const t = performance.now();
  trace.firstDelivery ??= t;
  trace.lastDelivery = t;
  return run();
});
wrap(proto.sync, "sendAck", (_self, run) => {
  trace.lastApplied = performance.now();
  return run();
});
if (proto.batcher)
  wrap(proto.batcher, "drain", (self: { queue: unknown[] }, run) => {
    // One request per turn of the loop; counted as the queue is taken.
    const queue = self.queue;
    const splice = queue.splice.bind(queue);
    queue.splice = (...a: [number, number]) => {
      ackRequests++;
      return splice(...a);
    };
    return (run() as Promise<void>).finally(() => {
      delete (queue as { splice?: unknown }).splice;
    });
  });

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

const line = (label: string, s: Stats) =>
  `${label} p50 ${s.p50.toFixed(1)} ms, p90 ${s.p90.toFixed(1)} ms, p99 ${s.p99.toFixed(1)} ms, max ${s.max.toFixed(1)} ms`;

async function run(busName: string, bus: string): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), "propagate-bench-"));
  const t = await up(topology(bus), { dataDir: dir, anyPort: true, log: () => {} });
  const nodes = t.nodes.length - 1;
  const busPublish = t.bus!.publish.bind(t.bus!);
  t.bus!.publish = (e) => {
    trace.publish ??= performance.now();
    return busPublish(e);
  };
  const traces: (Trace & { acked: number })[] = [];
  const write = async (i: number) => {
    trace = { receiptMs: 0, acks: 0 };
    const done = new Promise<void>((resolve) => {
      onConverged = resolve;
    });
    const res = await fetch(`${t.originUrl}/v1/zones/example.test/rrsets/bench/TXT`, {
      method: "PUT",
      headers: { authorization: `Bearer ${t.token}`, "content-type": "application/json" },
      body: JSON.stringify({ ttl: 60, data: [`change ${i}`] }),
    });
    const acked = performance.now();
    const { changeId } = (await res.json()) as { changeId: string };
    if (poll) {
      for (;;) {
        const s = (await (await fetch(`${t.originUrl}/v1/changes/${changeId}`)).json()) as {
          convergedAt?: number;
          nodes: unknown[];
        };
        if (s.nodes.length !== nodes) throw new Error(`${s.nodes.length} receipts, not ${nodes}`);
        if (s.convergedAt !== undefined) break;
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    await done;
    return { ...trace, acked };
  };
  try {
    for (let i = 0; i < 5; i++) await write(-i); // warm-up
    ackRequests = 0;
    const cpu = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < changes; i++) traces.push(await write(i));
    const seconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const of = (f: (x: Trace & { acked: number }) => number) => stats(traces.map(f));
    console.log(
      line(
        `${busName}: write ack -> last receipt  `,
        of((x) => x.converged! - x.acked),
      ),
    );
    console.log(
      line(
        `${busName}: commit -> last receipt     `,
        of((x) => x.converged! - x.commit!),
      ),
    );
    console.log(
      line(
        `${busName}:   commit -> publish        `,
        of((x) => x.publish! - x.commit!),
      ),
    );
    console.log(
      line(
        `${busName}:   publish -> 1st delivery  `,
        of((x) => x.firstDelivery! - x.publish!),
      ),
    );
    console.log(
      line(
        `${busName}:   publish -> last delivery `,
        of((x) => x.lastDelivery! - x.publish!),
      ),
    );
    console.log(
      line(
        `${busName}:   last delivery -> applied `,
        of((x) => x.lastApplied! - x.lastDelivery!),
      ),
    );
    console.log(
      line(
        `${busName}:   last applied -> receipt  `,
        of((x) => x.lastReceipt! - x.lastApplied!),
      ),
    );
    console.log(
      line(
        `${busName}:   in Receipts.ack, summed  `,
        of((x) => x.receiptMs),
      ),
    );
    const acks = traces.reduce((n, x) => n + x.acks, 0) / changes;
    console.log(
      `${busName}: ${acks.toFixed(0)} acks in ${proto.batcher ? (ackRequests / changes).toFixed(1) : acks.toFixed(0)} requests per change; CPU ${((used.user + used.system) / 1000 / changes).toFixed(1)} ms per change; ${Math.round((changes * nodes) / seconds)} deliveries/s`,
    );
  } finally {
    await t.close();
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(`machine: ${machine()}; ${changes} changes per bus, 100 nodes in one process`);
if (!process.argv.includes("--redis")) await run("memory", "memory");
if (!process.argv.includes("--memory")) {
  const redis = await startRedis();
  try {
    await run("redis ", redis.url);
  } finally {
    await redis.stop();
  }
}
console.log(`load after: ${machine().split("load ")[1]}`);
