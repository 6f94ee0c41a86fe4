// Two checkouts' simulator runs, interleaved, each beside the host's state:
// `node bench/sim-ab.mjs <checkout A> <checkout B> <pairs> -- <simulate flags>`
// runs `propagate simulate <flags> --json` from each checkout in turn (A B,
// then B A, so neither always runs first), `pairs` times each, and before
// every run the host probe (host-latency.mjs: a dependent random read's
// time). For each run it prints the wall time, the CPU of the command and
// its reaped workers (/proc/<pid>/stat utime + stime + cutime + cstime, read
// ten times a second), the most resident memory of the command and its
// workers at once, the phases the report's note gives, and whether the
// report (less its notes) is the first run's; then the medians of each side.
//
// On this host the same hour moved between 58.9 and 106.9 s within a day
// (bench/results/simulate.md): a difference between two checkouts is read on
// medians of pairs run together, and the report must be equal where the
// change claims it. The probe says what the host's memory costs at the
// run's start, not how the run will go: an hour's spells come and go within
// it (two pairs of one code: 66.6-76.8 s with the probe at 235-297 ns, the
// slowest run after the quickest probe).
import { spawn, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";

const dash = process.argv.indexOf("--");
const [dirA, dirB, pairsText] = process.argv.slice(2, dash < 0 ? undefined : dash);
const flags = dash < 0 ? [] : process.argv.slice(dash + 1);
const pairs = Number(pairsText);
if (!dirA || !dirB || !Number.isInteger(pairs) || pairs < 1 || flags.length === 0) {
  console.error(
    "usage: node bench/sim-ab.mjs <checkout A> <checkout B> <pairs> -- <simulate flags>, e.g. /work/main /tmp/dev 3 -- --topology infra/topologies/internet.json --edges 1000 --resolvers 100000 --ttl 300 --swr 10 --every 60 --changes 60",
  );
  process.exit(2);
}

const TICKS_PER_SECOND = 100; // USER_HZ on Linux
const probeScript = new URL("./host-latency.mjs", import.meta.url).pathname;

/** The host probe's dependent random read, in ns. */
function probe() {
  const out = spawnSync(process.execPath, [probeScript], { encoding: "utf8" }).stdout;
  return Number(/memory: (\d+) ns/.exec(out)?.[1] ?? Number.NaN);
}

const read = (path) => {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined; // exited
  }
};

/** CPU seconds of a process and its reaped children, and its resident KB. */
function usage(pid) {
  const stat = read(`/proc/${pid}/stat`);
  if (stat === undefined) return undefined;
  // Fields after the command's closing parenthesis: utime is the 12th of them.
  const f = stat
    .slice(stat.lastIndexOf(")") + 2)
    .split(" ")
    .map(Number);
  const cpu = (f[11] + f[12] + f[13] + f[14]) / TICKS_PER_SECOND;
  const rss = Number(/VmRSS:\s+(\d+)/.exec(read(`/proc/${pid}/status`) ?? "")?.[1] ?? 0);
  return { cpu, rss };
}

/** One run of `propagate simulate` from `dir`: its report, wall, CPU and peak memory. */
function run(dir) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [join(dir, "bin/propagate.mjs"), "simulate", ...flags, "--json"],
      {
        cwd: dir,
        stdio: ["ignore", "pipe", "inherit"],
      },
    );
    const chunks = [];
    child.stdout.on("data", (c) => chunks.push(c));
    let cpu = 0;
    let peakKb = 0;
    const sample = () => {
      const own = usage(child.pid);
      if (own === undefined) return;
      cpu = own.cpu;
      let kb = own.rss;
      const kids = read(`/proc/${child.pid}/task/${child.pid}/children`) ?? "";
      for (const pid of kids.split(" ").filter((p) => p !== "")) kb += usage(pid)?.rss ?? 0;
      peakKb = Math.max(peakKb, kb);
    };
    const timer = setInterval(sample, 100);
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(timer);
      const wallS = (performance.now() - t0) / 1000;
      if (code !== 0) return reject(new Error(`simulate in ${dir} exited with ${code}`));
      const report = JSON.parse(Buffer.concat(chunks).toString());
      const note = report.notes?.[0] ?? "";
      const phases = /building .*$/.exec(note)?.[0] ?? "";
      delete report.notes;
      resolve({
        wallS,
        cpuS: cpu,
        peakGb: peakKb / 1024 / 1024,
        phases,
        text: JSON.stringify(report),
      });
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const runs = { A: [], B: [] };
let first;
let allEqual = true;
console.log("| run | side | probe | wall | CPU | peak RSS | report | phases |");
console.log("|---|---|---|---|---|---|---|---|");
for (let i = 0; i < pairs; i++) {
  for (const side of i % 2 === 0 ? ["A", "B"] : ["B", "A"]) {
    const ns = probe();
    const r = await run(side === "A" ? dirA : dirB).catch((err) => {
      // A run that failed (its own error is above, on standard error) ends the comparison.
      console.error(`sim-ab: ${err.message}`);
      process.exit(1);
    });
    first ??= r.text;
    const equal = r.text === first;
    allEqual &&= equal;
    runs[side].push({ ...r, ns });
    console.log(
      `| ${i + 1} | ${side} | ${ns} ns | ${r.wallS.toFixed(1)} s | ${r.cpuS.toFixed(1)} s | ${r.peakGb.toFixed(2)} GB | ${equal ? "equal" : "DIFFERS"} | ${r.phases} |`,
    );
  }
}
for (const side of ["A", "B"]) {
  const rs = runs[side];
  console.log(
    `${side} (${side === "A" ? dirA : dirB}): median wall ${median(rs.map((r) => r.wallS)).toFixed(1)} s, CPU ${median(rs.map((r) => r.cpuS)).toFixed(1)} s, peak ${median(rs.map((r) => r.peakGb)).toFixed(2)} GB, probe ${median(rs.map((r) => r.ns))} ns`,
  );
}
console.log(allEqual ? "every report equal to the first run's" : "REPORTS DIFFER");
