/**
 * Durable writes per second on a real `propagate origin` process: autocannon
 * drives RRset PUTs (each one a journaled, fsynced change with a new serial)
 * over N connections for a fixed time.
 * Usage: npx tsx bench/origin-writes.ts [seconds=10] [connections=50]
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOriginProcess } from "../test/support/process.ts";
import { autocannon } from "./support.ts";

const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 50);
const TOKEN = "bench-token-0123456789";

const dir = await mkdtemp(join(tmpdir(), "origin-writes-bench-"));
const origin = await startOriginProcess(dir, TOKEN);
const url = origin.ready.http!;
const headers = { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" };
const created = await fetch(`${url}/v1/zones/bench.test`, { method: "PUT", headers, body: "{}" });
if (created.status !== 201)
  throw new Error(`could not create the bench zone: ${await created.text()}`);

try {
  const r = await autocannon([
    "-c",
    String(connections),
    "-d",
    String(seconds),
    "-m",
    "PUT",
    "-H",
    `authorization=Bearer ${TOKEN}`,
    "-H",
    "content-type=application/json",
    "-b",
    JSON.stringify({ ttl: 60, data: ["192.0.2.1", "192.0.2.2"] }),
    `${url}/v1/zones/bench.test/rrsets/www/A`,
  ]);
  const zone = (await (await fetch(`${url}/v1/zones/bench.test`)).json()) as { serial: number };
  const health = (await (await fetch(`${url}/healthz`)).json()) as {
    journal: { records: number; batches: number };
  };
  console.log(
    `durable writes: ${r.requests.total} in ${seconds} s over ${connections} connections`,
  );
  console.log(`writes/s (mean): ${r.requests.average.toFixed(0)}`);
  console.log(
    `latency ms: mean ${r.latency.average.toFixed(2)}  p50 ${r.latency.p50}  p99 ${r.latency.p99}  max ${r.latency.max}`,
  );
  const { records, batches } = health.journal;
  console.log(
    `journal: ${records} records in ${batches} fsyncs (${(records / batches).toFixed(1)} per fsync)`,
  );
  console.log(`non-2xx: ${r.non2xx}  errors: ${r.errors}  final zone serial: ${zone.serial}`);
} finally {
  await origin.stop();
  await rm(dir, { recursive: true, force: true });
}
