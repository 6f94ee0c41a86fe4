/** What the benchmarks share: the machine line, autocannon, and helper servers started as scripts. */
import { execFile, spawn } from "node:child_process";
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
  const { stdout } = await run(AUTOCANNON, ["--json", ...args], { maxBuffer: 1 << 26 });
  return JSON.parse(stdout) as AutocannonResult;
}

/** Starts `bench/<file>` with tsx and resolves with its `ready {json}` line once it listens. */
export function startScript(
  file: string,
): Promise<{ ready: Record<string, string>; stop: () => void }> {
  const path = fileURLToPath(new URL(file, import.meta.url));
  const proc = spawn(process.execPath, ["--import", "tsx", path], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  return new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /^ready (\{.*\})$/m.exec(out);
      if (m) resolve({ ready: JSON.parse(m[1]!), stop: () => proc.kill("SIGTERM") });
    });
    proc.once("exit", (code) => reject(new Error(`${file} exited with ${code}: ${out}`)));
  });
}
