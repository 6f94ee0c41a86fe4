/** What the benchmarks share: the machine line, autocannon, and helper servers started as scripts. */
import { execFile, spawn } from "node:child_process";
import { closeSync, openSync, readFileSync, rmSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const AUTOCANNON = fileURLToPath(new URL("../node_modules/.bin/autocannon", import.meta.url));

/** The machine a result was measured on: cores, CPU model, Node version, load average. */
export function machine(): string {
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
  return `${cpus().length} x ${cpus()[0]?.model}, node ${process.version}, load ${load}`;
}

export interface AutocannonResult {
  requests: { average: number; total: number };
  latency: { average: number; p50: number; p99: number; max: number };
  non2xx: number;
  errors: number;
}

/** Runs autocannon with `args` (it stops by itself: pass `-d SECONDS`) and returns its JSON summary. */
export async function autocannon(args: string[]): Promise<AutocannonResult> {
  // On the load generator's core, like dnsperf (a no-op on one core).
  const [cmd, argv] = onCore(1, AUTOCANNON, ["--json", ...args]);
  const { stdout } = await run(cmd, argv, { maxBuffer: 1 << 26 });
  return JSON.parse(stdout) as AutocannonResult;
}

/** Starts `bench/<file>` with tsx and resolves with its `ready {json}` line once it listens. */
export function startScript(
  file: string,
): Promise<{ ready: Record<string, string>; pid: number | undefined; stop: () => void }> {
  const path = fileURLToPath(new URL(file, import.meta.url));
  const proc = spawn(process.execPath, ["--import", "tsx", path], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /^ready (\{.*\})$/m.exec(out);
      if (m) resolve({ ready: JSON.parse(m[1]!), pid: proc.pid, stop: () => proc.kill("SIGTERM") });
    });
    proc.once("exit", (code) => reject(new Error(`${file} exited with ${code}: ${out}`)));
  });
}

/**
 * Whether to pin: with two or more cores the server gets core 0 and the load
 * generator core 1, so they do not steal each other's time slices.
 */
export const PINNING = cpus().length >= 2;

/** Pins every thread of process `pid` to `core` (taskset -a); a no-op on one core. */
export async function pin(pid: number | undefined, core: number): Promise<void> {
  if (!PINNING || pid === undefined) return;
  await run("taskset", ["-a", "-cp", String(core), String(pid)]);
}

/** `command args` run on `core` (through taskset) where pinning applies. */
export function onCore(core: number, command: string, args: string[]): [string, string[]] {
  return PINNING ? ["taskset", ["-c", String(core), command, ...args]] : [command, args];
}

export interface DnsperfResult {
  command: string;
  completed: number;
  lost: number;
  qps: number;
  /** p50, p99 and max from dnsperf -v's per-query latencies, as text. */
  latency: string;
}

/**
 * Runs dnsperf -v on core 1 against `addr` with query file `file`; `extra`
 * adds flags (-l, -c, -T, -q, -m). Its per-query lines go to a file, not a
 * pipe, so reading them never slows dnsperf down.
 */
export async function dnsperf(addr: string, file: string, extra: string[]): Promise<DnsperfResult> {
  const [host, port] = addr.split(":") as [string, string];
  const args = ["-s", host, "-p", port, "-d", file, "-v", ...extra];
  const [cmd, argv] = onCore(1, "dnsperf", args);
  const outFile = `${file}.dnsperf-out`;
  const fd = openSync(outFile, "w");
  try {
    const proc = spawn(cmd, argv, { stdio: ["ignore", fd, "inherit"] });
    const code = await new Promise<number | null>((resolve, reject) => {
      proc.once("error", reject);
      proc.once("exit", resolve);
    });
    if (code !== 0) throw new Error(`dnsperf exited with ${code}`);
  } finally {
    closeSync(fd);
  }
  const text = readFileSync(outFile, "latin1");
  rmSync(outFile);
  const latencies: number[] = [];
  let summary = "";
  for (const line of text.split("\n")) {
    if (line.startsWith("> ")) {
      const seconds = Number(line.slice(line.lastIndexOf(" ") + 1));
      if (Number.isFinite(seconds)) latencies.push(seconds);
    } else summary += `${line}\n`;
  }
  const pick = (label: string) =>
    Number(new RegExp(`${label}:\\s+([\\d.]+)`).exec(summary)?.[1] ?? Number.NaN);
  const sorted = Float64Array.from(latencies).sort();
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? 0;
  const ms = (s: number) => (s * 1000).toFixed(2);
  return {
    command: `${cmd} ${argv.join(" ")}`,
    completed: pick("Queries completed"),
    lost: pick("Queries lost"),
    qps: pick("Queries per second"),
    latency: `p50 ${ms(at(0.5))} ms, p99 ${ms(at(0.99))} ms, max ${ms(at(1))} ms`,
  };
}

/** One figure's line: `label: value unit (p99 ...) vs reference -> ratio`. */
export function figure(
  label: string,
  value: number,
  unit: string,
  extra: string,
  reference?: { label: string; value: number },
): string {
  const v = `${Math.round(value).toLocaleString("en")} ${unit}`;
  if (!reference) return `${label}: ${v}${extra ? ` (${extra})` : ""}`;
  const ratio = value / reference.value;
  return `${label}: ${v}${extra ? ` (${extra})` : ""} vs ${reference.label} ${Math.round(reference.value).toLocaleString("en")} ${unit} -> ${ratio.toFixed(2)}x`;
}

export interface WrkResult {
  command: string;
  rps: number;
  p50: string;
  p99: string;
  non2xx: number;
}

/** wrk -t1 on core 1 for `seconds`, with an optional Lua `script`; requests/s, p50, p99, non-2xx. */
export async function wrk(
  target: string,
  connections: number,
  seconds: number,
  script?: string,
): Promise<WrkResult> {
  const args = ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency"];
  if (script) args.push("-s", script);
  args.push(target);
  const [cmd, argv] = onCore(1, "wrk", args);
  const { stdout } = await run(cmd, argv, { timeout: (seconds + 30) * 1000 });
  const pick = (re: RegExp) => re.exec(stdout)?.[1];
  return {
    command: `${cmd} ${argv.join(" ")}`,
    rps: Number(pick(/Requests\/sec:\s+([\d.]+)/)),
    p50: pick(/50%\s+(\S+)/) ?? "?",
    p99: pick(/99%\s+(\S+)/) ?? "?",
    non2xx: Number(pick(/Non-2xx or 3xx responses: (\d+)/) ?? 0),
  };
}

/**
 * CPU seconds (user + system, every thread) process `pid` has used, from
 * /proc (Linux); with `reaped`, also its children that have ended and been
 * waited for (a simulator's worker processes). NaN once it has gone.
 */
export function cpuSeconds(pid: number | undefined, reaped = false): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "latin1");
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const own = Number(fields[11]) + Number(fields[12]);
    return (reaped ? own + Number(fields[13]) + Number(fields[14]) : own) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** Resident memory of process `pid` in KB, from /proc (Linux); 0 once it has gone. */
export function residentKb(pid: number): number {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "latin1"))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** The running children of process `pid` (its main thread's), from /proc (Linux). */
export function childPids(pid: number): number[] {
  try {
    const text = readFileSync(`/proc/${pid}/task/${pid}/children`, "latin1");
    return text
      .split(" ")
      .filter((p) => p !== "")
      .map(Number);
  } catch {
    return [];
  }
}
/** USER_HZ: the unit of /proc/PID/stat times, 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;
