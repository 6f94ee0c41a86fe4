/**
 * Cache-hit requests per second of one `propagate edge` process, next to a
 * bare Hono hello-world on @hono/node-server, measured in the same run with
 * autocannon (50 connections).
 * Usage: npx tsx bench/edge-hit.ts [seconds=10] [connections=50]
 * Starts an origin, writes one RRset with TTL 3600 (so the whole run is
 * hits), starts an edge in front of it, warms the entry, then loads each
 * server for a fixed duration and prints a summary.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOriginProcess, startPropagate } from "../test/support/process.ts";
import { type AutocannonResult, autocannon, machine, startScript } from "./support.ts";

const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 50);
const TOKEN = "bench-token-0123";

const load = (url: string) => autocannon(["-c", String(connections), "-d", String(seconds), url]);

const dir = await mkdtemp(join(tmpdir(), "edge-hit-"));
const origin = await startOriginProcess(dir, TOKEN, ["--sample"]);
const put = await fetch(`${origin.ready.http}/v1/zones/example.test/rrsets/bench.example.test/A`, {
  method: "PUT",
  headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
  body: JSON.stringify({ ttl: 3600, data: ["192.0.2.80"] }),
});
if (put.status !== 200)
  throw new Error(`PUT bench.example.test: ${put.status} ${await put.text()}`);
const edge = await startPropagate([
  "edge",
  "--http",
  "127.0.0.1:0",
  "--parent",
  origin.ready.http!,
  "--id",
  "bench-edge",
]);
const hello = await startScript("hello-hono.ts");
try {
  const target = `${edge.ready.http}/resolve?name=bench.example.test&type=A`;
  await (await fetch(target)).arrayBuffer();
  const check = await fetch(target);
  await check.arrayBuffer();
  if (!check.headers.get("cache-status")?.includes("hit")) {
    throw new Error(`warm-up did not produce a hit: ${check.headers.get("cache-status")}`);
  }
  const baseline = await load(hello.ready.http!);
  const hits = await load(target);
  const metrics = await (
    await fetch(`${edge.ready.http}/metrics`, { headers: { accept: "application/json" } })
  ).json();
  const row = (name: string, r: AutocannonResult) =>
    `| ${name} | ${Math.round(r.requests.average)} | ${r.latency.average} | ${r.latency.p99} | ${r.non2xx + r.errors} |`;
  console.log(`machine: ${machine()}`);
  console.log(`autocannon -c ${connections} -d ${seconds}`);
  console.log("| server | req/s (mean) | latency mean ms | latency p99 ms | non-2xx + errors |");
  console.log("|---|---|---|---|---|");
  console.log(row("bare Hono hello-world", baseline));
  console.log(row("propagate edge, cache hit", hits));
  console.log(`edge metrics after the run: ${JSON.stringify(metrics)}`);
} finally {
  hello.stop();
  await edge.stop();
  await origin.stop();
  await rm(dir, { recursive: true, force: true });
}
