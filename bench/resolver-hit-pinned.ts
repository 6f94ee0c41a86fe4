/**
 * Cache-hit queries per second of `propagate resolver` (optionally `--workers N`),
 * next to the bare Node fixed-reply server (`fixed-udp-server.ts`) and Unbound
 * (`num-threads` = workers), all measured in the same run, servers pinned to CPU 0
 * and dnsperf to CPU 1 when the machine has two or more.
 * Usage: npx tsx bench/resolver-hit-pinned.ts [seconds=10] [rounds=2] [workers=1,2]
 * Env: PROFILE_DIR=dir writes a `--cpu-prof` profile of each resolver there;
 * BASELINE=dir also measures the resolver of another checkout (e.g. `git archive`
 * of an older commit with node_modules linked) in every round, for before/after;
 * RATE=N offers every server the same N queries/s (dnsperf -Q), so their CPU
 * per query is compared at one rate (it falls as the rate and batches grow).
 * Prints one line per figure with its ratio to the fixed-reply server of its round.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { type Running, startOriginProcess } from "../test/support/process.ts";
import { machine } from "./support.ts";

const run = promisify(execFile);
const seconds = Number(process.argv[2] ?? 10);
const rounds = Number(process.argv[3] ?? 2);
const workerCounts = (process.argv[4] ?? "1,2").split(",").map(Number);
const TOKEN = "bench-token-0123";
const NAMES = 250;
const pinned = cpus().length >= 2;
/** Servers share CPU 0 when pinned, or every CPU in `-workers` runs (so 2 workers may use 2). */
const serverCpus = (n: number) => (n > 1 ? "0,1" : "0");

