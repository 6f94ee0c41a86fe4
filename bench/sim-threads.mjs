// Where a simulator run's CPU goes, by thread, and what its garbage
// collector did: `node bench/sim-threads.mjs <simulate flags...>` runs
// `propagate simulate <flags> --json` under `--trace-gc-nvp` (which the
// coordinator passes on to its worker processes, infra/sim/shards.ts
// `workerFlags`) and reads the /proc schedstat of every thread of it and of
// its worker processes ten times a second (time on a core, time runnable but
// waiting for one), and their resident memory. Node names none of its
// threads: a process's own thread is its main one (the coordinator's, a
// worker's), and the rest are V8's platform threads (concurrent marking,
// parallel scavenging, sweeping, optimizing compiles), tsx's loader threads
// and libuv's.
//
// Wall times of identical runs differ by up to 25 % on this host, and CPU
// per thread by about as much. The collector's count of young collections
// moves least (within ~3 % between identical runs); bytes promoted vary more
// (483-664 MB over five identical 10,000-resolver hours), so a change is read
// on the medians of several runs interleaved with the code before it
// (bench/results/simulate.md, "Where the hour's CPU goes, by thread", and
// "The hour at scale").
import { spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";

const args = process.argv.slice(2);
if (args.length === 0) {
  console.error(
    "usage: node bench/sim-threads.mjs <simulate flags>, e.g. --topology infra/topologies/internet.json --edges 1000 --resolvers 100000 --ttl 300 --swr 10 --every 60 --changes 10",
  );
  process.exit(2);
}
const runner = new URL("./sim-threads-child.mjs", import.meta.url).pathname;
const t0 = performance.now();
// V8 prints the GC records on stdout, from every thread, each as two writes
// (the [pid:isolate] prefix, then the fields): the report goes to fd 3 so
// that the two do not mix, and the records are summed by their field lines.
const child = spawn(process.execPath, ["--trace-gc-nvp", runner, ...args, "--json"], {
  stdio: ["ignore", "pipe", "inherit", "pipe"],
});

/** Per thread id: its process, its last schedstat reading (ns on a core, ns runnable and waiting). */
const threads = new Map();
/** The worker processes, in the order they started. */
const workerPids = [];
/** The largest resident memory of the coordinator and its workers together, and of each, in KB. */
let peakRssKb = 0;
const peakOf = new Map();
const read1 = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined; // exited
  }
};
function sampleProcess(pid) {
  let tids;
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0; // exited
  }
  for (const tid of tids) {
    const stat = read1(`/proc/${pid}/task/${tid}/schedstat`);
    // Ended between the listing and the read: its last reading stays.
    if (stat === undefined) continue;
    const [run, wait] = stat.split(" ").map(Number);
    threads.set(tid, { pid: String(pid), run, wait });
  }
  const rss = Number(/VmRSS:\s+(\d+)/.exec(read1(`/proc/${pid}/status`) ?? "")?.[1] ?? 0);
  peakOf.set(pid, Math.max(peakOf.get(pid) ?? 0, rss));
  return rss;
}
function sample() {
  const children = (read1(`/proc/${child.pid}/task/${child.pid}/children`) ?? "")
    .split(" ")
    .filter((p) => p !== "")
    .map(Number);
  // Simulator workers only (not esbuild's service, which bundles them).
  for (const pid of children) {
    if (workerPids.includes(pid)) continue;
    const cmd = read1(`/proc/${pid}/cmdline`) ?? "";
    if (/sim-worker-[0-9a-f]+\.mjs|sim\/worker\.mjs/.test(cmd)) workerPids.push(pid);
  }
  let rss = sampleProcess(child.pid);
  for (const pid of workerPids) rss += sampleProcess(pid);
  peakRssKb = Math.max(peakRssKb, rss);
}
// A thread's time after its last reading is lost (a tenth of a second at
// most); the process's own total (getrusage, every thread) is printed beside.
const sampler = setInterval(sample, 100);

