import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it, vi } from "vitest";
import { type FuzzOutcome, fuzz, fuzzCase, fuzzLine, fuzzOptions } from "../../infra/sim/fuzz.ts";
import { generateTopology } from "../../infra/sim/generate.ts";
import { packNodes, unpackNodes } from "../../infra/sim/packed-nodes.ts";
import {
  boundsOf,
  predictRun,
  type SimNodeResult,
  type SimOptions,
  type SimResult,
  simulate,
} from "../../infra/sim/run.ts";
import {
  heapGrowthFlag,
  prepareWorkers,
  type ShardMessage,
  type ShardResult,
  SimWorker,
  serializedOptions,
  simulateSharded,
  splitTopology,
  TSX_WORKER,
  WindowBarrier,
  workerFlags,
  youngGenerationMb,
} from "../../infra/sim/shards.ts";
import { loadTopology, type Topology } from "../../infra/topology.ts";

const run = promisify(execFile);
const bin = fileURLToPath(new URL("../../bin/propagate.mjs", import.meta.url));
const defaultPath = fileURLToPath(new URL("../../infra/topologies/default.json", import.meta.url));
const internet = fileURLToPath(new URL("../../infra/topologies/internet.json", import.meta.url));

/** Child processes of this one still running or not yet reaped (the simulator's workers). */
const children = () => process.getActiveResourcesInfo().filter((r) => r === "ProcessWrap").length;

/** What a node's run decides; events and held origin answers count the process, not the nodes. */
const strip = (r: SimResult) => ({
  nodes: r.nodes,
  load: r.originLoad,
  failures: r.failures,
  restarts: r.restarts,
  violation: r.violation,
  predicted: r.predicted.map((p) => [p.nodeId, p.boundMs]),
  windowMs: r.windowMs,
});

/** The tier-1 node (child of the origin) above each node. */
function tops(t: Topology): Map<string, string> {
  const parent = new Map<string, string>([
    ...t.edges.map((e): [string, string] => [e.id, e.parent]),
    ...t.resolvers.map((r): [string, string] => [r.id, r.upstream]),
  ]);
  const out = new Map<string, string>();
  for (const id of parent.keys()) {
    let x = id;
    while (parent.get(x) !== t.origin.id) x = parent.get(x)!;
    out.set(id, x);
  }
  return out;
}

