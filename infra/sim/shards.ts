/**
 * One run over several worker processes, split by subtree. Below the origin,
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
import { type ChildProcess, fork, type Serializable } from "node:child_process";
import { createHash, randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, readdir, rename, stat, unlink, writeFile } from "node:fs/promises";
import { availableParallelism, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { getHeapStatistics, serialize } from "node:v8";
import { edgesInStartOrder, type Topology } from "../topology.ts";
import { type PackedNodes, unpackNodes } from "./packed-nodes.ts";
import {
  boundsOf,
  boundsRecord,
  predictRun,
  type SimOptions,
  type SimResult,
  simulate,
} from "./run.ts";

/** Below this many nodes a worker's start-up (its process, loading the engines: 0.4-1.3 s, `prepareWorkers`) costs more than it saves. */
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
 *
 * Subtrees of one size are dealt out by the link of their first hop, those
 * of each link in the topology's order, so every shard gets its share of
 * each kind: a subtree's work is not its size alone. At 100,000 resolvers,
 * the 32 regionals' links alternate 20 and 30 ms (internet.json), and a
 * shard of the 20 ms ones took 61.6 s where one of the 30 ms ones took
 * 55.1 s (bench/results/simulate.md); dealt by name (regional-1,
 * regional-10, regional-11, ...), the shards held 4 and 12 of each and
 * the run waited 2-3.6 s for the slower one.
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
  // Each unit's first hop: its tier-1 edge's link, or the resolver's own.
  const linkOf = new Map<string, string>();
  for (const e of t.edges) if (e.parent === t.origin.id) linkOf.set(e.id, JSON.stringify(e.link));
  for (const r of t.resolvers)
    if (r.upstream === t.origin.id) linkOf.set(r.id, JSON.stringify(r.link));
  const kinds = new Map<string, number>();
  for (const unit of weight.keys()) {
    const k = linkOf.get(unit) ?? "";
    if (!kinds.has(k)) kinds.set(k, kinds.size);
  }
  const kindOf = (unit: string) => kinds.get(linkOf.get(unit) ?? "")!;
  // Stable: units of one size and kind stay in the topology's order.
  const units = [...weight].sort((a, b) => b[1] - a[1] || kindOf(a[0]) - kindOf(b[0]));
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
 * system time 27 -> 14 s (bench/results/simulate.md). Given to each worker
 * process, unless the command's own line sets it (`workerFlags` passes that on).
 */
const HEAP_GROWING_PERCENT = 100;

/** The V8 flag a worker gets for its heap's growth: none when `execArgv` (what it is given) has one. */
export function heapGrowthFlag(execArgv: readonly string[]): string | undefined {
  return execArgv.some(isGrowthFlag) ? undefined : `--heap-growing-percent=${HEAP_GROWING_PERCENT}`;
}

const isGrowthFlag = (f: string) => f.replaceAll("_", "-").startsWith("--heap-growing-percent");

/**
 * The coordinator's flags a worker process takes too, as a worker thread
 * shared its process's: its heap's growth, and what records the run (GC
 * traces, CPU and heap profiles, perf maps; bench/sim-threads.mjs). Not the
 * rest (an inspector's port, a script to evaluate, a test runner's loader).
 */
const FORWARDED = /^--(heap-growing-percent|trace-gc|cpu-prof|heap-prof|prof|perf-)/;

/** A worker process's heap, in MB: its young generation (two semi-spaces and as much for large objects) and old. */
export interface HeapLimits {
  youngMb: number;
  oldMb: number;
}

/**
 * The V8 flags of a worker process: those of `execArgv` (the coordinator's)
 * it takes too (`FORWARDED`), its heap's growth unless they set it, and its
 * limits. V8 sizes a young generation as three semi-spaces (two, and as
 * much again for large objects), as a worker thread's
 * `maxYoungGenerationSizeMb` does. (NODE_OPTIONS, which allows none of
 * these, reaches the worker with the environment.)
 */
export function workerFlags(limits?: HeapLimits, execArgv = process.execArgv): string[] {
  const forwarded = execArgv.filter((f) => FORWARDED.test(f.replaceAll("_", "-")));
  const growth = heapGrowthFlag(forwarded);
  return [
    ...forwarded,
    ...(growth !== undefined ? [growth] : []),
    ...(limits
      ? [
          `--max-semi-space-size=${Math.max(1, Math.floor(limits.youngMb / 3))}`,
          `--max-old-space-size=${limits.oldMb}`,
        ]
      : []),
  ];
}

/** A worker's script through tsx (worker.mjs), from the TypeScript sources. */
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

/**
 * What a worker runs (worker-main.ts): shard `shard` of the run whose
 * options `options` holds (`shardOptions`), or fuzz cases (fuzz.ts). The
 * options V8-serialized once for every shard (`serializedOptions`): they
 * hold the whole topology, 8 MB at 100,000 resolvers, and serializing them
 * again for each worker started the second 0.15 s after the first, on two
 * cores the three processes share (bench/results/simulate.md).
 */
