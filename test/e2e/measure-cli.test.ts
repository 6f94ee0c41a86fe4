/**
 * `propagate measure` as users run it: a separate process against a running
 * topology. Its waits between probes once used timers that did not hold the
 * event loop open, so about half of its runs exited with code 13 and printed
 * nothing; every run here must end with a report and exit 0.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTopology } from "./support.ts";

/**
 * Runs the command with its output going to a file, as in a shell with `>`: a
 * pipe would be a handle of its own that holds the event loop open and hides
 * the bug. Returns the exit code and what it printed.
 */
async function runToFile(args: string[]): Promise<{ code: number | null; out: string }> {
  const dir = await mkdtemp(join(tmpdir(), "propagate-measure-"));
  const path = join(dir, "out");
  const file = await open(path, "w");
  try {
    const child = spawn(process.execPath, args, { stdio: ["ignore", file.fd, file.fd] });
    const killer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    const [code] = (await once(child, "exit")) as [number | null];
    clearTimeout(killer);
    return { code, out: await readFile(path, "utf8") };
  } finally {
    await file.close();
    await rm(dir, { recursive: true, force: true });
  }
}
const RUNS = 10;

let t: Awaited<ReturnType<typeof startTopology>>;
beforeAll(async () => {
  // The default topology as `npm start` runs it (on free ports): its seeded
  // lognormal links leave moments where every probe loop sleeps at once.
  const spec = JSON.parse(await readFile("infra/topologies/default.json", "utf8"));
  t = await startTopology(spec);
});
afterAll(async () => {
  await t?.close();
});

describe("propagate measure (process)", () => {
  it(`prints a report and exits 0 on each of ${RUNS} runs`, async () => {
    for (let i = 0; i < RUNS; i++) {
      const { code, out } = await runToFile([
        "bin/propagate.mjs",
        "measure",
        "--origin",
        t.originUrl,
        "--token",
        t.token,
        "--samples",
        "2",
        "--interval-ms",
        "15",
        "--json",
      ]);
      expect(code, `run ${i + 1} exited ${code}, printing: ${out}`).toBe(0);
      const report = JSON.parse(out) as { series: { nodes: { nodeId: string }[] }[] };
      expect(report.series[0]?.nodes.map((n) => n.nodeId).sort(), `run ${i + 1}`).toEqual(
        t.nodes
          .map((n) => n.id)
          .filter((id) => id !== "origin")
          .sort(),
      );
      // The report's JSON as simulate writes it: each node's row on a line of its own.
      for (const n of report.series[0]!.nodes)
        expect(out, `run ${i + 1}`).toMatch(
          new RegExp(`^ {8}\\{"nodeId":"${n.nodeId}",.*\\},?$`, "m"),
        );
    }
  }, 120_000);
});
