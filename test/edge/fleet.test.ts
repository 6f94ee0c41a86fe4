/**
 * The fleet floor Durable Object (edge/floor-do.ts) in workerd: its log, its
 * pages, its gap answer, and an isolate that fell behind the log resyncing
 * by zone; and `wrangler deploy --dry-run` bundling the Worker with its
 * Durable Object binding and migration (infra/wrangler.toml).
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { Miniflare } from "miniflare";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MemoryBus } from "../../core/bus.ts";
import { VirtualClock } from "../../core/clock.ts";
import type { PurgeEvent } from "../../core/purge.ts";
import { FleetFloorClient, type FloorNamespace } from "../../edge/fleet.ts";
import { PAGE, type SinceAnswer } from "../../edge/floor-do.ts";
import { predict, predictOptions } from "../../infra/predict.ts";
import { parseTopology } from "../../infra/topology.ts";
import { type RunningOrigin, startOrigin } from "../../origin/server.ts";
import { cacheStatusOf } from "../support/cache-status.ts";
import { bundleWorker } from "../support/worker.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));
/** A short log (FLOOR_LOG), so falling behind it takes few events. */
const MAX_LOG = PAGE + 20;
const www = "http://edge.test/resolve?name=www.example.test&type=A";
let dir: string;
let origin: RunningOrigin;
let mf: Miniflare;
let floor: { fetch(input: string, init?: RequestInit): Promise<Response> };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "fleet-"));
  const script = await bundleWorker(dir);
  origin = await startOrigin(
    {
      http: { host: "127.0.0.1", port: 0 },
      dns: { host: "127.0.0.1", port: 0 },
      dataDir: join(dir, "origin"),
      sample: true,
      token: "fleet-test-token",
    },
    { log: () => {}, bus: new MemoryBus() },
  );
  mf = new Miniflare({
    modules: true,
    scriptPath: script,
    modulesRoot: dir,
    compatibilityDate: "2026-04-01",
    bindings: {
      PARENT: origin.httpUrl,
      EDGE_ID: "w",
      FLEET: "f",
      FLOOR_CACHE_MS: "0",
      FLOOR_LOG: String(MAX_LOG),
    },
    durableObjects: { FLOOR: { className: "FleetFloor", useSQLite: true } },
  });
  await mf.ready;
  const ns = (await mf.getDurableObjectNamespace("FLOOR")) as unknown as FloorNamespace;
  floor = ns.get(ns.idFromName("f"));
}, 60_000);

