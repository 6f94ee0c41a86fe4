/**
 * Load on the origin's authoritative DNS with dnsperf, over UDP and TCP.
 * Usage: npx tsx bench/origin-dns.ts [seconds=10]
 * Serves the sample zone in-process on 127.0.0.1 and prints dnsperf's summary per transport.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import type { RRset } from "../core/records.ts";
import { startAuthoritativeDns } from "../origin/dns-server.ts";
import { SAMPLE_ZONE_FILE } from "../origin/sample.ts";
import { Zone } from "../origin/zone.ts";
import { parseZoneFile } from "../origin/zonefile.ts";

const seconds = Number(process.argv[2] ?? 10);
const { origin, rrsets } = parseZoneFile(SAMPLE_ZONE_FILE);
const zone = new Zone(origin, rrsets.find((s) => s.type === "SOA") as RRset<"SOA">);
for (const set of rrsets) if (set.type !== "SOA") zone.put(set);
const server = await startAuthoritativeDns(
  { findZone: (name) => (name === origin || name.endsWith(`.${origin}`) ? zone : undefined) },
  { host: "127.0.0.1", port: 0 },
);

// A mix: positive answers of several types, a CNAME chain, NXDOMAIN, NODATA.
const queries = [
  "www.example.test A",
  "www.example.test AAAA",
  "example.test MX",
  "example.test TXT",
  "web.example.test A",
  "missing.example.test A",
  "www.example.test TXT",
  "_http._tcp.example.test SRV",
];
const dir = await mkdtemp(join(tmpdir(), "origin-dns-bench-"));
const file = join(dir, "queries.txt");
await writeFile(file, `${queries.join("\n")}\n`);

for (const mode of ["udp", "tcp"]) {
  const args = [
    "-s",
    "127.0.0.1",
    "-p",
    String(server.port),
    "-m",
    mode,
    "-d",
    file,
    "-l",
    String(seconds),
    "-c",
    "8",
    "-q",
    "200",
  ];
  const { stdout } = await promisify(execFile)("dnsperf", args, { timeout: (seconds + 30) * 1000 });
  const pick = (label: string) => new RegExp(`${label}:\\s+(.*)`).exec(stdout)?.[1]?.trim();
  console.log(`dnsperf ${args.join(" ")}`);
  console.log(`  ${mode}: completed ${pick("Queries completed")}, lost ${pick("Queries lost")}`);
  console.log(
    `  ${mode}: ${pick("Queries per second")} qps, average latency ${pick("Average Latency \\(s\\)")}`,
  );
}
await server.close();
await rm(dir, { recursive: true });
