/**
 * One run over several worker threads, split by subtree. Below the origin,
 * a topology's subtrees (a tier-1 edge with everything under it, or a
 * resolver that asks the origin itself) share nothing but the origin and the
 * bus, and neither depends on who reads from it: the origin's answers are a
 * function of its store and the time, its store changes only by the run's
 * commits (at instants drawn from a stream of their own, run.ts), and the
 * bus hands each subscriber its own copy of each event over the
 * subscriber's own link (core/bus.ts). Every link and every resolver's
 * clients draw from their own seeded streams (links.ts, clients.ts). So a
 * shard, with its own origin and bus replaying the same commits, runs each
 * of its nodes exactly as one process runs it: same seed, same report, at
 * any number of workers (test/infra/simulate-shards.test.ts). No message
 * crosses from one shard's nodes to another's; the one thing the shards
 * agree on is when each change's window closes (the whole's last node
 * fresh), at a barrier (WindowBarrier).
 *
 * What may differ is only what counts the run rather than a node: the
 * origin's load is the sum of the shards', and so are events, fresh hits
 * and edge hops; held origin answers are per shard, so more are read.
 */
import { createHash, randomUUID } from "node:crypto";
import { mkdir, readdir, rename, stat, unlink, writeFile } from "node:fs/promises";
import { availableParallelism, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { getHeapStatistics, setFlagsFromString } from "node:v8";
import { type ResourceLimits, Worker } from "node:worker_threads";
import { edgesInStartOrder, type Topology } from "../topology.ts";
import { boundsOf, predictRun, type SimOptions, type SimResult, simulate } from "./run.ts";

/** Below this many nodes a worker's start-up (its thread, loading the engines: 0.4-1.3 s, `prepareWorkers`) costs more than it saves. */
export const MIN_NODES_PER_WORKER = 2_000;

/**
 * Young generation of each worker, in MB: V8's largest, two semi-spaces of
 * 512 MB (a larger limit is cut to that). The engines' per-hop objects live
 * a few simulated milliseconds, but a refresh wave (thousands of resolvers
 * asking in one instant) keeps each request's chain alive while the whole
 * wave allocates: with 64 MB semi-spaces most chains outlived two
 * scavenges and were promoted, and promoted garbage costs mark-compacts,
 * their marking on the other core, and page faults as the old generation
 * refills. V8 grows a semi-space only while much of it survives, so a small
 * run stays small. The 100,000-resolver hour (bench/results/simulate.md,
 * "A young generation as large as V8 allows"): promoted 4.0 -> 1.0 GB,
 * scavenges 679 -> 210, background marking 28 -> 5 s, wall 95-105 -> 73-75 s,
 * max RSS 2.2 -> 3.5 GB. Never more than a quarter of a worker's share of
 * the machine (`youngGenerationMb`): each semi-space pair is committed whole
 * once grown.
 */
const YOUNG_GENERATION_MB = 1_536;

/** Old generation per node of a shard, in MB: about twice the ~23 KB a large run holds per node. */
const OLD_GENERATION_PER_NODE_MB = 0.04;
/** And per node and change followed (each change keeps a time per node, 8 bytes, and more). */
const OLD_GENERATION_PER_NODE_CHANGE_MB = 32 / (1024 * 1024);
const OLD_GENERATION_BASE_MB = 1_024;

/** A worker's share of the machine (or of the cgroup's memory limit), in MB: three quarters of it, split. */
function shareMb(shards: number): number {
  const constrained = process.constrainedMemory?.() ?? 0;
  const memory = constrained > 0 ? Math.min(constrained, totalmem()) : totalmem();
  return Math.floor((memory * 0.75) / (1024 * 1024) / shards);
}

/**
 * A shard worker's young-generation limit: `YOUNG_GENERATION_MB`, at most a
 * quarter of its share of the machine (`share`, MB), never below V8's own
 * default (48 MB: two 16 MB semi-spaces and as much for large objects).
 */
export function youngGenerationMb(shards: number, share = shareMb(shards)): number {
  return Math.max(48, Math.min(YOUNG_GENERATION_MB, Math.floor(share / 4)));
}

/**
 * A shard worker's old-generation limit. V8 lets a heap that allocates fast
 * grow towards its limit before it compacts, so a limit of a share of the
 * machine would let two workers of the 100,000-resolver hour reach 8 GB of
 * RSS holding ~3 GB of live objects; a limit sized to the shard keeps them
 * to what they hold. `--max-old-space-size` given to this process is shared
 * out among the workers. Never more than their share of the machine (or of
 * the cgroup's memory limit).
 */
function oldGenerationMb(nodes: number, changes: number, shards: number): number {
  const mb = 1024 * 1024;
  const share = shareMb(shards);
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? "").split(/\s+/)];
  if (flags.some((f) => f.startsWith("--max-old-space-size")))
    return Math.floor(getHeapStatistics().heap_size_limit / mb / shards);
  return Math.min(
    share,
    OLD_GENERATION_BASE_MB +
      Math.ceil(nodes * (OLD_GENERATION_PER_NODE_MB + changes * OLD_GENERATION_PER_NODE_CHANGE_MB)),
  );
}