afterAll(async () => {
  await mf?.dispose();
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

function event(serial: number, n: number): PurgeEvent {
  return {
    changeId: `chg_${n}`,
    zone: "example.test",
    serial,
    keys: ["nowhere.example.test"],
    mode: "invalidate",
    ts: 0,
  };
}

async function since(after: number | string): Promise<SinceAnswer & { status: number }> {
  const res = await floor.fetch(`https://fleet-floor/since?after=${after}`);
  return { status: res.status, ...((await res.json()) as SinceAnswer) };
}

describe("the fleet floor Durable Object", () => {
  it("keeps the last FLOOR_LOG events in order, pages them, and answers a gap with each zone's serial", async () => {
    // The isolate fills www at the zone's serial and reads the (empty) log.
    await (await mf.dispatchFetch(www)).arrayBuffer();
    expect(cacheStatusOf(await mf.dispatchFetch(www), "w")).toMatch(/^w; hit/);
    const serial = Number((await mf.dispatchFetch(www)).headers.get("x-serial"));

    for (let n = 1; n <= MAX_LOG + 1; n++) {
      const res = await floor.fetch("https://fleet-floor/events", {
        method: "POST",
        body: JSON.stringify(event(serial, n)),
      });
      expect(await res.json()).toEqual({ seq: n });
    }
    const tail = await since(MAX_LOG - 2);
    expect(tail.events?.map((e) => [e.seq, e.event.changeId])).toEqual([
      [MAX_LOG - 1, `chg_${MAX_LOG - 1}`],
      [MAX_LOG, `chg_${MAX_LOG}`],
      [MAX_LOG + 1, `chg_${MAX_LOG + 1}`],
    ]);
    expect(tail.more).toBeUndefined();
    const page = await since(1);
    expect(page.events).toHaveLength(PAGE);
    expect(page.events?.[0]?.seq).toBe(2);
    expect(page.more).toBe(true);
    // Event 1 was trimmed: a reader at 0 is behind the log.
    expect(await since(0)).toEqual({
      status: 200,
      seq: MAX_LOG + 1,
      gap: true,
      zones: { "example.test": serial },
    });
    expect(await since(MAX_LOG + 5)).toMatchObject({ gap: true });
    expect(await since("x")).toMatchObject({ status: 400, field: "after" });

    // The isolate is behind the log: it resyncs the zone (drops www) before serving.
    const after = await mf.dispatchFetch(www);
    expect(cacheStatusOf(after, "w")).toMatch(/^w; fwd=uri-miss/);
    expect(cacheStatusOf(await mf.dispatchFetch(www), "w")).toMatch(/^w; hit/);
  }, 60_000);
});

describe("an isolate's cache of the fleet floor (virtual clock)", () => {
  it("asks at most once per cacheMs, timed from the question, and applies each event once", async () => {
    const ns = (await mf.getDurableObjectNamespace("FLOOR")) as unknown as FloorNamespace;
    const clock = new VirtualClock(0);
    const isolate = (applied: string[]) =>
      new FleetFloorClient({
        ns,
        fleet: "virtual",
        cacheMs: 1000,
        target: { applyPurge: (e) => applied.push(e.changeId) },
        now: () => clock.now(),
      });
    const seenA: string[] = [];
    const seenB: string[] = [];
    const a = isolate(seenA);
    const b = isolate(seenB);
    await b.fresh(); // b asks at t=0: the log is empty
    // a takes event 1 from the relay: it applied it, then stores it.
    seenA.push("chg_1");
    await a.record(event(1, 1));
    clock.advanceSync(999);
    await b.fresh();
    expect(seenB).toEqual([]); // b trusts its t=0 answer for 1000 ms
    clock.advanceSync(1);
    await b.fresh();
    expect(seenB).toEqual(["chg_1"]);
    await a.fresh();
    expect(seenA).toEqual(["chg_1"]); // not applied a second time
    await b.record(event(2, 2));
    seenB.push("chg_2");
    clock.advanceSync(1000);
    await Promise.all([a.fresh(), b.fresh()]);
    expect(seenA).toEqual(["chg_1", "chg_2"]);
    expect(seenB).toEqual(["chg_1", "chg_2"]);
  });
});

describe("an isolate whose fleet floor cannot be asked", () => {
  it("trusts nothing it holds (revalidates every entry) and answers a relayed event 503", async () => {
    const down = new Miniflare({
      workers: [
        {
          name: "edge",
          modules: true,
          scriptPath: join(dir, "worker.mjs"),
          modulesRoot: dir,
          compatibilityDate: "2026-04-01",
          bindings: { PARENT: origin.httpUrl, EDGE_ID: "d", TOKEN: "fleet-node-token" },
          durableObjects: { FLOOR: { className: "Down", scriptName: "down" } },
        },
        {
          // A Durable Object that is there but failing, as during an outage.
          name: "down",
          modules: true,
          compatibilityDate: "2026-04-01",
          script: `export class Down { fetch() { return new Response("overloaded", { status: 503 }); } }
            export default { fetch() { return new Response("down"); } };`,
          durableObjects: { DOWN: "Down" },
        },
      ],
    });
    try {
      await (await down.dispatchFetch(www)).arrayBuffer();
      const again = await down.dispatchFetch(www);
      expect(cacheStatusOf(again, "d")).toMatch(/^d; fwd=stale/);
      await again.arrayBuffer();
      const relayed = await down.dispatchFetch("http://edge.test/purge", {
        method: "POST",
        headers: { authorization: "Bearer fleet-node-token", "content-type": "application/json" },
        body: JSON.stringify({ event: event(1, 1) }),
      });
      expect(relayed.status).toBe(503);
      expect(await relayed.json()).toMatchObject({
        error: "fleet floor unavailable",
        reason: expect.stringMatching(/chg_1 .*HTTP 503/),
      });
    } finally {
      await down.dispose();
    }
  }, 30_000);
});

describe("FLOOR_CACHE_MS", () => {
  it("refuses more than the relay waits for (4000 ms), naming the var", async () => {
    const bad = new Miniflare({
      modules: true,
      scriptPath: join(dir, "worker.mjs"),
      modulesRoot: dir,
      compatibilityDate: "2026-04-01",
      bindings: { PARENT: origin.httpUrl, FLOOR_CACHE_MS: "5000" },
      durableObjects: { FLOOR: { className: "FleetFloor", useSQLite: true } },
    });
    try {
      const res = await bad.dispatchFetch(www);
      expect(res.status).toBe(500);
      expect(await res.text()).toMatch(/set the FLOOR_CACHE_MS var to at most 4000 ms/);
    } finally {
      await bad.dispose();
    }
  }, 30_000);
});

describe("wrangler deploy --dry-run", () => {
  it("bundles the Worker with the FLOOR Durable Object binding and exports FleetFloor", async () => {
    const out = join(dir, "wrangler-out");
    const { stdout } = await promisify(execFile)(
      join(root, "node_modules/.bin/wrangler"),
      ["deploy", "--dry-run", "--config", "infra/wrangler.toml", "--outdir", out],
      { cwd: root, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1" } },
    );
    expect(stdout).toMatch(/env\.FLOOR \(FleetFloor\)\s+Durable Object/);
    const bundle = await readFile(join(out, "worker.js"), "utf8");
    expect(bundle).toMatch(/export\s*\{[^}]*FleetFloor/);
  }, 60_000);
});

describe("the predictor's bound for Worker fleet edges", () => {
  const t = parseTopology({
    defaults: { link: { latency: { kind: "fixed", ms: 5 } } },
    edges: [{ id: "edge", parent: "origin" }],
    resolvers: [{ id: "res", upstream: "edge" }],
  });
  const at = (o: Parameters<typeof predictOptions>[1]) =>
    new Map(
      predict(t, predictOptions(t, { ttlSec: 60, probeMs: 0, ...o })).map((p) => [p.nodeId, p]),
    );

  it("adds FLOOR_CACHE_MS to an edge's bound and spreads its CDF over it; resolvers and ttl mode unchanged", () => {
    const node = at({ mode: "invalidate" });
    const fleet = at({ mode: "invalidate", workerFloorCacheMs: 1000 });
    expect(fleet.get("edge")!.boundMs).toBe(node.get("edge")!.boundMs + 1000);
    expect(fleet.get("edge")!.boundNotes.join()).toMatch(/Worker fleet: \+ 1000 ms/);
    // Fixed 5 ms links: a Node edge is fresh after one bus link and one refetch; a fleet's
    // isolate then waits U(0, 1000 ms) more for its next read of the floor.
    const t0 = node.get("edge")!.boundMs;
    expect(node.get("edge")!.cdf(t0)).toBe(1);
    expect(fleet.get("edge")!.cdf(t0 + 500)).toBeCloseTo(0.5, 1);
    expect(fleet.get("res")!.boundMs).toBe(node.get("res")!.boundMs);
    const ttl = at({ mode: "ttl" });
    expect(at({ mode: "ttl", workerFloorCacheMs: 1000 }).get("edge")!.boundMs).toBe(
      ttl.get("edge")!.boundMs,
    );
  });
});