export type WorkerData =
  | { kind: "shard"; options: Uint8Array; shard: number; of: number }
  | { kind: "fuzz" };

/** A run's options as a shard's worker takes them (`WorkerData`), less what does not cross: progress and bounds. */
export function serializedOptions(o: SimOptions): Uint8Array {
  const { onProgress: _, bounds: __, windowClosed: ___, ...options } = o;
  return serialize(options);
}

/** A message a worker did not take: see `SimWorker.send`. */
function dropped(): void {}

/** How much of a worker's standard error its failure quotes. */
const STDERR_TAIL = 4096;

/**
 * A simulator worker (worker-main.ts) in a child process of its own; what
 * it runs, V8-serialized as a worker thread's data is, in a file it reads
 * as it starts (its argument; it removes the file, and so does this side
 * once it has ended). Through the IPC channel the same 4.4 MB (the
 * 100,000-resolver hour) reached the second worker 1.5 s after it started:
 * this process's loop writes a message as the worker reads it, and the
 * workers were still loading. Then messages go both ways over the channel
 * (`serialization: "advanced"`). A process, not a thread: a worker thread's heap is
 * torn down page by page as it ends (V8's `Heap::TearDown`: munmap and
 * mprotect per page, each flushing the TLB of every core that runs the
 * process), 1-1.5 s for a 50,000-node shard alone and ~3 s two at once,
 * while the other shard still ran and the coordinator built the report on
 * those cores. A process that exits gives its memory back to the kernel
 * whole: 0.5 s for a 1.9 GB heap, on no other process's core
 * (bench/results/simulate.md, "Shards in processes of their own"). Its
 * standard error is passed through, and its tail kept for a failure.
 */
export class SimWorker {
  readonly process: ChildProcess;
  /** Resolves when the process has exited and its standard error is read to the end. */
  readonly closed: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The file of what it runs, in a directory of its own; gone once the worker has read it. */
  readonly startFile: string;
  private tail = "";

  constructor(script: URL, data: WorkerData, limits?: HeapLimits) {
    const dir = mkdtempSync(join(tmpdir(), "propagate-sim-"));
    this.startFile = join(dir, "start");
    writeFileSync(this.startFile, serialize(data));
    this.process = fork(fileURLToPath(script), [this.startFile], {
      execArgv: workerFlags(limits),
      serialization: "advanced",
      stdio: ["ignore", "inherit", "pipe", "ipc"],
    });
    this.process.stderr!.on("data", (chunk: Buffer) => {
      process.stderr.write(chunk);
      this.tail = (this.tail + chunk.toString()).slice(-STDERR_TAIL);
    });
    this.closed = new Promise((resolve) =>
      this.process.once("close", (code, signal) => {
        rmSync(dir, { recursive: true, force: true });
        resolve({ code, signal });
      }),
    );
  }

  /**
   * A message to the worker; none once its channel has closed. One it could
   * not take (it died as it was written: EPIPE) is dropped: its exit says why
   * (`closed`), not the write.
   */
  send(m: Serializable): void {
    if (this.process.connected) this.process.send(m, dropped);
  }

  /** Each message from the worker (shards: `ShardMessage`; fuzz.ts its own). */
  onMessage<M>(fn: (m: M) => void): void {
    this.process.on("message", fn as (m: Serializable) => void);
  }

  /** The last of what the worker wrote to its standard error. */
  stderr(): string {
    return this.tail;
  }

  /** Ends the worker if it is running; resolves once it has. */
  async stop(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) this.process.kill();
    await this.closed;
  }
}

/** What a shard's worker sends back: its result without the predictions (functions do not cross). */
export type ShardResult = Omit<SimResult, "predicted">;

/** Messages from a shard's worker. */
export type ShardMessage =
  | { kind: "progress"; done: number }
  | { kind: "window"; atMs: number; broken: boolean; capped: boolean }
  /** The shard's result, its nodes packed (packed-nodes.ts). */
  | { kind: "done"; result: Omit<ShardResult, "nodes">; nodes: PackedNodes }
  | { kind: "failed"; message: string; stack?: string };

