/**
 * Durable writes per second on a real `propagate origin` process: autocannon
 * drives RRset PUTs (each one a journaled, fsynced change with a new serial)
 * over N connections for a fixed time; then batch PATCHes of 1,000 RRsets
 * under one serial, timed from send to acknowledgement.
 * Usage: npx tsx bench/origin-writes.ts [seconds=10] [connections=50] [batches=10]
 * The origin is pinned to core 0 and wrk to core 1 (with two cores); wrk,
 * not autocannon: on a loaded 2-core machine autocannon itself was the limit.
 *
 * It also prints the origin's CPU time per durable write (user + system, all
 * threads, /proc/PID/stat): on a machine shared with other work the writes/s
 * of a run follow what else runs, while the CPU a write costs moves much
 * less; 1 s divided by it is what one dedicated core could acknowledge.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOriginProcess } from "../test/support/process.ts";
import { cpuSeconds, figure, machine, pin, wrk } from "./support.ts";

const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 50);
const batches = Number(process.argv[4] ?? 10);
const TOKEN = "bench-token-0123456789";

const dir = await mkdtemp(join(tmpdir(), "origin-writes-bench-"));
const origin = await startOriginProcess(dir, TOKEN);
const url = origin.ready.http!;
const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
const created = await fetch(`${url}/v1/zones/bench.test`, { method: "PUT", headers, body: "{}" });
if (created.status !== 201)
  throw new Error(`could not create the bench zone: ${await created.text()}`);
await pin(origin.proc.pid, 0);
await pin(process.pid, 1);

/** wrk PUTting `body` over the run's connections and seconds. */
async function wrkPut(target: string, body: unknown) {
  const script = join(dir, "put.lua");
  await writeFile(
    script,
    [
      'wrk.method = "PUT"',
      `wrk.body = '${JSON.stringify(body)}'`,
      'wrk.headers["Content-Type"] = "application/json"',
      `wrk.headers["Authorization"] = "Bearer ${TOKEN}"`,
      "",
    ].join("\n"),
  );
  return wrk(target, connections, seconds, script);
}

async function journal(): Promise<{ records: number; batches: number }> {
  const health = (await (await fetch(`${url}/healthz`)).json()) as {
    journal: { records: number; batches: number };
  };
  return health.journal;
}

try {
  const before = await journal();
  const cpuBefore = cpuSeconds(origin.proc.pid);
  const r = await wrkPut(`${url}/v1/zones/bench.test/rrsets/www/A`, {
    ttl: 60,
    data: ["192.0.2.1", "192.0.2.2"],
  });
  const cpuUsed = cpuSeconds(origin.proc.pid) - cpuBefore;
  const after = await journal();
  const records = after.records - before.records;
  const fsyncs = after.batches - before.batches;

  // Batch PATCH: 1,000 RRsets under one serial, each batch changing every one of them.
  const times: number[] = [];
  let batchCpu = 0;
  for (let b = 0; b < batches + 2; b++) {
    const rrsets = Array.from({ length: 1000 }, (_, i) => ({
      name: `h${i}`,
      type: "A",
      ttl: 60,
      changetype: "REPLACE",
      data: [`192.0.2.${(i + b) % 256}`],
    }));
    const body = JSON.stringify({ rrsets });
    const c0 = cpuSeconds(origin.proc.pid);
    const t0 = performance.now();
    const res = await fetch(`${url}/v1/zones/bench.test/rrsets`, {
      method: "PATCH",
      headers,
      body,
    });
    await res.text();
    if (res.status !== 200) throw new Error(`batch PATCH answered ${res.status}`);
    // The first two warm the JIT and grow the zone to 1,000 names.
    if (b >= 2) {
      times.push(performance.now() - t0);
      batchCpu += cpuSeconds(origin.proc.pid) - c0;
    }
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;

  console.log(`machine: ${machine()}`);
  console.log(
    figure(
      `durable writes, ${connections} clients`,
      r.rps,
      "writes/s",
      `p50 ${r.p50}, p99 ${r.p99}, ${(records / fsyncs).toFixed(1)} records per fsync, non-2xx ${r.non2xx}`,
      { label: "target", value: 5000 },
    ),
  );
  const cpuPerWrite = (cpuUsed / records) * 1e6;
  console.log(
    `durable writes, CPU per write: ${cpuPerWrite.toFixed(0)} us (all threads; one core at this cost: ${Math.round(1e6 / cpuPerWrite).toLocaleString("en")} writes/s)`,
  );
  console.log(
    figure(
      "batch PATCH of 1,000 RRsets, acknowledged",
      median,
      "ms (median)",
      `min ${times[0]!.toFixed(1)} ms, max ${times.at(-1)!.toFixed(1)} ms over ${times.length}; origin CPU ${((batchCpu / times.length) * 1000).toFixed(0)} ms per batch`,
      {
        label: "target",
        value: 50,
      },
    ),
  );
} finally {
  await origin.stop();
  await rm(dir, { recursive: true, force: true });
}
