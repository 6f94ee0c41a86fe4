/**
 * Cache-hit requests per second of one `propagate edge` process, next to a
 * bare Hono server returning a JSON answer from memory (hello-hono.ts),
 * measured in the same run with wrk (-t1, 50 connections).
 * Usage: npx tsx bench/edge-hit.ts [seconds=10] [connections=50] [rounds=2]
 * Starts an origin, writes 1,000 RRsets with TTL 3600 (one PATCH), starts
 * an edge in front of it, warms all 1,000 URLs, pins both servers to core 0
 * and wrk to core 1 (two cores or more), then alternates the two for
 * `rounds` rounds and prints one line per figure, best round of each.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOriginProcess, startPropagate } from "../test/support/process.ts";
import { figure, machine, pin, startScript, type WrkResult, wrk } from "./support.ts";

const seconds = Number(process.argv[2] ?? 10);
const connections = Number(process.argv[3] ?? 50);
const rounds = Number(process.argv[4] ?? 2);
const TOKEN = "bench-token-0123";
const NAMES = 1000;

const dir = await mkdtemp(join(tmpdir(), "edge-hit-"));
const origin = await startOriginProcess(dir, TOKEN, ["--sample"]);
const rrsets = Array.from({ length: NAMES }, (_, i) => ({
  name: `h${i}`,
  type: "A",
  ttl: 3600,
  changetype: "REPLACE",
  data: [`192.0.2.${i % 256}`],
}));
const put = await fetch(`${origin.ready.http}/v1/zones/example.test/rrsets`, {
  method: "PATCH",
  headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
  body: JSON.stringify({ rrsets }),
});
if (put.status !== 200) throw new Error(`PATCH: ${put.status} ${await put.text()}`);
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
  const paths = rrsets.map((r) => `/resolve?name=${r.name}.example.test&type=A`);
  for (const p of paths) await (await fetch(`${edge.ready.http}${p}`)).arrayBuffer();
  const check = await fetch(`${edge.ready.http}${paths[0]}`);
  await check.arrayBuffer();
  if (!check.headers.get("cache-status")?.includes("hit")) {
    throw new Error(`warm-up did not produce a hit: ${check.headers.get("cache-status")}`);
  }
  // wrk walks the 1,000 URLs in turn.
  const script = join(dir, "paths.lua");
  await writeFile(
    script,
    [
      `local paths = { ${paths.map((p) => `"${p}"`).join(", ")} }`,
      "local i = 0",
      "request = function()",
      "  i = i % #paths + 1",
      '  return wrk.format("GET", paths[i])',
      "end",
      "",
    ].join("\n"),
  );
  await pin(edge.proc.pid, 0);
  await pin(hello.pid, 0);
  await pin(process.pid, 1);
  const before = await (await fetch(`${edge.ready.http}/metrics`)).text();
  const best: Record<"edge" | "hono", WrkResult | undefined> = { edge: undefined, hono: undefined };
  for (let round = 1; round <= rounds; round++) {
    for (const [which, base] of [
      ["edge", edge.ready.http!],
      ["hono", hello.ready.http!],
    ] as const) {
      const r = await wrk(base, connections, seconds, script);
      console.error(
        `round ${round} ${which}: ${r.rps} rps, p99 ${r.p99}, non-2xx ${r.non2xx} (${r.command})`,
      );
      if (!best[which] || r.rps > best[which].rps) best[which] = r;
    }
  }
  const after = await (await fetch(`${edge.ready.http}/metrics`)).text();
  const misses = (t: string) =>
    [...t.matchAll(/^edge_cache_misses_total\S* (\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0);
  const e = best.edge!;
  const h = best.hono!;
  console.log(`machine: ${machine()}`);
  console.log(
    figure(
      "edge cache hits",
      e.rps,
      "rps",
      `p50 ${e.p50}, p99 ${e.p99}, non-2xx ${e.non2xx}; ${NAMES} URLs, ${misses(after) - misses(before)} misses while measured`,
      {
        label: "bare Hono JSON from memory",
        value: h.rps,
      },
    ),
  );
  console.log(`  (bare Hono latency: p50 ${h.p50}, p99 ${h.p99})`);
} finally {
  hello.stop();
  await edge.stop();
  await origin.stop();
  await rm(dir, { recursive: true, force: true });
}
