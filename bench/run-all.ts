/**
 * `npm run bench`: every benchmark case, one after another, each starting
 * what it needs and its reference in the same run (see README.md), under ten
 * minutes in all. Prints each case's figure lines as they come and writes the
 * run to results/run-all.md: machine, package versions, commands, output.
 * Usage: npx tsx bench/run-all.ts [--quick]  (--quick: shorter runs, for a smoke test)
 * Not part of `npm run check`: it measures, it does not test.
 */
import { execFile, spawn } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { machine, PINNING } from "./support.ts";

const quick = process.argv.includes("--quick");
const s = quick ? "3" : "10";

/** [script, args, per-case time limit in seconds]. */
const CASES: [string, string[], number][] = [
  ["origin-dns.ts", [s, quick ? "1" : "2"], 150],
  ["origin-writes.ts", [s, "50", quick ? "3" : "10"], 90],
  // The pinned hit benches supersede resolver-hit.ts and edge-hit.ts (same cases, plus
  // `--workers` 1 -> 2 beside Unbound, and the edge with and without its fast path).
  ["resolver-hit-pinned.ts", [s, quick ? "1" : "2", "1,2"], 240],
  ["edge-hit-pinned.ts", [s, quick ? "1" : "2"], 150],
  ["cache-memory.ts", quick ? ["100000", "20000"] : ["1000000", "200000"], 240],
  ["propagation-receipts.ts", [quick ? "30" : "100"], 120],
  ["bus-fanout.ts", ["100", quick ? "100" : "300"], 90],
  // 10 node processes (~30 s); the 100-process figure takes ~4 min to start: run it alone.
  ["fanout-processes.ts", ["10", quick ? "20" : "50"], 120],
  ["edge-modes.ts", ["5000", "1000"], 150],
  ["secondaries.ts", [quick ? "5" : "10"], 150],
];

function runCase(
  script: string,
  args: string[],
  limit: number,
): Promise<{ out: string; code: number | null }> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const proc = spawn(process.execPath, ["--import", "tsx", path, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout.on("data", (c: Buffer) => {
    out += c.toString();
    process.stdout.write(c.toString().replace(/^(?=.)/gm, `  `));
  });
  proc.stderr.on("data", (c: Buffer) => {
    err += c.toString();
  });
  const timer = setTimeout(() => proc.kill("SIGTERM"), limit * 1000);
  return new Promise((resolve) => {
    proc.once("exit", (code) => {
      clearTimeout(timer);
      if (code !== 0)
        out += `FAILED (exit ${code}): ${err.trim().split("\n").slice(-5).join(" | ")}\n`;
      resolve({ out, code });
    });
  });
}

async function versions(): Promise<string> {
  const pkgs = ["dnsperf", "wrk", "knot", "bind9", "nsd", "redis-server", "linux-image-amd64"];
  try {
    const { stdout } = await promisify(execFile)("dpkg-query", [
      "-W",
      "-f",
      // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format syntax
      "${Package} ${Version}\\n",
      ...pkgs,
    ]);
    return stdout.trim().split("\n").join(", ");
  } catch (e) {
    return ((e as { stdout?: string }).stdout ?? "").trim().split("\n").join(", ");
  }
}

const started = Date.now();
const header = [
  `machine: ${machine()}`,
  `cores: ${cpus().length}; pinning: ${PINNING ? "servers on core 0, load generators on core 1 (taskset)" : "none (one core)"}`,
  `node ${process.version}; ${await versions()}`,
];
console.log(header.join("\n"));
const sections: string[] = [];
for (const [script, args, limit] of CASES) {
  const command = `npx tsx bench/${script} ${args.join(" ")}`;
  console.log(`\n${command}`);
  const t0 = Date.now();
  const { out } = await runCase(script, args, limit);
  sections.push(
    `### ${command} (${((Date.now() - t0) / 1000).toFixed(0)} s)\n\n\`\`\`\n${out.trim()}\n\`\`\``,
  );
}
const total = `total: ${((Date.now() - started) / 1000).toFixed(0)} s`;
console.log(`\n${total}`);
await writeFile(
  fileURLToPath(new URL("results/run-all.md", import.meta.url)),
  `# npm run bench${quick ? " -- --quick" : ""}\n\n${header.map((l) => `- ${l}`).join("\n")}\n- ${total}; started ${new Date(started).toISOString()}\n\n${sections.join("\n\n")}\n`,
);