/**
 * `simulate` over `workers` processes (1: in this thread). The result is the
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
  const workersStarted: SimWorker[] = [];
  const options = serializedOptions(o);
  const runs = shards.map((topology, s) =>
    runShard(
      script,
      o,
      options,
      topology,
      s,
      shards.length,
      (k) => {
        done[s] = k;
        o.onProgress?.(Math.min(...done), o.changes);
      },
      (atMs, broken, capped) => windows.closed(s, atMs, broken, capped),
      (w) => {
        workersStarted.push(w);
      },
    ),
  );
  let predicted: SimResult["predicted"];
  let results: ShardResult[];
  let places: Map<string, number> | undefined;
  try {
    // This process's predictions (functions do not cross to workers) are made
    // while the workers build their worlds, not after they finish; each
    // worker gets its nodes' bounds from them rather than predicting the
    // whole run again (run.ts `bounds`: ~1 s of a worker at 100,000 resolvers).
    predicted = predictRun(o);
    const { maxMs, byId } = boundsOf(predicted);
    for (const [s, w] of workersStarted.entries()) {
      const shard = shards[s]!;
      const ids = [...shard.edges, ...shard.resolvers].map((n) => n.id);
      w.send({ kind: "bounds", maxMs, byId: ids.map((id) => [id, byId.get(id)]) });
    }
    // Once a shard has ended, while the others run: what the merge and the
    // report look up by node id (0.3 s after the last shard otherwise).
    void Promise.race(runs).then(
      () => {
        places ??= placesOf(o.topology);
        boundsRecord(predicted);
      },
      () => {},
    );
    results = await Promise.all(runs);
  } catch (err) {
    // One shard failed (out of memory, a bug): the others would wait at the
    // barrier for ever.
    windows.stop();
    await Promise.allSettled(runs.map((r) => r.catch(() => {})));
    await Promise.all(workersStarted.map((w) => w.stop()));
    throw err;
  }
  // Every worker has sent its result and exits by itself (worker-main.ts):
  // the kernel takes its heap back while this process merges the results.
  const merged = merge(
    o,
    results,
    predicted,
    performance.now() - wallStart,
    places ?? placesOf(o.topology),
  );
  // Past a violation the shards differ from one process: the broken shard
  // stopped at it, the others ran on to the end of their window (and the
  // change being followed was not recorded). The run that breaks a rule is
  // the one to replay exactly, so it is run again in this thread.
  if (merged.violation) return simulate(o);
  return merged;
}

/**
 * The options shard `shard` of `o` cut into `of` runs with, in its worker:
 * its nodes and the whole topology. Faults stay whole (every shard owes
 * convergence from the same last fault; the world restarts only its own
 * nodes). The worker cuts its shard itself: the whole topology crosses to
 * it once, not again inside its shard (8.4 against 4.4 MB at 100,000
 * resolvers, and a fifth of the time to read).
 */
export function shardOptions(o: SimOptions, shard: number, of: number): SimOptions {
  const topology = splitTopology(o.topology, of)[shard];
  if (topology === undefined) throw new RangeError(`no shard ${shard} of ${of}`);
  return { ...o, topology, whole: o.topology };
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
  o: SimOptions,
  options: Uint8Array,
  topology: Topology,
  shard: number,
  shards: number,
  progress: (done: number) => void,
  windowClosed: (atMs: number, broken: boolean, capped: boolean) => Promise<number | undefined>,
  started: (w: SimWorker) => void,
): Promise<ShardResult> {
  const nodes = topology.edges.length + topology.resolvers.length;
  const limit = oldGenerationMb(nodes, o.changes, shards);
  // Cut again by the worker: as many shards as here (never more than subtrees), the same cut.
  const worker = new SimWorker(
    script,
    { kind: "shard", options, shard, of: shards },
    { youngMb: youngGenerationMb(shards), oldMb: limit },
  );
  started(worker);
  return new Promise((resolve, reject) => {
    let settled = false;
    worker.onMessage((m: ShardMessage) => {
      if (m.kind === "progress") progress(m.done);
      else if (m.kind === "window")
        void windowClosed(m.atMs, m.broken, m.capped).then(
          (end) => worker.send({ end }),
          (err: unknown) => {
            settled = true;
            reject(err);
          },
        );
      else if (m.kind === "done") {
        settled = true;
        try {
          resolve({ ...m.result, nodes: unpackNodes(m.nodes) });
        } catch (err) {
          // A result that does not unpack fails the run, not this process.
          reject(err);
        }
      } else {
        settled = true;
        const err = new Error(`simulation shard failed: ${m.message}`);
        if (m.stack) err.stack = m.stack;
        reject(err);
      }
    });
    // Not started (no such script, no process to spare).
    worker.process.on("error", (err) => {
      settled = true;
      reject(err);
    });
    void worker.closed.then(({ code, signal }) => {
      if (settled) return;
      const stderr = worker.stderr();
      reject(
        // V8's fatal error as its heap reaches the limit (--max-old-space-size).
        /JavaScript heap out of memory/.test(stderr)
          ? new Error(
              `a simulation shard of ${nodes} nodes ran out of its ${limit} MB heap; give the run more with NODE_OPTIONS=--max-old-space-size=MB (shared among the workers), or fewer --workers`,
            )
          : new Error(
              `simulation shard exited with ${signal ?? `code ${code}`} before its result${stderr ? `: ${stderr.trim().split("\n").slice(-5).join("\n")}` : ""}`,
            ),
      );
    });
  });
}

/** Each node's place in the order one process lists them: edges parents first, then resolvers. */
function placesOf(t: Topology): Map<string, number> {
  const order = new Map<string, number>();
  let i = 0;
  for (const e of edgesInStartOrder(t)) order.set(e.id, i++);
  for (const r of t.resolvers) order.set(r.id, i++);
  return order;
}

/** The shards' results as one run's, nodes in the order one process lists them (`order`: `placesOf`). */
function merge(
  o: SimOptions,
  parts: ShardResult[],
  predicted: SimResult["predicted"],
  wallMs: number,
  order: Map<string, number>,
): SimResult {
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
