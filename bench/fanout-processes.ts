/**
 * Purge fan-out with every cache node in its own process (`propagate up
 * --processes`, through the same launcher code, infra/processes.ts) on a
 * Redis bus, zero modelled delay: time from a write's acknowledgement to its
 * last receipt, and where the time goes.
 *
 * Topology: nodes/10 regional edges, 4 edges under each, the rest resolvers
 * (100 nodes: 10 + 40 + 50). Changes run one at a time (a TXT PUT each): t0
 * is when the PUT's 200 arrives at this client, the end is the origin's
 * `convergedAt` (its clock, same machine). Reported beside it, per change:
 * the first and the median receipt, the nodes' own commit -> apply time
 * (their `propagate_change_apply_seconds`), and the CPU each process spent
 * per change (/proc), which is what a 2-core machine runs out of.
 *
 * The nodes run from one esbuild bundle of the command (PROPAGATE_BIN), not
 * through tsx: tsx compiles on a loader thread of its own in every process,
 * which costs each of 100 processes ~35 MiB of RSS and a second of start-up
 * (--tsx: through bin/propagate.mjs). Logs at warn (--log-info: info), and
 * a small V8 young generation (--node-defaults: V8's).
 *
 * --priority renices the origin and redis-server to -10 (root only): on one
 * 2-core machine the origin, which takes every ack, otherwise gets 1/100th
 * of the CPU while 100 node processes run, as it would not on its own machine.
 *
 *   npx tsx bench/fanout-processes.ts [nodes=100] [changes=100] [--priority] [--tsx] [--log-info] [--node-defaults]
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { build } from "esbuild";
import { loadTopology } from "../infra/topology.ts";
import { startRedis } from "../test/support/redis.ts";
import { machine } from "./support.ts";

const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const total = Number(args[0] ?? 100);
const changes = Number(args[1] ?? 100);
const regionals = Math.max(1, Math.round(total / 10));
const edgesPer = 4;

function topology(dir: string, bus: string) {
  const edges: { id: string; parent: string; tier: string }[] = [];
  let n = 0;
  for (let r = 1; r <= regionals && n < total; r++) {
    edges.push({ id: `regional-${r}`, parent: "origin", tier: "regional" });
    n++;
    for (let e = 1; e <= edgesPer && n < total; e++, n++)
      edges.push({ id: `edge-${r}-${e}`, parent: `regional-${r}`, tier: "edge" });
  }
  const leaves = edges.filter((e) => e.tier === "edge");
  const resolvers = Array.from({ length: total - n }, (_, i) => ({
    id: `res-${i + 1}`,
    upstream: (leaves[i % leaves.length] ?? edges[0]!).id,
  }));
  return {
    name: `bench-processes-${total}`,
    bus,
    origin: { http: "127.0.0.1:0", dns: "127.0.0.1:0", data: join(dir, "origin") },
    defaults: { pollIntervalMs: 600_000 },
    edges,
    resolvers,
  };
}

/** utime + stime of a process, in ms (clock ticks of 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "");
  return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
}

/** Sum over every sample of `name` (any labels) in an exposition text. */
function sampleSum(text: string, name: string): number {
  let sum = 0;
  for (const m of text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm")))
    sum += Number(m[1]);
  return sum;
}

/** Mean of a histogram over every process (seconds -> ms), from two scrapes. */
async function scrapeAll(urls: string[], name: string): Promise<{ sum: number; count: number }> {
  const texts = await Promise.all(
    urls.map((u) =>
      fetch(u)
        .then((r) => r.text())
        .catch(() => ""),
    ),
  );
  return {
    sum: texts.reduce((n, t) => n + sampleSum(t, `${name}_sum`), 0),
    count: texts.reduce((n, t) => n + sampleSum(t, `${name}_count`), 0),
  };
}

/** used_cpu_sys + used_cpu_user of the redis-server, ms. */
async function redisCpuMs(port: number): Promise<number> {
  const { stdout } = await promisify(execFile)("redis-cli", ["-p", String(port), "info", "cpu"]);
  const get = (k: string) => Number(new RegExp(`^${k}:(\\S+)`, "m").exec(stdout)?.[1] ?? 0);
  return (get("used_cpu_sys") + get("used_cpu_user")) * 1000;
}

function q(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}
const dist = (xs: number[]) =>
  `p50 ${q(xs, 0.5).toFixed(0)} ms, p90 ${q(xs, 0.9).toFixed(0)} ms, p99 ${q(xs, 0.99).toFixed(0)} ms, max ${q(xs, 1).toFixed(0)} ms`;

/** The `propagate` command as one ESM file; packages stay imports, resolved from node_modules. */
async function bundle(): Promise<string> {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const outfile = join(root, "node_modules/.cache/propagate-bench/propagate.mjs");
  await build({
    stdin: {
      contents: 'import { main } from "./infra/cli.ts"; await main(process.argv.slice(2));',
      resolveDir: root,
      loader: "ts",
      sourcefile: "propagate-entry.ts",
    },
    bundle: true,
    platform: "node",
    format: "esm",
    packages: "external",
    target: "node20",
    outfile,
    logLevel: "warning",
  });
  return outfile;
}

console.log(`machine: ${machine()}; ${total} cache nodes as processes, ${changes} changes`);
if (!process.argv.includes("--tsx")) process.env.PROPAGATE_BIN = await bundle();
// One `applied` log line per node and change would be 100 lines through this
// process's pipes per change: warnings only (--log-info keeps them).
if (!process.argv.includes("--log-info")) process.env.PROPAGATE_LOG_LEVEL = "warn";
// A 1 MiB young generation (V8 default 16 MiB) and one GC helper thread: ~15% less RSS
// per process, the same CPU per change (measured with 3 nodes). --node-defaults: none.
if (!process.argv.includes("--node-defaults"))
  process.env.NODE_OPTIONS =
    `${process.env.NODE_OPTIONS ?? ""} --max-semi-space-size=1 --v8-pool-size=1`.trim();
// Imported now: infra/processes.ts reads PROPAGATE_BIN when it loads.
const { spawnNodes } = await import("../infra/processes.ts");
const dir = await mkdtemp(join(tmpdir(), "propagate-fanout-"));
const redis = await startRedis();
const file = join(dir, "topology.json");
await writeFile(file, JSON.stringify(topology(dir, redis.url)));
const t0 = performance.now();
const running = await spawnNodes(file, await loadTopology(file), undefined);
const startS = (performance.now() - t0) / 1000;
try {
  const pids = running.nodes.map((n) => Number(n.extra.pid));
  const rss = await Promise.all(pids.map(rssMiB));
  const nodeRss = rss.slice(1);
  console.log(
    `started ${running.nodes.length} processes in ${startS.toFixed(1)} s; RSS origin ${rss[0]!.toFixed(0)} MiB, per cache node p50 ${q(nodeRss, 0.5).toFixed(0)} MiB, max ${q(nodeRss, 1).toFixed(0)} MiB, sum ${nodeRss.reduce((a, b) => a + b, 0).toFixed(0)} MiB`,
  );
  const { originUrl, token } = running;
  const write = async (i: number) => {
    const res = await fetch(`${originUrl}/v1/zones/example.test/rrsets/bench/TXT`, {
      method: "PUT",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ ttl: 60, data: [`change ${i}`] }),
    });
    if (!res.ok) throw new Error(`PUT: HTTP ${res.status} ${await res.text()}`);
    return { acked: Date.now(), changeId: ((await res.json()) as { changeId: string }).changeId };
  };
  type Status = {
    committedAt: number;
    convergedAt?: number;
    nodes: { syncedAt?: number }[];
  };
  const converge = async (changeId: string): Promise<Status> => {
    const deadline = Date.now() + 60_000;
    for (let failures = 0; ; ) {
      if (Date.now() > deadline) throw new Error(`${changeId} did not converge in 60 s`);
      // A kept-alive connection the loaded origin closed meanwhile: ask again (a few times).
      const res = await fetch(`${originUrl}/v1/changes/${changeId}`).catch((err: Error) => {
        if (++failures > 5) throw err;
        return undefined;
      });
      if (res) {
        const s = (await res.json()) as Status;
        if (s.nodes.length !== total) throw new Error(`${s.nodes.length} receipts, not ${total}`);
        if (s.convergedAt !== undefined) return s;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  for (let i = 0; i < 5; i++) await converge((await write(-i)).changeId); // warm-up
  if (process.argv.includes("--priority")) {
    const { stdout } = await promisify(execFile)("redis-cli", [
      "-p",
      String(redis.port),
      "info",
      "server",
    ]);
    const redisPid = /^process_id:(\d+)/m.exec(stdout)?.[1];
    await promisify(execFile)("renice", ["-n", "-10", "-p", String(pids[0]), redisPid ?? ""]);
    console.log(`priority: origin (pid ${pids[0]}) and redis-server (pid ${redisPid}) at nice -10`);
  }
  const metricsUrls = running.nodes.slice(1).map((n) => `${n.extra.admin ?? n.address}/metrics`);
  const apply0 = await scrapeAll(metricsUrls, "propagate_change_apply_seconds");
  const receipt0 = await scrapeAll([`${originUrl}/metrics`], "propagate_receipt_seconds");
  const redis0 = await redisCpuMs(redis.port);
  const cpu0 = await Promise.all(pids.map(cpuMs));
  const fromAck: number[] = [];
  const fromCommit: number[] = [];
  const first: number[] = [];
  const median: number[] = [];
  const started = performance.now();
  for (let i = 0; i < changes; i++) {
    const { acked, changeId } = await write(i);
    const s = await converge(changeId);
    const synced = s.nodes.map((n) => n.syncedAt! - s.committedAt).sort((a, b) => a - b);
    fromAck.push(s.convergedAt! - acked);
    fromCommit.push(s.convergedAt! - s.committedAt);
    first.push(synced[0]!);
    median.push(synced[Math.floor(synced.length / 2)]!);
  }
  const seconds = (performance.now() - started) / 1000;
  const cpu1 = await Promise.all(pids.map(cpuMs));
  const rssAfter = (await Promise.all(pids.map(rssMiB))).slice(1);
  const redisSpent = ((await redisCpuMs(redis.port)) - redis0) / changes;
  const apply1 = await scrapeAll(metricsUrls, "propagate_change_apply_seconds");
  const receipt1 = await scrapeAll([`${originUrl}/metrics`], "propagate_receipt_seconds");
  const mean = (a: typeof apply0, b: typeof apply0) =>
    ((b.sum - a.sum) / Math.max(1, b.count - a.count)) * 1000;
  const spent = cpu1.map((c, i) => (c - cpu0[i]!) / changes);
  const nodesCpu = spent.slice(1).reduce((a, b) => a + b, 0);
  console.log(`write ack -> last receipt:   ${dist(fromAck)}`);
  console.log(`commit -> last receipt:      ${dist(fromCommit)}`);
  console.log(`commit -> first receipt:     ${dist(first)}`);
  console.log(`commit -> median receipt:    ${dist(median)}`);
  console.log(
    `per node, mean: commit -> applied there ${mean(apply0, apply1).toFixed(1)} ms (bus, decode, verify, apply; node's clock), commit -> receipt at the origin ${mean(receipt0, receipt1).toFixed(1)} ms (+ ack request and the origin's queue)`,
  );
  console.log(
    `CPU per change: origin ${spent[0]!.toFixed(1)} ms, redis ${redisSpent.toFixed(1)} ms, ${total} cache nodes ${nodesCpu.toFixed(1)} ms in all (${((nodesCpu / total) * 1000).toFixed(0)} us each); ${cpus().length} cores`,
  );
  console.log(
    `RSS after the changes: per cache node p50 ${q(rssAfter, 0.5).toFixed(0)} MiB, max ${q(rssAfter, 1).toFixed(0)} MiB, sum ${rssAfter.reduce((a, b) => a + b, 0).toFixed(0)} MiB`,
  );
  console.log(
    `one origin: ${Math.round((changes * total) / seconds)} deliveries/s (changes one at a time, ${(changes / seconds).toFixed(1)} changes/s)`,
  );
} finally {
  await running.close();
  await redis.stop();
  await rm(dir, { recursive: true, force: true });
}
