/**
 * The simulator's refresh wave in miniature, in process: microseconds per
 * `no-cache` request (a resolver's prefetch, RFC 9111 §5.2.1.4) through an
 * edge and its regional, each revalidating with a 304, on a virtual clock.
 * The edges are the simulator's (`SimEdge`, answers carried as
 * `HopResponse`s); the origin is a function answering as the origin's DoH
 * route does (Cache-Control, ETag = serial, X-Serial, Surrogate-Key, Date).
 * This is the engines' share of a wave (bench/results/simulate.md), without
 * links, resolvers or the observer: what a change to the edge's
 * revalidation path buys, measured to a few percent where the whole hour
 * varies by ten.
 * Usage: npx tsx bench/sim-revalidate.ts [requests=100000] [rounds=5]
 */
import { VirtualClock } from "../core/clock.ts";
import { LruStorage } from "../edge/storage-lru.ts";
import { calibrateHops, HopResponse, SimEdge } from "../infra/sim/hop.ts";
import { machine } from "./support.ts";

const N = Number(process.argv[2] ?? 100_000);
const rounds = Number(process.argv[3] ?? 5);

await calibrateHops();
const clock = new VirtualClock(Date.UTC(2026, 10, 30));
const body = new Uint8Array(64).fill(7);
const serial = 5;
const etag = `"${serial}"`;
const origin = async (req: Request): Promise<Response> => {
  const headers: Record<string, string> = {
    "cache-control": "max-age=300, stale-while-revalidate=10",
    "content-type": "application/dns-message",
    date: new Date(clock.now()).toUTCString(),
    etag,
    "surrogate-key": "zone:example.test name:www.example.test",
    "x-serial": String(serial),
    "x-zone": "example.test",
  };
  const r =
    req.headers.get("if-none-match") === etag
      ? { status: 304, headers, body: null }
      : { status: 200, headers: { ...headers, "content-length": "64" }, body };
  return new HopResponse(r) as unknown as Response;
};
const carried = { hops: 0 };
const storage = () => new LruStorage(1 << 20);
const regional = new SimEdge(
  { id: "regional-1", parent: "http://origin", fetch: origin, clock, storage: storage() },
  carried,
);
// Ten edges under one regional, asked in turn, as a wave reaches them.
const edges = Array.from(
  { length: 10 },
  (_, i) =>
    new SimEdge(
      {
        id: `edge-${i}`,
        parent: "http://regional-1",
        fetch: (r: Request) => regional.handle(r),
        clock,
        storage: storage(),
      },
      carried,
    ),
);
const url = "http://edge/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlBHRlc3QAAAEAAQ";
const accept = "application/dns-message";
const fill = new Request(url, { headers: { accept } });
const prefetch = new Request(url, { headers: { accept, "cache-control": "no-cache" } });
for (const e of edges) await (await e.handle(fill)).arrayBuffer();

console.log(machine());
console.log(`npx tsx bench/sim-revalidate.ts ${N} ${rounds}`);
let best = Number.POSITIVE_INFINITY;
for (let r = 0; r < rounds; r++) {
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    clock.advanceSync(3);
    const res = await edges[i % edges.length]!.handle(prefetch);
    if (res.status !== 200) throw new Error(`edge answered ${res.status}`);
    await res.arrayBuffer();
  }
  const us = ((performance.now() - t0) * 1000) / N;
  best = Math.min(best, us);
  console.log(`round ${r + 1}: ${us.toFixed(2)} us per revalidated request`);
}
console.log(`best: ${best.toFixed(2)} us per request (edge and regional each revalidate; 304s)`);
