// Two checkouts' simulator runs, interleaved, each beside the host's state:
// `npx tsx bench/sim-ab.ts <checkout A> <checkout B> <pairs> -- <simulate flags>`
// runs `propagate simulate <flags> --json` from each checkout in turn (A B,
// then B A, so neither always runs first), `pairs` times each, and before
// every run the host probe (host-latency.mjs: a dependent random read's
// time). For each run it prints the wall time, the CPU of the command and
// its workers (support.ts `cpuSeconds` of each, read ten times a second), the
// most resident memory of the command and its workers at once, the phases
// the report's note gives, and whether the report (less its notes) is the
// first run's; then the medians of each side.
//
// On this host the same hour moved between 58.9 and 106.9 s within a day
// (bench/results/simulate.md): a difference between two checkouts is read on
// medians of pairs run together, and the report must be equal where the
// change claims it. The probe says what the host's memory costs at the
// run's start, not how the run will go: an hour's spells come and go within
// it (two pairs of one code: 66.6-76.8 s with the probe at 235-297 ns, the
// slowest run after the quickest probe).
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { childPids, cpuSeconds, residentKb } from "./support.ts";

const dash = process.argv.indexOf("--");
const [dirA, dirB, pairsText] = process.argv.slice(2, dash < 0 ? undefined : dash);
const flags = dash < 0 ? [] : process.argv.slice(dash + 1);
const pairs = Number(pairsText);
if (!dirA || !dirB || !Number.isInteger(pairs) || pairs < 1 || flags.length === 0) {
  console.error(
    "usage: npx tsx bench/sim-ab.ts <checkout A> <checkout B> <pairs> -- <simulate flags>, e.g. /work/main /tmp/dev 3 -- --topology infra/topologies/internet.json --edges 1000 --resolvers 100000 --ttl 300 --swr 10 --every 60 --changes 60",
  );
  process.exit(2);
}

const probeScript = new URL("./host-latency.mjs", import.meta.url).pathname;

/** The host probe's dependent random read, in ns. */
function probe(): number {
  const out = spawnSync(process.execPath, [probeScript], { encoding: "utf8" }).stdout;
  return Number(/memory: (\d+) ns/.exec(out)?.[1] ?? Number.NaN);
}

interface Run {
  wallS: number;
  cpuS: number;
  peakGb: number;
  phases: string;
  /** The report less its notes, as JSON. */
  text: string;
}

/** One run of `propagate simulate` from `dir`: its report, wall, CPU and peak memory. */
function run(dir: string): Promise<Run> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(
      process.execPath,
      [join(dir, "bin/propagate.mjs"), "simulate", ...flags, "--json"],
      { cwd: dir, stdio: ["ignore", "pipe", "inherit"] },
    );
    const chunks: Buffer[] = [];
    child.stdout.on("data", (c: Buffer) => chunks.push(c));
    // Each process's own CPU, read while it runs: a worker that ends after
    // the last reading of the command's reaped children (or is never reaped,
    // the command gone first) would otherwise be missing from the total.
    const cpuOf = new Map<number, number>();
    let peakKb = 0;
    const sample = () => {
      const pid = child.pid;
      if (pid === undefined) return;
      const own = cpuSeconds(pid);
      // Gone (exited, being reaped): the last readings stand.
      if (Number.isNaN(own)) return;
      cpuOf.set(pid, own);
      let kb = residentKb(pid);
      for (const worker of childPids(pid)) {
        kb += residentKb(worker);
        const used = cpuSeconds(worker);
        if (!Number.isNaN(used)) cpuOf.set(worker, used);
      }
      peakKb = Math.max(peakKb, kb);
    };
    const timer = setInterval(sample, 100);
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(timer);
      const wallS = (performance.now() - t0) / 1000;
      if (code !== 0) return reject(new Error(`simulate in ${dir} exited with ${code}`));
      const report = JSON.parse(Buffer.concat(chunks).toString()) as { notes?: string[] };
      const phases = /building .*$/.exec(report.notes?.[0] ?? "")?.[0] ?? "";
      delete report.notes;
      resolve({
        wallS,
        cpuS: [...cpuOf.values()].reduce((a, b) => a + b, 0),
        peakGb: peakKb / 1024 / 1024,
        phases,
        text: JSON.stringify(report),
      });
    });
  });
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const runs: Record<"A" | "B", (Run & { ns: number })[]> = { A: [], B: [] };
let first: string | undefined;
let allEqual = true;
console.log("| run | side | probe | wall | CPU | peak RSS | report | phases |");
console.log("|---|---|---|---|---|---|---|---|");
for (let i = 0; i < pairs; i++) {
  for (const side of i % 2 === 0 ? (["A", "B"] as const) : (["B", "A"] as const)) {
    const ns = probe();
    const r = await run(side === "A" ? dirA : dirB).catch((err: Error) => {
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
for (const side of ["A", "B"] as const) {
  const rs = runs[side];
  console.log(
    `${side} (${side === "A" ? dirA : dirB}): median wall ${median(rs.map((r) => r.wallS)).toFixed(1)} s, CPU ${median(rs.map((r) => r.cpuS)).toFixed(1)} s, peak ${median(rs.map((r) => r.peakGb)).toFixed(2)} GB, probe ${median(rs.map((r) => r.ns))} ns`,
  );
}
console.log(allEqual ? "every report equal to the first run's" : "REPORTS DIFFER");
