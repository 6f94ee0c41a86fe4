/**
 * Cache-hit queries per second of one `propagate resolver` process, next to a
 * bare Node UDP server that returns a fixed packet, measured in the same run.
 * Usage: npx tsx bench/resolver-hit.ts [seconds=10] [rounds=2]
 * Starts an origin (sample zone plus 334 names x A/AAAA/TXT, TTL 3600: 1,002
 * queries), a resolver in front of it (DoH), warms every query into the
 * cache, pins both servers to core 0 and dnsperf to core 1 (two cores or
 * more), then alternates dnsperf runs against each for several rounds (the
 * machine is shared, so load drifts) and prints one line per figure, the
 * best round of each, with the ratio.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOriginProcess, startPropagate } from "../test/support/process.ts";
import { type DnsperfResult, dnsperf, figure, machine, pin, startScript } from "./support.ts";

const seconds = Number(process.argv[2] ?? 10);
const rounds = Number(process.argv[3] ?? 2);
const TOKEN = "bench-token-0123";
const NAMES = 334;

const dir = await mkdtemp(join(tmpdir(), "resolver-hit-"));
const origin = await startOriginProcess(dir, TOKEN, ["--sample"]);
const queries: string[] = [];
const rrsets: unknown[] = [];
for (let i = 0; i < NAMES; i++) {
  const name = `h${i}.example.test`;
  for (const [type, data] of [
    ["A", `192.0.2.${i % 256}`],
    ["AAAA", `2001:db8::${i.toString(16)}`],
    ["TXT", `host ${i}`],
  ] as const) {
    rrsets.push({ name, type, ttl: 3600, changetype: "REPLACE", data: [data] });
    queries.push(`${name} ${type}`);
  }
}
const res = await fetch(`${origin.ready.http}/v1/zones/example.test/rrsets`, {
  method: "PATCH",
  headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
  body: JSON.stringify({ rrsets }),
});
if (res.status !== 200) throw new Error(`PATCH: ${res.status} ${await res.text()}`);
const file = join(dir, "queries.txt");
await writeFile(file, `${queries.join("\n")}\n`);

const resolver = await startPropagate([
  "resolver",
  "--dns",
  "127.0.0.1:0",
  "--upstream",
  origin.ready.http!,
  "--token",
  TOKEN,
]);
const fixed = await startScript("fixed-udp-server.ts");

async function metrics(): Promise<string> {
  const res = await fetch(`${resolver.ready.admin}/metrics`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  return res.text();
}
const counter = (text: string, name: string) =>
  Number(new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, "m").exec(text)?.[1]);

try {
  const load = ["-c", "2", "-T", "2", "-q", "200"];
  // Warm-up, before pinning: the origin answers the misses.
  await dnsperf(resolver.ready.dns!, file, ["-n", "1", ...load]);
  await pin(resolver.proc.pid, 0);
  await pin(fixed.pid, 0);
  await pin(process.pid, 1);
  const warm = await metrics();
  const best: Record<"resolver" | "floor", DnsperfResult | undefined> = {
    resolver: undefined,
    floor: undefined,
  };
  for (let round = 1; round <= rounds; round++) {
    for (const [which, addr] of [
      ["resolver", resolver.ready.dns!],
      ["floor", fixed.ready.dns!],
    ] as const) {
      const r = await dnsperf(addr, file, ["-l", String(seconds), ...load]);
      console.error(
        `round ${round} ${which}: ${r.qps.toFixed(0)} qps, lost ${r.lost} (${r.command})`,
      );
      if (!best[which] || r.qps > best[which].qps) best[which] = r;
    }
  }
  const after = await metrics();
  const upstream =
    counter(after, "resolver_upstream_queries_total") -
    counter(warm, "resolver_upstream_queries_total");
  console.log(`machine: ${machine()}`);
  console.log(
    figure(
      "resolver cache hits, UDP",
      best.resolver!.qps,
      "qps",
      `${best.resolver!.latency}; ${queries.length} names, ${upstream} upstream queries while measured`,
      {
        label: "bare Node fixed reply",
        value: best.floor!.qps,
      },
    ),
  );
  console.log(`  (floor latency: ${best.floor!.latency})`);
} finally {
  fixed.stop();
  await resolver.stop();
  await origin.stop();
  await rm(dir, { recursive: true, force: true });
}