/** Workers for a run of `nodes` nodes when none are asked for: every core, for a large run. */
export function defaultWorkers(nodes: number): number {
  return Math.max(1, Math.min(availableParallelism(), Math.floor(nodes / MIN_NODES_PER_WORKER)));
}

/**
 * The topology cut into at most `count` shards of whole subtrees, balanced
 * by node count (largest subtree first into the lightest shard); nodes keep
 * their order in the topology. Fewer shards when there are fewer subtrees.
 */
export function splitTopology(t: Topology, count: number): Topology[] {
  const top = new Map<string, string>();
  for (const e of edgesInStartOrder(t))
    top.set(e.id, e.parent === t.origin.id ? e.id : top.get(e.parent)!);
  const topOf = (upstream: string, id: string) =>
    upstream === t.origin.id ? id : top.get(upstream)!;
  const weight = new Map<string, number>();
  const add = (unit: string) => weight.set(unit, (weight.get(unit) ?? 0) + 1);
  for (const e of t.edges) add(top.get(e.id)!);
  const resolverTop = t.resolvers.map((r) => topOf(r.upstream, r.id));
  for (const unit of resolverTop) add(unit);
  const bins = Array.from({ length: Math.max(1, Math.min(count, weight.size)) }, () => 0);
  const binOf = new Map<string, number>();
  const units = [...weight].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  for (const [unit, w] of units) {
    let lightest = 0;
    for (let b = 1; b < bins.length; b++) if (bins[b]! < bins[lightest]!) lightest = b;
    bins[lightest]! += w;
    binOf.set(unit, lightest);
  }
  return bins.map((_, b) => ({
    ...t,
    edges: t.edges.filter((e) => binOf.get(top.get(e.id)!) === b),
    resolvers: t.resolvers.filter((_, j) => binOf.get(resolverTop[j]!) === b),
  }));
}

/**
 * The old generation's growth between full collections, in percent of what
 * the last one kept: V8 lets a heap that allocates fast grow up to four
 * times its live size first. A shard's live heap is small (~340 MB of a
 * 50,000-node shard) but it promotes ~50 MB of short-lived answers and
 * entries per young collection, so its old generation filled to ~1.3 GB of
 * garbage between full collections, and every page of it is a page fault
 * when touched again after the collection gave it back (~10 us each on a
 * virtual machine that backs memory lazily). Twice the live size instead:
 * the 100,000-resolver hour's faults 2.03 M -> 1.19 M, RSS 3.9 -> 2.8 GB,
 * system time 27 -> 14 s (bench/results/simulate.md). Set for the whole
 * process (V8's flags are global: the coordinator's heap too) before each
 * worker starts, unless the command line set it.
 */
const HEAP_GROWING_PERCENT = 100;