const read = (stream) => {
  const chunks = [];
  stream.on("data", (c) => chunks.push(c));
  return () => Buffer.concat(chunks).toString("utf8");
};
const gcText = read(child.stdout);
const reportText = read(child.stdio[3]);
const code = await new Promise((resolve) => child.on("close", resolve));
clearInterval(sampler);
const wallS = (performance.now() - t0) / 1000;
const [text, usageLine] = reportText().split("\n#usage ");
let report;
try {
  report = JSON.parse(text);
} catch {
  // --help, --fuzz and a failed run print no report of one run.
  console.error(
    `${text.slice(0, 2000)}\nsimulate exited with ${code} and printed no --json report of one run`,
  );
  process.exit(1);
}
// A run that found a violation still prints its report, then exits 1.
if (code !== 0) console.error(`simulate exited with ${code}: its figures follow all the same`);
const usage = usageLine ? JSON.parse(usageLine) : undefined;
const note = report.notes.find((n) => /events in/.test(n)) ?? "";

const gc = { s: 0, mc: 0, sPause: 0, mcPause: 0, bgScavenge: 0, bgMark: 0, promoted: 0 };
for (const [line] of gcText().matchAll(/pause=[^\n]* gc=(?:s|mc) [^\n]*/g)) {
  const kv = Object.fromEntries(
    [...line.matchAll(/([\w.]+)=([\d.]+)/g)].map((m) => [m[1], Number(m[2])]),
  );
  if (line.includes(" gc=s ")) {
    gc.s++;
    gc.sPause += kv.pause ?? 0;
    gc.bgScavenge += kv["background.scavenge.parallel"] ?? 0;
    gc.promoted += kv.promoted ?? 0;
  } else {
    gc.mc++;
    gc.mcPause += kv.pause ?? 0;
    gc.bgMark += kv["background.mark"] ?? 0;
  }
}

const sec = (ns) => (ns / 1e9).toFixed(1).padStart(6);
const all = [...threads.entries()].map(([tid, t]) => ({ tid, ...t }));
const main = all.find((t) => t.tid === String(child.pid));
const busy = workerPids.map((pid) => all.find((t) => t.tid === String(pid))).filter(Boolean);
const rest = all.filter((t) => t !== main && !busy.includes(t));
const sum = (ts, k) => ts.reduce((n, t) => n + t[k], 0);
const total = sum(all, "run");
const gb = (kb) => (kb / 1024 / 1024).toFixed(2);

console.log(`simulate ${args.join(" ")}`);
console.log(
  `wall ${wallS.toFixed(1)} s; CPU ${(total / 1e9).toFixed(1)} s on ${all.length} threads (${(total / 1e9 / wallS).toFixed(2)} cores)${usage ? `; the coordinator's own count ${((usage.user + usage.system) / 1e6).toFixed(1)} s` : ""}`,
);
console.log(
  `resident memory at most ${gb(peakRssKb)} GB at once (coordinator ${gb(peakOf.get(child.pid) ?? 0)} GB${workerPids.map((pid, i) => `, worker ${i + 1} ${gb(peakOf.get(pid) ?? 0)} GB`).join("")}; sampled every 0.1 s)`,
);
console.log(note.slice(note.indexOf("building")));
console.log("thread                 on a core  waiting to run");
if (main) console.log(`main                   ${sec(main.run)} s  ${sec(main.wait)} s`);
for (const [i, t] of busy.entries())
  console.log(`worker ${i + 1}               ${sec(t.run)} s  ${sec(t.wait)} s`);
console.log(
  `${String(rest.length).padStart(2)} others (V8, libuv)  ${sec(sum(rest, "run"))} s  ${sec(sum(rest, "wait"))} s  (${((100 * sum(rest, "run")) / total).toFixed(0)} % of the CPU)`,
);
// Summed over every isolate: the workers', the coordinator's and tsx's loader threads'.
console.log(
  `scavenges ${gc.s}: paused ${(gc.sPause / 1000).toFixed(1)} s, background ${(gc.bgScavenge / 1000).toFixed(1)} s, promoted ${(gc.promoted / 1e6).toFixed(0)} MB`,
);
console.log(
  `mark-compacts ${gc.mc}: paused ${(gc.mcPause / 1000).toFixed(1)} s, background marking ${(gc.bgMark / 1000).toFixed(1)} s`,
);