const dir = await mkdtemp(join(tmpdir(), "resolver-hit-pinned-"));
const origin = await startOriginProcess(dir, TOKEN, ["--sample"]);
const TYPES = [
  ["A", (i: number) => `192.0.2.${i % 250}`],
  ["AAAA", (i: number) => `2001:db8::${i.toString(16)}`],
  ["TXT", (i: number) => `host ${i}`],
  ["MX", (i: number) => ({ preference: 10, exchange: `mx${i}.example.test` })],
] as const;
const queries: string[] = [];
const puts: Array<() => Promise<void>> = [];
for (let i = 0; i < NAMES; i++) {
  const name = `h${i}.example.test`;
  for (const [type, data] of TYPES) {
    queries.push(`${name} ${type}`);
    puts.push(async () => {
      const res = await fetch(`${origin.ready.http}/v1/zones/example.test/rrsets/${name}/${type}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ ttl: 3600, data: [data(i)] }),
      });
      if (res.status !== 200)
        throw new Error(`PUT ${name} ${type}: ${res.status} ${await res.text()}`);
    });
  }
}
// 20 writers at a time: the origin's group commit makes this a few seconds.
for (let i = 0; i < puts.length; i += 20) await Promise.all(puts.slice(i, i + 20).map((p) => p()));
const file = join(dir, "queries.txt");
await writeFile(file, `${queries.join("\n")}\n`);

async function pin(pid: number | undefined, list: string): Promise<void> {
  if (pinned && pid) await run("taskset", ["-a", "-cp", list, String(pid)]);
}

async function dnsperf(addr: string, extra: string[]): Promise<string> {
  const [host, port] = addr.split(":") as [string, string];
  const args = ["-s", host, "-p", port, "-d", file, "-c", "2", "-T", "2", "-q", "200", ...extra];
  const cmd = pinned ? "taskset" : "dnsperf";
  const full = pinned ? ["-c", "1", "dnsperf", ...args] : args;
  const { stdout } = await run(cmd, full, { timeout: (seconds + 60) * 1000 });
  return `${cmd} ${full.join(" ")}\n${stdout}`;
}

interface Figure {
  qps: number;
  lost: string;
  avgMs: number;
  maxMs: number;
  /** CPU time (user + system, every thread) the server spent per answered query, microseconds. */
  cpuUs: number;
}

/** utime + stime of a process, all its threads, in clock ticks (proc(5)). */
async function cpuTicks(pids: number[]): Promise<number> {
  let ticks = 0;
  for (const pid of pids) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks;
}
/** Linux's USER_HZ: proc(5) counts CPU time in 1/100 s everywhere this runs. */
const TICK_US = 10_000;

/**
 * One dnsperf run against `addr`. Besides the rate, the servers' CPU time
 * per answered query: on a machine shared with other work the rate swings
 * with their load, the CPU a query costs much less so (its inverse is the
 * rate the server would reach on a core of its own).
 */
async function measure(addr: string, pids: number[]): Promise<Figure> {
  const t0 = await cpuTicks(pids);
  const rate = process.env.RATE ? ["-Q", process.env.RATE] : [];
  const out = await dnsperf(addr, ["-l", String(seconds), ...rate]);
  const ticks = (await cpuTicks(pids)) - t0;
  const pick = (l: string) => new RegExp(`${l}:\\s+([^\\n]*)`).exec(out)?.[1]?.trim() ?? "";
  const lat = /Average Latency \(s\):\s+([\d.]+) \(min [\d.]+, max ([\d.]+)\)/.exec(out);
  const completed = Number(/Queries completed:\s+(\d+)/.exec(out)?.[1]);
  return {
    qps: Number(pick("Queries per second")),
    lost: pick("Queries lost"),
    avgMs: Number(lat?.[1]) * 1000,
    maxMs: Number(lat?.[2]) * 1000,
    cpuUs: (ticks * TICK_US) / completed,
  };
}

/** An Unbound serving the same names from its cache: a stub zone pointing at the origin's DNS. */
async function startUnbound(
  threads: number,
): Promise<{ addr: string; pid: number; stop: () => void }> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const conf = join(dir, `unbound-${threads}.conf`);
  const [oh, op] = origin.ready.dns!.split(":");
  await writeFile(
    conf,
    `server:
  interface: 127.0.0.1@${port}
  port: ${port}
  num-threads: ${threads}
  so-reuseport: yes
  do-ip6: no
  chroot: ""
  username: ""
  directory: "${dir}"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  domain-insecure: "example.test"
  module-config: "iterator"
  prefetch: no
  minimal-responses: yes
stub-zone:
  name: "example.test"
  stub-addr: ${oh}@${op}
`,
  );
  const proc = spawn("unbound", ["-d", "-c", conf], { stdio: ["ignore", "inherit", "inherit"] });
  const addr = `127.0.0.1:${port}`;
  for (let i = 0; ; i++) {
    try {
      await run("dig", [
        `@127.0.0.1`,
        "-p",
        String(port),
        "+short",
        "+time=1",
        "+tries=1",
        "h0.example.test",
        "A",
      ]);
      break;
    } catch (err) {
      if (i > 50) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await pin(proc.pid, serverCpus(threads));
  return { addr, pid: proc.pid!, stop: () => proc.kill("SIGTERM") };
}

/** `propagate resolver`, under `--cpu-prof` when PROFILE_DIR is set (not allowed in NODE_OPTIONS). */
function startResolverProcess(args: string[], root?: string): Promise<Running> {
  const prof = process.env.PROFILE_DIR;
  const node = prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [];
  const bin = root
    ? join(root, "bin/propagate.mjs")
    : fileURLToPath(new URL("../bin/propagate.mjs", import.meta.url));
  const proc = spawn(process.execPath, [...node, bin, "resolver", ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise((resolve) => proc.once("exit", resolve));
  return new Promise((resolve, reject) => {
    let out = "";
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /^ready (\{.*\})$/m.exec(out);
      if (m)
        resolve({
          proc,
          ready: JSON.parse(m[1]!),
          output: () => out,
          stop: async () => {
            proc.kill("SIGTERM");
            return (await exited) as number | null;
          },
        });
    });
    proc.once("exit", (code) => reject(new Error(`resolver exited with ${code}: ${out}`)));
  });
}

console.log(`machine: ${machine()}`);
console.log(`${queries.length} questions (${NAMES} names x ${TYPES.map((t) => t[0]).join("/")})`);
const fixedProc = spawn(
  process.execPath,
  ["--import", "tsx", fileURLToPath(new URL("fixed-udp-server.ts", import.meta.url))],
  { stdio: ["ignore", "pipe", "inherit"] },
);
const fixedAddr = await new Promise<string>((resolve) => {
  let out = "";
  fixedProc.stdout!.on("data", (c: Buffer) => {
    out += c.toString();
    const m = /^ready (\{.*\})$/m.exec(out);
    if (m) resolve(JSON.parse(m[1]!).dns);
  });
});
await pin(fixedProc.pid, "0");
const fixed = { ready: { dns: fixedAddr }, stop: () => fixedProc.kill("SIGTERM") };
/** Every process of a resolver: the primary and, with --workers, each worker. */
const pidsOf = (r: Running) => [
  r.proc.pid!,
  ...(r.ready.workerPids ?? "").split(",").filter(Boolean).map(Number),
];

const lines: string[] = [];
const baseline = process.env.BASELINE;
async function startPinnedResolver(workers: number, root?: string): Promise<Running> {
  const resolver = await startResolverProcess(
    [
      "--dns",
      "127.0.0.1:0",
      "--upstream",
      origin.ready.http!,
      "--token",
      TOKEN,
      ...(workers > 1 ? ["--workers", String(workers)] : []),
    ],
    root,
  );
  await pin(resolver.proc.pid, serverCpus(workers));
  for (const pid of (resolver.ready.workerPids ?? "").split(",").filter(Boolean))
    await pin(Number(pid), serverCpus(workers));
  // Warm every question into every worker (each has its own cache): a few passes.
  // The kernel hands each datagram to one worker: 4 passes per worker leave ~1/16 of the
  // questions unseen by a worker with 2 (fetched, once, in the first measured round).
  for (let i = 0; i < 4 * workers; i++) await dnsperf(resolver.ready.dns!, ["-n", "1"]);
  return resolver;
}
for (const workers of workerCounts) {
  const resolver = await startPinnedResolver(workers);
  const before = baseline ? await startPinnedResolver(workers, baseline) : undefined;
  const unbound = await startUnbound(workers);
  for (let i = 0; i < 2 * workers; i++) await dnsperf(unbound.addr, ["-n", "1"]);
  for (let round = 1; round <= rounds; round++) {
    const f = await measure(fixed.ready.dns!, [fixedProc.pid!]);
    const r = await measure(resolver.ready.dns!, pidsOf(resolver));
    const b = before ? await measure(before.ready.dns!, pidsOf(before)) : undefined;
    const u = await measure(unbound.addr, [unbound.pid]);
    const fmt = (label: string, x: Figure) =>
      `round ${round} workers ${workers} ${label}: ${Math.round(x.qps)} qps, ratio ${(x.qps / f.qps).toFixed(2)}x fixed, avg ${x.avgMs.toFixed(2)} ms, max ${x.maxMs.toFixed(1)} ms, lost ${x.lost}; CPU ${x.cpuUs.toFixed(1)} us/query, ratio ${(f.cpuUs / x.cpuUs).toFixed(2)}x fixed`;
    for (const l of [
      fmt("fixed-udp-server (1 process)", f),
      fmt("resolver", r),
      ...(b ? [fmt("resolver (BASELINE)", b)] : []),
      fmt(`unbound num-threads ${workers}`, u),
    ]) {
      console.log(l);
      lines.push(l);
    }
  }
  unbound.stop();
  let upstream = 0;
  for (const admin of resolver.ready.admin!.split(",")) {
    const m = await (await fetch(`${admin}/metrics`)).text();
    upstream += Number(/^resolver_upstream_queries_total\{[^}]*\} (\d+)/m.exec(m)?.[1]);
  }
  console.log(
    `workers ${workers}: resolver upstream queries ${upstream} in all (the warm-up's ${queries.length} per worker at most)`,
  );
  await resolver.stop();
  await before?.stop();
}
fixed.stop();
await origin.stop();
await rm(dir, { recursive: true, force: true });
