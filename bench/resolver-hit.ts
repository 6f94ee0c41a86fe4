/**
 * Cache-hit queries per second of one `propagate resolver` process, next to a
 * bare Node UDP server that returns a fixed packet, measured in the same run.
 * Usage: npx tsx bench/resolver-hit.ts [seconds=10] [rounds=2]
 * Starts an origin (sample zone plus 100 names x A/AAAA/TXT, TTL 3600), a
 * resolver in front of it (DoH), warms every query into the cache, then runs
 * dnsperf for a fixed duration against each server, alternating for several
 * rounds (the machine is shared, so load drifts), and prints a summary.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { startOriginProcess, startPropagate } from "../test/support/process.ts";
import { startScript } from "./support.ts";

const run = promisify(execFile);
const seconds = Number(process.argv[2] ?? 10);
const rounds = Number(process.argv[3] ?? 2);
const TOKEN = "bench-token-0123";
const NAMES = 100;

const dir = await mkdtemp(join(tmpdir(), "resolver-hit-"));
const origin = await startOriginProcess(dir, TOKEN, ["--sample"]);
const queries: string[] = [];
for (let i = 0; i < NAMES; i++) {
  const name = `h${i}.example.test`;
  for (const [type, data] of [
    ["A", `192.0.2.${i}`],
    ["AAAA", `2001:db8::${i.toString(16)}`],
    ["TXT", `host ${i}`],
  ] as const) {
    const res = await fetch(`${origin.ready.http}/v1/zones/example.test/rrsets/${name}/${type}`, {
      method: "PUT",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ ttl: 3600, data: [data] }),
    });
    if (res.status !== 200)
      throw new Error(`PUT ${name} ${type}: ${res.status} ${await res.text()}`);
    queries.push(`${name} ${type}`);
  }
}
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

async function dnsperf(addr: string, extra: string[]): Promise<string> {
  const [host, port] = addr.split(":") as [string, string];
  const args = ["-s", host, "-p", port, "-d", file, "-c", "8", "-q", "200", ...extra];
  const { stdout } = await run("dnsperf", args, { timeout: (seconds + 60) * 1000 });
  return `dnsperf ${args.join(" ")}\n${stdout}`;
}

await dnsperf(resolver.ready.dns!, ["-n", "1"]);
const warm = await metrics();
const summary: string[] = [];
const servers = [
  ["resolver (cache hits)", resolver.ready.dns!],
  ["fixed-packet Node UDP server", fixed.ready.dns!],
] as const;
for (let round = 1; round <= rounds; round++) {
  for (const [label, addr] of servers)
    summary.push(`| ${round} | ${label} | ${await measure(addr)}`);
}

async function measure(addr: string): Promise<string> {
  const out = await dnsperf(addr, ["-l", String(seconds)]);
  const pick = (l: string) => new RegExp(`${l}:\\s+(.*)`).exec(out)?.[1]?.trim();
  console.log(out.split("\n")[0]);
  return `${pick("Queries completed")} | ${pick("Queries lost")} | ${pick("Queries per second")} | ${pick("Average Latency \\(s\\)")} |`;
}
const after = await metrics();
console.log(
  `\n${queries.length} queries in the file; upstream queries during warm-up ${counter(warm, "resolver_upstream_queries_total")}, during the measured run ${counter(after, "resolver_upstream_queries_total") - counter(warm, "resolver_upstream_queries_total")}; cache hits ${counter(after, "resolver_cache_hits_total")}`,
);
console.log(
  "| round | server | queries completed | lost | qps | average latency (s) |\n|---|---|---|---|---|---|",
);
console.log(summary.join("\n"));

fixed.stop();
await resolver.stop();
await origin.stop();
await rm(dir, { recursive: true, force: true });
