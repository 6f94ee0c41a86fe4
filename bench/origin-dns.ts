/**
 * The origin's authoritative DNS under dnsperf, next to the bare Node floor (a
 * UDP server answering one fixed packet, fixed-udp-server.ts) in the same run.
 * Usage: npx tsx bench/origin-dns.ts [seconds=10] [rounds=2]
 * Starts `propagate origin --sample` plus 1,000 names (A, AAAA, TXT, MX; one
 * batch PATCH each), pins each server to core 0 and dnsperf to core 1 (when
 * there are two cores), warms the answers, then alternates the two servers
 * for `rounds` rounds (load on a shared machine drifts) and prints one line
 * per figure with the ratio to the floor, best round of each.
 *
 * Beside the throughput it prints each server's CPU time per answer (user +
 * system, all threads, from /proc/PID/stat, summed over every round): on a
 * machine shared with other work the qps of a round swings with what else
 * runs, while the CPU a process spends per answer moves much less. With a
 * server bound by its core, qps is the inverse of it, so the ratio of the two
 * CPU costs is the throughput ratio a quiet machine would show.
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startOriginProcess } from "../test/support/process.ts";
import {
  cpuSeconds,
  type DnsperfResult,
  dnsperf,
  figure,
  machine,
  pin,
  startScript,
} from "./support.ts";

const seconds = Number(process.argv[2] ?? 10);
const rounds = Number(process.argv[3] ?? 2);
const TOKEN = "bench-token-0123456789";
const NAMES = 1000;
const TYPES = ["A", "AAAA", "TXT", "MX"] as const;

const dir = await mkdtemp(join(tmpdir(), "origin-dns-bench-"));
const origin = await startOriginProcess(join(dir, "data"), TOKEN, ["--sample"]);
const fixed = await startScript("fixed-udp-server.ts");
try {
  const queries: string[] = [];
  for (const type of TYPES) {
    const rrsets = [];
    for (let i = 0; i < NAMES; i++) {
      const data =
        type === "A"
          ? [`192.0.2.${i % 256}`]
          : type === "AAAA"
            ? [`2001:db8::${i.toString(16)}`]
            : type === "TXT"
              ? [`host ${i}`]
              : [{ preference: 10, exchange: `mail${i % 10}.example.test` }];
      rrsets.push({ name: `h${i}`, type, ttl: 3600, changetype: "REPLACE", data });
      queries.push(`h${i}.example.test ${type}`);
    }
    const res = await fetch(`${origin.ready.http}/v1/zones/example.test/rrsets`, {
      method: "PATCH",
      headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ rrsets }),
    });
    if (res.status !== 200) throw new Error(`PATCH ${type}: ${res.status} ${await res.text()}`);
  }
  // The sample zone's own mix: a CNAME, NXDOMAIN, NODATA, SRV, the apex.
  queries.push(
    "web.example.test A",
    "missing.example.test A",
    "www.example.test TXT",
    "_http._tcp.example.test SRV",
    "example.test MX",
    "example.test SOA",
  );
  const file = join(dir, "queries.txt");
  await writeFile(file, `${queries.join("\n")}\n`);

  await pin(origin.proc.pid, 0);
  await pin(fixed.pid, 0);
  // This script reads dnsperf's output: it belongs with the load generator.
  await pin(process.pid, 1);
  const load = ["-c", "2", "-T", "2", "-q", "200"];
  // Warm-up: every query once (the origin's answer cache fills; JIT warms).
  await dnsperf(origin.ready.dns!, file, ["-n", "1", ...load]);
  const best: Record<"origin" | "floor", DnsperfResult | undefined> = {
    origin: undefined,
    floor: undefined,
  };
  const cpu = { origin: { s: 0, answers: 0 }, floor: { s: 0, answers: 0 } };
  for (let round = 1; round <= rounds; round++) {
    for (const [which, addr, pid] of [
      ["origin", origin.ready.dns!, origin.proc.pid],
      ["floor", fixed.ready.dns!, fixed.pid],
    ] as const) {
      const before = cpuSeconds(pid);
      const r = await dnsperf(addr, file, ["-l", String(seconds), ...load]);
      const used = cpuSeconds(pid) - before;
      cpu[which].s += used;
      cpu[which].answers += r.completed;
      console.error(
        `round ${round} ${which}: ${r.qps.toFixed(0)} qps, lost ${r.lost}, ${((used / r.completed) * 1e6).toFixed(2)} us CPU per answer (${r.command})`,
      );
      if (!best[which] || r.qps > best[which].qps) best[which] = r;
    }
  }
  const perAnswer = (w: "origin" | "floor") => (cpu[w].s / cpu[w].answers) * 1e6;
  const tcp = await dnsperf(origin.ready.dns!, file, ["-l", String(seconds), "-m", "tcp", ...load]);
  const o = best.origin!;
  const f = best.floor!;
  console.log(`machine: ${machine()}`);
  console.log(
    figure("origin authoritative DNS, UDP", o.qps, "qps", o.latency, {
      label: "bare Node fixed reply",
      value: f.qps,
    }),
  );
  console.log(
    `origin authoritative DNS, UDP, CPU per answer: ${perAnswer("origin").toFixed(2)} us vs bare Node fixed reply ${perAnswer("floor").toFixed(2)} us -> ${(perAnswer("floor") / perAnswer("origin")).toFixed(2)}x (as throughput; all rounds)`,
  );
  console.log(figure("origin authoritative DNS, TCP", tcp.qps, "qps", tcp.latency));
  console.log(`  (floor latency: ${f.latency}; ${queries.length} names in the query file)`);
} finally {
  fixed.stop();
  await origin.stop();
  await rm(dir, { recursive: true, force: true });
}