describe("simulate: split by subtree over worker processes", () => {
  it("cuts a topology into whole subtrees, balanced, every node once and in order", async () => {
    const t = generateTopology(await loadTopology(internet), 100, 2_000);
    const shards = splitTopology(t, 3);
    expect(shards).toHaveLength(3);
    const top = tops(t);
    const seen = new Map<string, number>();
    for (const [s, shard] of shards.entries()) {
      for (const id of [...shard.edges.map((e) => e.id), ...shard.resolvers.map((r) => r.id)]) {
        expect(seen.has(id), id).toBe(false);
        seen.set(id, s);
      }
      // Order kept: a shard's nodes are the whole's, filtered.
      expect(shard.resolvers).toEqual(t.resolvers.filter((r) => seen.get(r.id) === s));
    }
    expect(seen.size).toBe(t.edges.length + t.resolvers.length);
    // Whole subtrees: every node is in the shard of its tier-1 node.
    for (const [id, s] of seen) expect(seen.get(top.get(id)!), id).toBe(s);
    // Balanced to within one subtree (the largest first, each into the lightest shard).
    const sizes = shards.map((x) => x.edges.length + x.resolvers.length);
    const unitSize = new Map<string, number>();
    for (const u of top.values()) unitSize.set(u, (unitSize.get(u) ?? 0) + 1);
    const largest = Math.max(...unitSize.values());
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(largest);
    // More shards asked than subtrees: one per subtree.
    const small = generateTopology(await loadTopology(internet), 4, 20);
    expect(splitTopology(small, 50).length).toBe(new Set(tops(small).values()).size);
  });

  it("packs a shard's nodes into flat arrays and back, the same values and keys in the same order", () => {
    const nodes: SimNodeResult[] = [
      {
        nodeId: "regional-1",
        kind: "edge",
        tier: "regional",
        timesMs: [19.5, -0, 1e-300],
        staleSeen: 3,
        unconverged: 0,
      },
      { nodeId: "edge-1", kind: "edge", tier: "edge", timesMs: [], staleSeen: 0, unconverged: 2 },
      {
        nodeId: "res-1",
        kind: "resolver",
        tier: "resolver",
        population: "stale",
        timesMs: [0.1 + 0.2],
        staleSeen: 2 ** 40,
        unconverged: 1,
      },
      {
        nodeId: "res-2",
        kind: "resolver",
        tier: "resolver",
        timesMs: [5],
        staleSeen: 1,
        unconverged: 0,
      },
      {
        nodeId: "res-3",
        kind: "resolver",
        tier: "resolver",
        population: "honour",
        timesMs: [7, 8],
        staleSeen: 0,
        unconverged: 0,
      },
    ];
    const packed = packNodes(nodes);
    expect(packed.times).toHaveLength(7);
    expect(packed.tiers).toEqual(["regional", "edge", "resolver"]);
    const back = unpackNodes(packed);
    expect(back).toEqual(nodes);
    expect(Object.is(back[0]!.timesMs[1], -0)).toBe(true);
    expect(back.map((n) => Object.keys(n))).toEqual(nodes.map((n) => Object.keys(n)));
    expect(JSON.stringify(back)).toBe(JSON.stringify(nodes));
    expect(unpackNodes(packNodes([]))).toEqual([]);
    expect(() => unpackNodes({ ...packed, ids: "a\nb" })).toThrow(/2 ids for 5 nodes/);
  });

  it("deals subtrees of one size out by the link of their first hop, each kind over every shard", async () => {
    // internet.json's regionals alternate two links (20 and 30 ms); a shard of
    // the short ones does more work (bench/results/simulate.md).
    for (const [edges, resolvers, count] of [
      [1_000, 100_000, 2],
      [100, 2_000, 2],
      [100, 2_000, 3],
    ] as const) {
      const t = generateTopology(await loadTopology(internet), edges, resolvers);
      const firstHops = t.edges.filter((e) => e.parent === t.origin.id);
      const linkOf = new Map(firstHops.map((e) => [e.id, JSON.stringify(e.link)]));
      const kinds = new Set(linkOf.values());
      expect(kinds.size).toBe(2);
      const shards = splitTopology(t, count);
      for (const kind of kinds) {
        const perShard = shards.map((s) => s.edges.filter((e) => linkOf.get(e.id) === kind).length);
        expect(
          Math.max(...perShard) - Math.min(...perShard),
          `${edges} edges, ${count} shards`,
        ).toBeLessThanOrEqual(1);
      }
    }
  });

  it("lets the old generation grow to twice its live size, unless the command line says otherwise", () => {
    expect(heapGrowthFlag([])).toBe("--heap-growing-percent=100");
    expect(heapGrowthFlag(["--enable-source-maps"])).toBe("--heap-growing-percent=100");
    expect(heapGrowthFlag(["--heap-growing-percent=300"])).toBeUndefined();
    expect(heapGrowthFlag(["--heap_growing_percent=50"])).toBeUndefined();
  });

  it("starts each worker process with its heap's growth and limits (a young generation is three semi-spaces)", () => {
    expect(workerFlags({ youngMb: 1_536, oldMb: 5_000 }, [])).toEqual([
      "--heap-growing-percent=100",
      "--max-semi-space-size=512",
      "--max-old-space-size=5000",
    ]);
    // The coordinator's own growth and what records the run go along; an inspector, an eval, a loader do not.
    const coordinator = [
      "--heap_growing_percent=300",
      "--trace-gc-nvp",
      "--cpu-prof",
      "--inspect=9229",
      "--import",
      "tsx",
      "-e",
      "code",
      "--max-old-space-size=64",
    ];
    expect(workerFlags(undefined, coordinator)).toEqual([
      "--heap_growing_percent=300",
      "--trace-gc-nvp",
      "--cpu-prof",
    ]);
  });

  it("gives each worker V8's largest young generation, at most a quarter of its share of memory", () => {
    // 24 GB, two workers: 9,216 MB each, the 1,536 MB cap (two 512 MB semi-spaces).
    expect(youngGenerationMb(2, 9_216)).toBe(1_536);
    expect(youngGenerationMb(2, 2_048)).toBe(512);
    expect(youngGenerationMb(8, 100)).toBe(48);
    expect(youngGenerationMb(2)).toBeGreaterThanOrEqual(48);
  });

  it("closes each window at the latest shard's instant; a capped shard's claim is checked", async () => {
    const b = new WindowBarrier(3);
    // Shard 1 ran to the cap and went on; the others closed earlier and wait for it.
    const early = b.closed(0, 1_000, false, false);
    const capped = b.closed(1, 1_500, false, true);
    // Not waiting, shard 1 closes its next window before the others close this one.
    const ahead = b.closed(1, 2_000, false, true);
    const early2 = b.closed(2, 1_200, false, false);
    expect(await Promise.all([early, capped, early2])).toEqual([1_500, 1_500, 1_500]);
    // Two capped shards: both landed on the cap itself.
    const second = [ahead, b.closed(0, 2_000, false, true)];
    second.push(b.closed(2, 1_900, false, false));
    expect(await Promise.all(second)).toEqual([2_000, 2_000, 2_000]);
    // A shard claimed the cap, yet another's window closed later, if only by a
    // bit: not one process's run.
    const lied = [b.closed(0, 3_000, false, true), b.closed(1, 3_000.0000000005, false, false)];
    lied.push(b.closed(2, 2_900, false, false));
    for (const p of lied) await expect(p).rejects.toThrow(/did not run as one process/);
    // Past that, every window says stop.
    expect(await b.closed(0, 4_000, false, false)).toBeUndefined();
  });

  it("a shard that broke a rule stops every window, waiting or later", async () => {
    const b = new WindowBarrier(2);
    const waiting = b.closed(0, 1_000, false, false);
    expect(await b.closed(1, 900, true, false)).toBeUndefined();
    expect(await waiting).toBeUndefined();
    expect(await b.closed(0, 2_000, false, true)).toBeUndefined();
  });

  it("gives one process's result at 2 and 3 workers, with populations, faults and restarts", async () => {
    const zone = { ttl: 20, staleWhileRevalidate: 10, staleIfError: 86_400 };
    const cases: SimOptions[] = [
      {
        topology: generateTopology(await loadTopology(internet), 9, 300),
        mode: "invalidate",
        changes: 3,
        seed: 7,
        zone,
        // A change every ~30 s: each window is cut at the next slot with
        // nodes still open (one process: all 3 capped), so shards go on
        // without waiting, at caps that are not whole milliseconds.
        everyMs: 29_999.7,
        clientQps: 0.5,
      },
      {
        topology: generateTopology(await loadTopology(defaultPath), 9, 90),
        mode: "push",
        changes: 3,
        seed: 3,
        zone,
        clientQps: 0.2,
      },
    ];
    // Fuzz cases with faults, at least one restarting a node, each with more than one subtree.
    let restarts = 0;
    for (let seed = 1; seed <= 60 && cases.length < 6; seed++) {
      const c = fuzzCase(seed);
      const o = fuzzOptions(c);
      if (!c.faulty || splitTopology(o.topology, 2).length < 2) continue;
      if ((o.faults?.restarts?.length ?? 0) > 0) restarts++;
      else if (restarts === 0 && cases.length === 5) continue;
      cases.push(o);
    }
    expect(restarts).toBeGreaterThan(0);
    for (const o of cases) {
      const one = await simulate(o);
      const parts = Object.values(one.phasesMs);
      expect(parts.every((ms) => ms >= 0)).toBe(true);
      expect(parts.reduce((a, b) => a + b)).toBeLessThanOrEqual(one.wallMs + 1e-6);
      for (const workers of [2, 3]) {
        const split = await simulateSharded(o, workers);
        expect(Object.keys(split.phasesMs)).toEqual(Object.keys(one.phasesMs));
        expect(strip(split), `${o.topology.name} seed ${o.seed}, ${workers} workers`).toEqual(
          strip(one),
        );
      }
      expect(one.violation).toBeUndefined();
    }
  }, 240_000);

  it("a run that breaks a rule reports what one process reports (run again there)", async () => {
    // An origin outage the bound does not allow for: regional-1 is fresh long after its bound.
    const o: SimOptions = {
      topology: generateTopology(await loadTopology(internet), 9, 90),
      mode: "invalidate",
      changes: 3,
      seed: 2,
      zone: { ttl: 20, staleWhileRevalidate: 10, staleIfError: 86_400 },
      clientQps: 0.2,
      faults: { originDown: [{ startMs: 25_000, endMs: 90_000 }] },
    };
    const one = await simulate(o);
    expect(one.violation?.rule).toBe("bound");
    const split = await simulateSharded(o, 2);
    expect(strip(split)).toEqual(strip(one));
    expect(split.simulatedMs).toBe(one.simulatedMs);
  }, 120_000);

  it("a shard that fails fails the run and stops every worker (no shard left waiting)", async () => {
    const t = generateTopology(await loadTopology(internet), 9, 90);
    const victim = splitTopology(t, 2)[0]!.edges.at(-1)!.id;
    const before = children();
    const o: SimOptions = {
      // One shard's edge cannot be built; the other shard reaches its first window and waits.
      topology: { ...t, edges: t.edges.map((e) => (e.id === victim ? { ...e, maxBytes: -5 } : e)) },
      mode: "invalidate",
      changes: 3,
      seed: 1,
      zone: { ttl: 20, staleWhileRevalidate: 10, staleIfError: 86_400 },
      clientQps: 0.2,
    };
    await expect(simulateSharded(o, 2)).rejects.toThrow(/simulation shard failed: maxSize/);
    // Every worker has exited (stop() awaits it); its handle is released a turn later.
    await vi.waitFor(() => expect(children()).toBe(before), { timeout: 5_000, interval: 20 });
  }, 120_000);

  it("returns a finished run's result while its workers end, and every worker ends", async () => {
    const t = generateTopology(await loadTopology(internet), 9, 90);
    const before = children();
    const r = await simulateSharded(
      {
        topology: t,
        mode: "invalidate",
        changes: 2,
        seed: 1,
        zone: { ttl: 20, staleWhileRevalidate: 10, staleIfError: 86_400 },
        clientQps: 0.2,
      },
      2,
    );
    expect(r.workers).toBe(2);
    // No worker process left running: waited for, not slept.
    await vi.waitFor(() => expect(children()).toBe(before), { timeout: 30_000, interval: 50 });
  }, 120_000);

  it.each([
    ["through tsx", async () => TSX_WORKER],
    ["from the bundle", prepareWorkers],
  ])(
    "a shard's worker %s ends by itself once it has sent its result",
    async (_, script) => {
      const t = generateTopology(await loadTopology(internet), 3, 20);
      const o: SimOptions = {
        topology: t,
        whole: t,
        mode: "invalidate",
        changes: 1,
        seed: 1,
        zone: { ttl: 20, staleWhileRevalidate: 10, staleIfError: 86_400 },
        clientQps: 0.2,
      };
      // This test is its coordinator: the bounds, and each window closed where the shard closed it.
      const w = new SimWorker(await script(), {
        kind: "shard",
        options: serializedOptions(o),
        shard: 0,
        of: 1,
      });
      let result: ShardResult | undefined;
      w.onMessage((m: ShardMessage) => {
        if (m.kind === "window") w.send({ end: m.atMs });
        else if (m.kind === "done") result = { ...m.result, nodes: unpackNodes(m.nodes) };
      });
      const predicted = predictRun(o);
      const { maxMs, byId } = boundsOf(predicted);
      w.send({ kind: "bounds", maxMs, byId: [...byId] });
      // Never stopped here: a worker that waited for it would never exit.
      expect(await w.closed).toEqual({ code: 0, signal: null });
      // What it ran, written for it to read, is gone with it.
      expect(existsSync(dirname(w.startFile))).toBe(false);
      // The shard's nodes as this thread runs them.
      const here = await simulate({ ...o, bounds: Promise.resolve({ maxMs, byId }) });
      expect(result?.nodes).toEqual(here.nodes);
      // Key for key in the same order: the report's JSON is the same text.
      expect(JSON.stringify(result?.nodes)).toBe(JSON.stringify(here.nodes));
    },
    30_000,
  );

  it("bundles the workers' code once, named by its content, under node_modules/.cache", async () => {
    const script = await prepareWorkers();
    expect(await prepareWorkers()).toBe(script);
    const file = fileURLToPath(script);
    expect(file).toMatch(/node_modules\/\.cache\/propagate\/sim-worker-[0-9a-f]{16}\.mjs$/);
    const text = await readFile(file, "utf8");
    expect(createHash("sha256").update(text).digest("hex").slice(0, 16)).toBe(
      /sim-worker-([0-9a-f]+)/.exec(file)![1],
    );
    // Plain JavaScript that imports packages, not the project's TypeScript.
    expect(text).not.toMatch(/from "\.{1,2}\/[^"]*\.ts"/);
    expect(text).toMatch(/from "lru-cache"/);
  });

  it("propagate simulate --workers 2 prints what --workers 1 prints, from the bundle or tsx", async () => {
    const args = [
      bin,
      "simulate",
      "--topology",
      internet,
      "--edges",
      "9",
      "--resolvers",
      "200",
      "--ttl",
      "20",
      "--changes",
      "2",
      "--json",
    ];
    // One thread; two workers from the bundle; two through tsx.
    const tsx = { ...process.env, PROPAGATE_SIM_BUNDLE: "0" };
    const outputs = await Promise.all(
      [{ w: "1" }, { w: "2" }, { w: "2", env: tsx }].map(({ w, env }) =>
        run(process.execPath, [...args, "--workers", w], { timeout: 120_000, env }),
      ),
    );
    const [one, two, throughTsx] = outputs.map((o) => {
      const report = JSON.parse(o.stdout) as { notes?: string[] };
      // Where the wall time went, part by part; workers and merge only when split.
      const phases =
        /building [\d.]+ s, warm-up [\d.]+ s, changes [\d.]+ s, stopping [\d.]+ s(, workers and merge [\d.]+ s)?/.exec(
          report.notes?.[0] ?? "",
        );
      expect(phases, report.notes?.[0]).not.toBeNull();
      expect(phases![1] !== undefined).toBe(o !== outputs[0]);
      delete report.notes;
      return report;
    });
    expect(two).toEqual(one);
    expect(throughTsx).toEqual(one);
    await expect(
      run(process.execPath, [...args, "--workers", "0"], { timeout: 60_000 }),
    ).rejects.toMatchObject({ stderr: expect.stringMatching(/--workers expects a number >= 1/) });
  }, 240_000);

  it("a shard out of heap fails the command with its limit and how to give it more", async () => {
    // 64 MB shared out: each shard's 30,000 nodes need several times their share.
    const env = { ...process.env, NODE_OPTIONS: "--max-old-space-size=64" };
    const args = [bin, "simulate", "--topology", internet, "--edges", "40", "--resolvers", "60000"];
    await expect(
      run(process.execPath, [...args, "--changes", "1", "--workers", "2"], {
        timeout: 120_000,
        env,
      }),
    ).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(
        /a simulation shard of \d+ nodes ran out of its \d+ MB heap; give the run more with NODE_OPTIONS=--max-old-space-size=MB/,
      ),
    });
  }, 120_000);

  it("a worker whose coordinator has gone ends", async () => {
    const w = new SimWorker(await prepareWorkers(), { kind: "fuzz" });
    // Asked for its first case, it waits for the answer; the channel closes instead.
    await new Promise<void>((resolve) => w.onMessage(() => resolve()));
    const exited = new Promise((resolve) =>
      w.process.once("exit", (code, signal) => resolve({ code, signal })),
    );
    // As when the coordinator is killed. (A channel closed from this side never
    // emits its own "close", so neither does the worker: its exit is awaited.)
    w.process.disconnect();
    expect(await exited).toEqual({ code: 1, signal: null });
  }, 30_000);
});

describe("simulate --fuzz over worker processes", () => {
  it("reports the cases one thread reports, in seed order", async () => {
    const lines = (os: FuzzOutcome[]) => os.map(fuzzLine);
    const one = await fuzz(3, 8);
    const seen: number[] = [];
    const two = await fuzz(3, 8, (o) => seen.push(o.case.seed), 2);
    expect(seen).toEqual([3, 4, 5, 6, 7, 8, 9, 10]);
    expect(lines(two)).toEqual(lines(one));
    expect(two.map((o) => o.result.nodes)).toEqual(one.map((o) => o.result.nodes));
  }, 240_000);
});
