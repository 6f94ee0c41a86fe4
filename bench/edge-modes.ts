/**
 * What each propagation mode costs an edge, in process: the time to apply a
 * change event, and the parent requests needed to serve every cached name
 * again afterwards. Also the cost of one zone-wide read repair.
 * Usage: npx tsx bench/edge-modes.ts [names=5000] [changes=1000]
 * The parent is the origin's read routes in process (no sockets), the clock
 * virtual, so the numbers are the engine's own CPU cost.
 */
import dnsPacket from "dns-packet";
import { VirtualClock } from "../core/clock.ts";
import type { PropagationMode, PurgeEvent } from "../core/purge.ts";
import { eventFromFeed } from "../core/sync.ts";
import { Edge } from "../edge/cache.ts";
import { LruStorage } from "../edge/storage-lru.ts";
import { readRoutes } from "../origin/reads.ts";
import { Store } from "../origin/store.ts";

let names = Number(process.argv[2] ?? 5_000);
let changes = Number(process.argv[3] ?? 1_000);
const ZONE = "bench.test";

function paths(i: number): string[] {
  const name = `n${i}.${ZONE}`;
  const q = dnsPacket.encode({ type: "query", id: 0, questions: [{ name, type: "A" }] });
  return [`/resolve?name=${name}&type=A`, `/dns-query?dns=${Buffer.from(q).toString("base64url")}`];
}

async function world(mode: PropagationMode, readRepair = true) {
  const clock = new VirtualClock(Date.UTC(2026, 0, 1));
  const store = new Store({
    clock,
    durability: { append: async (_r, onDurable) => onDurable() },
    changeLogLimit: changes + 10,
    warn: (m) => console.error(m),
  });
  await store.createZone({
    name: ZONE,
    rrsets: Array.from({ length: names }, (_, i) => ({
      name: `n${i}`,
      type: "A" as const,
      ttl: 3600,
      data: [`10.0.${(i >> 8) & 255}.${i & 255}`],
    })),
  });
  const app = readRoutes({ store, clock });
  let parentRequests = 0;
  const edge = new Edge({
    id: "bench",
    parent: "http://parent.test",
    fetch: async (req) => {
      parentRequests++;
      return app.fetch(req);
    },
    clock,
    storage: new LruStorage(1 << 30),
    readRepair,
  });
  const all = Array.from({ length: names }, (_, i) => paths(i)).flat();
  const readAll = async () => {
    const before = parentRequests;
    for (const p of all)
      await (await edge.handle(new Request(`http://edge.test${p}`))).arrayBuffer();
    return parentRequests - before;
  };
  const events: PurgeEvent[] = [];
  store.onCommit((c) => {
    if (c.op === "update") events.push(eventFromFeed(ZONE, c, mode));
  });
  return { store, edge, readAll, events };
}

async function mode(m: Exclude<PropagationMode, "ttl">) {
  const w = await world(m);
  await w.readAll();
  for (let k = 0; k < changes; k++) {
    const i = (k * 7919) % names;
    await w.store.update(ZONE, [
      { changetype: "REPLACE", name: `n${i}`, type: "A", ttl: 3600, data: ["192.0.2.1"] },
    ]);
  }
  const t0 = performance.now();
  for (const e of w.events) w.edge.applyPurge(e);
  const usPerEvent = Math.round(((performance.now() - t0) * 1000) / w.events.length);
  const refetches = await w.readAll();
  return { mode: m, usPerEvent, parentRequestsAfter: refetches };
}

async function readRepair() {
  const w = await world("ttl");
  await w.readAll();
  await w.store.update(ZONE, [
    { changetype: "REPLACE", name: "n0", type: "A", ttl: 3600, data: ["192.0.2.1"] },
  ]);
  w.edge.purge({ url: paths(0)[0]!, mode: "hard" });
  const t0 = performance.now();
  await w.edge.handle(new Request(`http://edge.test${paths(0)[0]}`));
  const markMs = performance.now() - t0;
  const m = w.edge.metrics();
  const revalidations = await w.readAll();
  return {
    readRepairs: m.readRepairs,
    entriesMarked: m.readRepairedEntries,
    fillWithMarkMs: Number(markMs.toFixed(1)),
    parentRequestsAfter: revalidations,
    notModified: w.edge.metrics().notModified,
  };
}

// A small first round warms the JIT; only the second is reported.
const asked = [names, changes] as const;
[names, changes] = [200, 200];
for (const m of ["push", "soft", "invalidate"] as const) await mode(m);
await readRepair();
[names, changes] = asked;
console.log(
  `edge-modes: ${names} names cached as JSON and DoH (${2 * names} entries), ${changes} changes`,
);
for (const m of ["push", "soft", "invalidate"] as const) console.log(JSON.stringify(await mode(m)));
console.log(JSON.stringify({ readRepair: await readRepair() }));
