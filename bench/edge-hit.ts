/**
 * Cache-hit requests per second of one `propagate edge` process, next to a
 * bare Hono hello-world on @hono/node-server, measured in the same run with
 * autocannon (50 connections).
 * Usage: npx tsx bench/edge-hit.ts [seconds=10] [connections=50]
 * Starts an origin, writes one RRset with TTL 3600 (so the whole run is
 * hits), starts an edge in front of it, warms the entry, then loads each
 * server for a fixed duration and prints a summary.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startPropagate } from "../test/support/process.ts";

const run = promisify(execFile);
const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 50);
const TOKEN = "bench-token-0123";
const AUTOCANNON = fileURLToPath(new URL("../node_modules/.bin/autocannon", import.meta.url));

interface Result {
  requests: { average: number; total: number };
  latency: { average: number; p99: number };
  non2xx: number;
  errors: number;
}

async function load(url: string): Promise<Result> {
  const { stdout } = await run(
    AUTOCANNON,
    ["-c", String(connections), "-d", String(seconds), "-j", url],
    { maxBuffer: 1 << 24 },
  );
  return JSON.parse(stdout) as Result;
}

/** Starts a plain node script that prints `ready {"http":...}`. */
function startScript(path: string): Promise<{ url: string; stop: () => void }> {
  const proc = spawn(process.execPath, ["--import", "tsx", path], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /^ready (\{.*\})$/m.exec(out);
      if (m) resolve({ url: JSON.parse(m[1]!).http, stop: () => proc.kill("SIGTERM") });
    });
    proc.once("exit", (code) => reject(new Error(`${path} exited with ${code}: ${out}`)));
  });
}

const dir = await mkdtemp(join(tmpdir(), "edge-hit-"));
const origin = await startPropagate([
  "origin",
  "--http",
  "127.0.0.1:0",
  "--dns",
  "127.0.0.1:0",
  "--data",
  dir,
  "--sample",
  "--token",
  TOKEN,
]);
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
const hello = await startScript(fileURLToPath(new URL("./hello-hono.ts", import.meta.url)));
try {
  const target = `${edge.ready.http}/resolve?name=bench.example.test&type=A`;
  await (await fetch(target)).arrayBuffer();
  const check = await fetch(target);
  await check.arrayBuffer();
  if (!check.headers.get("cache-status")?.includes("hit")) {
    throw new Error(`warm-up did not produce a hit: ${check.headers.get("cache-status")}`);
  }
  const baseline = await load(hello.url);
  const hits = await load(target);
  const metrics = await (await fetch(`${edge.ready.http}/metrics`)).json();
  const row = (name: string, r: Result) =>
    `| ${name} | ${Math.round(r.requests.average)} | ${r.latency.average} | ${r.latency.p99} | ${r.non2xx + r.errors} |`;
  console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, node ${process.version}`);
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