/** The V8 flag a simulator process sets for its heap's growth: none when its command line has one. */
export function heapGrowthFlag(execArgv: readonly string[]): string | undefined {
  return execArgv.some((f) => f.replaceAll("_", "-").startsWith("--heap-growing-percent"))
    ? undefined
    : `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
}

function tuneHeapGrowth(): void {
  const flag = heapGrowthFlag(process.execArgv);
  if (flag !== undefined) setFlagsFromString(flag);
}

/** A worker thread's script through tsx (worker.mjs), from the TypeScript sources. */
export const TSX_WORKER = new URL("./worker.mjs", import.meta.url);
let prepared: Promise<URL> | undefined;

/**
 * Makes the simulator's workers start from one file of plain JavaScript:
 * worker-main.ts and the project's sources it imports, bundled by esbuild
 * (packages stay imports, so the file lives under node_modules/.cache
 * where they resolve; named by its content, so a changed source makes a
 * new one). Through tsx a worker took 0.7 s alone and 1.3 s two at once to
 * import the simulator (each module resolved and loaded on tsx's loader
 * thread, a message each way); the bundle, 0.35 s. Once per process; if
 * esbuild or the cache directory is not there, workers start through tsx
 * as before. PROPAGATE_SIM_BUNDLE=0 keeps them on tsx.
 */
export function prepareWorkers(): Promise<URL> {
  prepared ??= bundleWorker().then(
    (url) => url ?? TSX_WORKER,
    () => TSX_WORKER,
  );
  return prepared;
}

/** Bundles older than this are removed when a new one is written. */
const BUNDLE_KEEP_MS = 24 * 3600 * 1000;

async function bundleWorker(): Promise<URL | undefined> {
  if (process.env.PROPAGATE_SIM_BUNDLE === "0") return undefined;
  const { build } = await import("esbuild");
  const built = await build({
    entryPoints: [fileURLToPath(new URL("./worker-main.ts", import.meta.url))],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    packages: "external",
    write: false,
    logLevel: "silent",
  });
  const text = built.outputFiles[0]!.contents;
  const hash = createHash("sha256").update(text).digest("hex").slice(0, 16);
  const dir = fileURLToPath(new URL("../../node_modules/.cache/propagate/", import.meta.url));
  const file = join(dir, `sim-worker-${hash}.mjs`);
  const exists = await stat(file).then(
    () => true,
    () => false,
  );
  if (!exists) {
    await mkdir(dir, { recursive: true });
    // Whole or not at all: another process may be starting workers from it.
    const partial = `${file}.${randomUUID()}.partial`;
    await writeFile(partial, text);
    await rename(partial, file);
    const now = Date.now();
    for (const name of await readdir(dir)) {
      const old = join(dir, name);
      if (old === file || !name.startsWith("sim-worker-")) continue;
      const s = await stat(old).catch(() => undefined);
      if (s && now - s.mtimeMs > BUNDLE_KEEP_MS) await unlink(old).catch(() => {});
    }
  }
  return pathToFileURL(file);
}

/** A simulator worker thread (worker-main.ts): a shard of a run, or fuzz cases (fuzz.ts). */
export function simWorker(
  script: URL,
  data: { kind: "shard"; options: SimOptions } | { kind: "fuzz" },
  resourceLimits?: ResourceLimits,
): Worker {
  tuneHeapGrowth();
  return new Worker(script, {
    workerData: data,
    ...(resourceLimits ? { resourceLimits } : {}),
  });
}

/** What a shard's worker sends back: its result without the predictions (functions do not cross). */
export type ShardResult = Omit<SimResult, "predicted">;

/** Messages from a shard's worker. */
export type ShardMessage =
  | { kind: "progress"; done: number }
  | { kind: "window"; atMs: number; broken: boolean; capped: boolean }
  | { kind: "done"; result: ShardResult }
  | { kind: "failed"; message: string; stack?: string };

/**
 * `simulate` over `workers` threads (1: in this thread). The result is the
 * one-process result: every node's times, stale and unconverged counts,
 * failures and restarts; events, polls, hits and hops are the shards' sums.
 * A run that breaks a rule is run again in this thread (see below). A shard
 * that fails stops them all and fails the run.
 */
export async function simulateSharded(o: SimOptions, workers: number): Promise<SimResult> {
  const shards = workers > 1 ? splitTopology(o.topology, workers) : [o.topology];
  if (shards.length < 2) return simulate(o);
  const script = await prepareWorkers();
  const wallStart = performance.now();
  const done = shards.map(() => 0);
  const windows = new WindowBarrier(shards.length);
  const threads: Worker[] = [];
  const runs = shards.map((topology, s) =>
    runShard(
      script,
      shardOptions(o, topology),
      shards.length,
      (k) => {
        done[s] = k;
        o.onProgress?.(Math.min(...done), o.changes);
      },
      (atMs, broken, capped) => windows.closed(s, atMs, broken, capped),
      (w) => {
        threads.push(w);
      },
    ),
  );
  let predicted: SimResult["predicted"];
  let results: ShardResult[];
  try {
    // This thread's predictions (functions do not cross threads) are made
    // while the workers build their worlds, not after they finish; each
    // worker gets its nodes' bounds from them rather than predicting the
    // whole run again (run.ts `bounds`: ~1 s of a worker at 100,000 resolvers).
    predicted = predictRun(o);
    const { maxMs, byId } = boundsOf(predicted);
    for (const [s, w] of threads.entries()) {
      const shard = shards[s]!;
      const ids = [...shard.edges, ...shard.resolvers].map((n) => n.id);
      w.postMessage({ kind: "bounds", maxMs, byId: ids.map((id) => [id, byId.get(id)]) });
    }
    results = await Promise.all(runs);
  } catch (err) {
    // One shard failed (out of memory, a bug): the others would wait at the
    // barrier for ever.
    windows.stop();
    await Promise.allSettled(runs.map((r) => r.catch(() => {})));
    await Promise.all(threads.map((w) => w.terminate()));
    throw err;
  }
  // Every worker has sent its result and ends: its heap (gigabytes for a
  // 50,000-node shard, 1-2 s to give back) is freed on its own thread while
  // this one merges the results and the caller prints them, not before.
  for (const w of threads) void w.terminate();
  const merged = merge(o, results, predicted, performance.now() - wallStart);
  // Past a violation the shards differ from one process: the broken shard
  // stopped at it, the others ran on to the end of their window (and the
  // change being followed was not recorded). The run that breaks a rule is
  // the one to replay exactly, so it is run again in this thread.
  if (merged.violation) return simulate(o);
  return merged;
}

/**
 * The options a shard runs with: its nodes and the whole topology. Faults
 * stay whole (every shard owes convergence from the same last fault; the
 * world restarts only its own nodes).
 */
function shardOptions(o: SimOptions, topology: Topology): SimOptions {
  const { onProgress: _, bounds: __, ...rest } = o;
  return { ...rest, topology, whole: o.topology };
}

/**
 * Where the shards' windows meet: each change's window closes for the whole
 * when it has closed for every shard, at the latest shard's instant (run.ts
 * `windowClosed`). A shard that broke a rule stops them all. A shard whose
 * window ran to its cap has gone on at once, sure that the whole closes
 * there (run.ts); should another shard's window end later, that shard's run
 * was not the one process's, and the run fails rather than report it.
 */
export class WindowBarrier {
  private stopped = false;
  /** Windows some shard has closed and not every shard yet, by number. */
  private readonly open = new Map<number, Meeting>();
  /** Per shard: windows it has closed. */
  private readonly count: number[];

  constructor(private readonly shards: number) {
    this.count = Array<number>(shards).fill(0);
  }

  /** Shard `shard` closed its next window at `atMs`; resolves with the whole's closing instant. */
  closed(
    shard: number,
    atMs: number,
    broken: boolean,
    capped: boolean,
  ): Promise<number | undefined> {
    // A capped shard does not wait: it may close its next window before the others close this one.
    const k = this.count[shard]!++;
    if (broken) this.stop();
    if (this.stopped) return Promise.resolve(undefined);
    let m = this.open.get(k);
    if (m === undefined) {
      m = { latest: Number.NEGATIVE_INFINITY, claimed: Number.POSITIVE_INFINITY, waiting: [] };
      this.open.set(k, m);
    }
    m.latest = Math.max(m.latest, atMs);
    if (capped) m.claimed = Math.min(m.claimed, atMs);
    const meeting = m;
    return new Promise((resolve, reject) => {
      meeting.waiting.push({ resolve, reject });
      if (meeting.waiting.length < this.shards) return;
      this.open.delete(k);
      // Every shard lands on the cap itself (loop.ts runUntil, clock.ts advanceSyncTo).
      if (meeting.latest > meeting.claimed) {
        const err = new Error(
          `a shard's window ${k + 1} ran to its cap at ${meeting.claimed} ms, but another's closed at ${meeting.latest} ms: the shards did not run as one process`,
        );
        this.stop();
        for (const w of meeting.waiting) w.reject(err);
        return;
      }
      for (const w of meeting.waiting) w.resolve(meeting.latest);
    });
  }

  /** Releases every shard waiting, and every later one, with "stop". */
  stop(): void {
    this.stopped = true;
    for (const m of this.open.values()) for (const w of m.waiting) w.resolve(undefined);
    this.open.clear();
  }
}

interface Meeting {
  /** The latest instant a shard closed the window at. */
  latest: number;
  /** The earliest instant a capped shard claimed for it. */
  claimed: number;
  waiting: { resolve: (end: number | undefined) => void; reject: (e: Error) => void }[];
}

function runShard(
  script: URL,
  options: SimOptions,
  shards: number,
  progress: (done: number) => void,
  windowClosed: (atMs: number, broken: boolean, capped: boolean) => Promise<number | undefined>,
  started: (w: Worker) => void,
): Promise<ShardResult> {
  const nodes = options.topology.edges.length + options.topology.resolvers.length;
  const worker = simWorker(
    script,
    { kind: "shard", options },
    {
      maxYoungGenerationSizeMb: youngGenerationMb(shards),
      maxOldGenerationSizeMb: oldGenerationMb(nodes, options.changes, shards),
    },
  );
  started(worker);
  return new Promise((resolve, reject) => {
    let settled = false;
    worker.on("message", (m: ShardMessage) => {
      if (m.kind === "progress") progress(m.done);
      else if (m.kind === "window")
        void windowClosed(m.atMs, m.broken, m.capped).then(
          (end) => worker.postMessage({ end }),
          (err: unknown) => {
            settled = true;
            reject(err);
          },
        );
      else if (m.kind === "done") {
        settled = true;
        resolve(m.result);
      } else {
        settled = true;
        const err = new Error(`simulation shard failed: ${m.message}`);
        if (m.stack) err.stack = m.stack;
        reject(err);
      }
    });
    worker.on("error", (err) => {
      settled = true;
      if ((err as { code?: string }).code === "ERR_WORKER_OUT_OF_MEMORY") {
        const limit = oldGenerationMb(nodes, options.changes, shards);
        reject(
          new Error(
            `a simulation shard of ${nodes} nodes ran out of its ${limit} MB heap; give the run more with NODE_OPTIONS=--max-old-space-size=MB (shared among the workers), or fewer --workers`,
            { cause: err },
          ),
        );
      } else reject(err);
    });
    worker.on("exit", (code) => {
      if (!settled)
        reject(new Error(`simulation shard exited with code ${code} before its result`));
    });
  });
}

/** The shards' results as one run's, nodes in the order one process lists them. */
function merge(
  o: SimOptions,
  parts: ShardResult[],
  predicted: SimResult["predicted"],
  wallMs: number,
): SimResult {
  const t = o.topology;
  const order = new Map(
    [...edgesInStartOrder(t).map((e) => e.id), ...t.resolvers.map((r) => r.id)].map((id, i) => [
      id,
      i,
    ]),
  );
  // Each node to its place: the shards partition the topology, so every
  // place is filled once (a sort by place looked each id up ~17 times).
  const nodes: SimResult["nodes"] = new Array(order.size);
  let placed = 0;
  for (const p of parts) {
    for (const n of p.nodes) {
      const at = order.get(n.nodeId);
      if (at === undefined || nodes[at] !== undefined)
        throw new Error(
          `shards reported node ${n.nodeId} ${at === undefined ? "unknown" : "twice"}`,
        );
      nodes[at] = n;
      placed++;
    }
  }
  if (placed !== order.size) throw new Error(`shards reported ${placed} of ${order.size} nodes`);
  const sum = (f: (p: ShardResult) => number) => parts.reduce((acc, p) => acc + f(p), 0);
  const addUp = (arrays: number[][]) => {
    const out: number[] = [];
    for (const a of arrays) for (const [i, x] of a.entries()) out[i] = (out[i] ?? 0) + x;
    return out;
  };
  const violations = parts.flatMap((p) => (p.violation ? [p.violation] : []));
  violations.sort((a, b) => a.atMs - b.atMs);
  // The latest failure in virtual time (ties: the later shard), as one process keeps it.
  const last = parts
    .filter((p) => p.lastFailure !== undefined)
    .reduce<ShardResult | undefined>(
      (a, p) => (a === undefined || p.lastFailureAtMs! >= a.lastFailureAtMs! ? p : a),
      undefined,
    );
  return {
    mode: o.mode,
    nodes,
    predicted,
    originLoad: {
      reads: addUp(parts.map((p) => p.originLoad.reads)),
      feed: addUp(parts.map((p) => p.originLoad.feed)),
    },
    events: sum((p) => p.events),
    simulatedMs: Math.max(...parts.map((p) => p.simulatedMs)),
    wallMs,
    failures: sum((p) => p.failures),
    pollsComputed: sum((p) => p.pollsComputed),
    restarts: parts
      .flatMap((p) => p.restarts)
      .sort((a, b) => a.downAtMs - b.downAtMs || (a.nodeId < b.nodeId ? -1 : 1)),
    hitsComputed: sum((p) => p.hitsComputed),
    arrivalsHeld: sum((p) => p.arrivalsHeld),
    lightHops: sum((p) => p.lightHops),
    answersReused: sum((p) => p.answersReused),
    workers: parts.length,
    // Every shard follows the whole run's window (a shard differing would show here).
    windowMs: Math.max(...parts.map((p) => p.windowMs)),
    // The shards run side by side: each part as long as the slowest shard's.
    phasesMs: {
      build: Math.max(...parts.map((p) => p.phasesMs.build)),
      warmup: Math.max(...parts.map((p) => p.phasesMs.warmup)),
      changes: Math.max(...parts.map((p) => p.phasesMs.changes)),
      stop: Math.max(...parts.map((p) => p.phasesMs.stop)),
    },
    ...(last ? { lastFailure: last.lastFailure!, lastFailureAtMs: last.lastFailureAtMs! } : {}),
    ...(violations.length > 0 ? { violation: violations[0]! } : {}),
  };
}
