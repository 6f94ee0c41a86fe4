/**
 * Cache-hit requests per second of `propagate edge` over 1,000 cached URLs, next
 * to bare Hono answering the same JSON from memory (`hono-json.ts`), same run,
 * servers pinned to CPU 0 and wrk to CPU 1 (when the machine has two or more).
 * Two edges: the default (fresh hits on the Node fast path, edge/fast-hit.ts)
 * and one started with --no-fast-hits (every hit through Hono and the engine).
 * Usage: npx tsx bench/edge-hit-pinned.ts [seconds=10] [rounds=2]
 * Prints one line per figure with its ratio to Hono in the same round, then
 * the median ratio over the rounds.
 */
import { execFile, spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { startOriginProcess, startPropagate } from "../test/support/process.ts";
import { machine } from "./support.ts";

const run = promisify(execFile);
const seconds = Number(process.argv[2] ?? 10);
const rounds = Number(process.argv[3] ?? 2);
const TOKEN = "bench-token-0123";
const NAMES = 250;
const TYPES = ["A", "AAAA", "TXT", "MX"] as const;
const pinned = cpus().length >= 2;

const dir = await mkdtemp(join(tmpdir(), "edge-hit-pinned-"));
const origin = await startOriginProcess(dir, TOKEN, ["--sample"]);
const data = (type: string, i: number): unknown =>
  type === "A"
    ? `192.0.2.${i % 250}`
    : type === "AAAA"
      ? `2001:db8::${i.toString(16)}`
      : type === "TXT"
        ? `host ${i}`
        : { preference: 10, exchange: `mx${i}.example.test` };
const paths: string[] = [];
const puts: Array<() => Promise<void>> = [];
for (let i = 0; i < NAMES; i++)
  for (const type of TYPES) {
    const name = `h${i}.example.test`;
    paths.push(`/resolve?name=${name}&type=${type}`);
    puts.push(async () => {
      const res = await fetch(`${origin.ready.http}/v1/zones/example.test/rrsets/${name}/${type}`, {
        method: "PUT",
        headers: { authorization: `Bearer ${TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ ttl: 3600, data: [data(type, i)] }),
      });
      if (res.status !== 200) throw new Error(`PUT ${name} ${type}: ${res.status}`);
    });
  }
for (let i = 0; i < puts.length; i += 20) await Promise.all(puts.slice(i, i + 20).map((p) => p()));

const edgeArgs = ["edge", "--http", "127.0.0.1:0", "--parent", origin.ready.http!];
const edge = await startPropagate(edgeArgs);
const slow = await startPropagate([...edgeArgs, "--no-fast-hits"]);
const pin = async (pid: number | undefined) => {
  if (pinned && pid) await run("taskset", ["-a", "-cp", "0", String(pid)]);
};
await pin(edge.proc.pid);
await pin(slow.proc.pid);
let sample = "";
/** The header fields of a hit (Node's framing aside), for the like-with-like reference. */
let sampleFields: Record<string, string> = {};
for (const base of [edge.ready.http!, slow.ready.http!]) {
  for (const p of paths) await (await fetch(`${base}${p}`)).arrayBuffer();
  const check = await fetch(`${base}${paths[0]}`);
  sample = await check.text();
  sampleFields = Object.fromEntries(
    [...check.headers].filter(([k]) => !["connection", "keep-alive", "content-length"].includes(k)),
  );
  if (!check.headers.get("cache-status")?.includes("hit"))
    throw new Error(`warm-up gave no hit: ${check.headers.get("cache-status")}`);
}

async function startHono(...args: string[]) {
  const proc = spawn(
    process.execPath,
    ["--import", "tsx", fileURLToPath(new URL("hono-json.ts", import.meta.url)), ...args],
    { stdio: ["ignore", "pipe", "inherit"] },
  );
  const url = await new Promise<string>((resolve) => {
    let out = "";
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /^ready (\{.*\})$/m.exec(out);
      if (m) resolve(JSON.parse(m[1]!).http);
    });
  });
  await pin(proc.pid);
  return { proc, url };
}
const { proc: hono, url: honoUrl } = await startHono(sample);
// The same JSON with the edge's header fields: how much of the gap is the answer's shape.
const { proc: honoFields, url: honoFieldsUrl } = await startHono(
  sample,
  JSON.stringify(sampleFields),
);

// wrk walks the 1,000 paths in turn on every connection.
const lua = join(dir, "paths.lua");
await writeFile(
  lua,
  `local paths = {${paths.map((p) => JSON.stringify(p)).join(",")}}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
`,
);

/** CPU seconds (user + system, every thread) `pid` has used so far, from /proc (Linux). */
async function cpuSeconds(pid: number | undefined): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface Run {
  rps: number;
  p99: string;
  errors: string;
  /** Server CPU per request (us): on a loaded machine, steadier than rps. */
  cpuUs: number;
}

async function wrk(base: string, pid: number | undefined): Promise<Run> {
  const cpu0 = await cpuSeconds(pid);
  const args = ["-t1", "-c50", `-d${seconds}s`, "--latency", "-s", lua, base];
  const { stdout } = await run(
    pinned ? "taskset" : "wrk",
    pinned ? ["-c", "1", "wrk", ...args] : args,
    {
      timeout: (seconds + 60) * 1000,
    },
  );
  const cpu = (await cpuSeconds(pid)) - cpu0;
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
  return {
    cpuUs: (cpu / requests) * 1e6,
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]),
    p99: /Latency Distribution[\s\S]*?99%\s+(\S+)/.exec(stdout)?.[1] ?? "?",
    errors: /Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? "0",
  };
}

console.log(`machine: ${machine()}`);
console.log(`${paths.length} cached URLs; wrk -t1 -c50 -d${seconds}s --latency -s paths.lua`);
const ratios: number[] = [];
const slowRatios: number[] = [];
const cpuRatios: number[] = [];
const slowCpuRatios: number[] = [];
const likeRatios: number[] = [];
const cpu = (r: Run) => `${r.cpuUs.toFixed(1)} us CPU/request`;
for (let round = 1; round <= rounds; round++) {
  // Odd rounds Hono first, even rounds last, so drift in the machine's load falls on both.
  const h = round % 2 === 1 ? await wrk(honoUrl, hono.pid) : undefined;
  const e = await wrk(edge.ready.http!, edge.proc.pid);
  const n = await wrk(slow.ready.http!, slow.proc.pid);
  const ref = h ?? (await wrk(honoUrl, hono.pid));
  const like = await wrk(honoFieldsUrl, honoFields.pid);
  likeRatios.push(like.rps / ref.rps);
  cpuRatios.push(ref.cpuUs / e.cpuUs);
  slowCpuRatios.push(ref.cpuUs / n.cpuUs);
  ratios.push(e.rps / ref.rps);
  slowRatios.push(n.rps / ref.rps);
  console.log(
    `round ${round} bare Hono JSON: ${Math.round(ref.rps)} rps, p99 ${ref.p99}, ${cpu(ref)}, non-2xx ${ref.errors}`,
  );
  console.log(
    `round ${round} bare Hono JSON with the edge's ${Object.keys(sampleFields).length} fields: ${Math.round(like.rps)} rps, ratio ${(like.rps / ref.rps).toFixed(2)}x Hono, p99 ${like.p99}, ${cpu(like)}`,
  );
  console.log(
    `round ${round} edge hits: ${Math.round(e.rps)} rps, ratio ${(e.rps / ref.rps).toFixed(2)}x Hono, p99 ${e.p99}, ${cpu(e)}, non-2xx ${e.errors}`,
  );
  console.log(
    `round ${round} edge hits, --no-fast-hits: ${Math.round(n.rps)} rps, ratio ${(n.rps / ref.rps).toFixed(2)}x Hono, p99 ${n.p99}, ${cpu(n)}, non-2xx ${n.errors}`,
  );
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `median over ${rounds} rounds: edge hits ${median(ratios).toFixed(2)}x Hono, --no-fast-hits ${median(slowRatios).toFixed(2)}x; Hono's CPU per request / the edge's ${median(cpuRatios).toFixed(2)}, / --no-fast-hits' ${median(slowCpuRatios).toFixed(2)}; Hono with the edge's fields ${median(likeRatios).toFixed(2)}x Hono (load ${machine().split("load ")[1]})`,
);
hono.kill("SIGTERM");
honoFields.kill("SIGTERM");
await edge.stop();
await slow.stop();
await origin.stop();
await rm(dir, { recursive: true, force: true });
