/**
 * The origin's resolution of one question, in process: microseconds per
 * `resolveQuestion` (origin/resolve.ts) over the simulator's zone, for an
 * answer, a NODATA and an NXDOMAIN. It runs for every question its answer
 * cache does not hold (origin/answer-cache.ts: a first question, one after a
 * change to a name it read) and for every DNS JSON read (`/resolve`), so
 * it is the origin's miss path without the wire; bench/origin-dns.ts is the
 * whole server under dnsperf.
 * Usage: npx tsx bench/origin-resolve.ts [questions=200000] [rounds=5]
 */
import { VirtualClock } from "../core/clock.ts";
import { SIM_NAME, SimOrigin } from "../infra/sim/origin.ts";
import { resolveQuestion } from "../origin/resolve.ts";
import { machine } from "./support.ts";

const N = Number(process.argv[2] ?? 200_000);
const rounds = Number(process.argv[3] ?? 5);

const clock = new VirtualClock(Date.UTC(2026, 10, 30));
const origin = new SimOrigin(clock, { ttl: 300, staleWhileRevalidate: 10, staleIfError: 600 });
await origin.createZone();

console.log(machine());
console.log(`npx tsx bench/origin-resolve.ts ${N} ${rounds}`);
for (const [name, type] of [
  [SIM_NAME, "A"],
  [SIM_NAME, "AAAA"],
  [`absent.${SIM_NAME}`, "A"],
] as const) {
  let best = Number.POSITIVE_INFINITY;
  let rcode = "";
  for (let r = 0; r < rounds; r++) {
    const t = performance.now();
    for (let i = 0; i < N; i++) rcode = resolveQuestion(origin.store, name, type).rcode;
    best = Math.min(best, ((performance.now() - t) * 1000) / N);
  }
  console.log(`${name} ${type} (${rcode}): best ${best.toFixed(2)} us per resolution`);
}
