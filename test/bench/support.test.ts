import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterEach, describe, expect, it } from "vitest";
import { childPids, cpuSeconds, residentKb } from "../../bench/support.ts";

/** A node process running `script`; resolves with it and the first line it prints. */
function started(script: string) {
  const proc = spawn(process.execPath, ["-e", script], { stdio: ["pipe", "pipe", "inherit"] });
  const line = new Promise<string>((resolve) =>
    createInterface({ input: proc.stdout }).once("line", resolve),
  );
  return { proc, line };
}

const procs: ReturnType<typeof spawn>[] = [];
afterEach(() => {
  for (const p of procs.splice(0)) p.kill("SIGKILL");
});

describe("bench/support.ts: a process's CPU and memory from /proc", () => {
  it("counts a child's CPU with its parent's once the parent has waited for it, when asked", async () => {
    // The parent runs a child that spins ~0.4 s of CPU, waits for it, then says so and idles.
    const { proc, line } = started(`
      require("node:child_process").spawnSync(process.execPath, ["-e", "const t = Date.now(); while (Date.now() - t < 400);"]);
      console.log("reaped");
      process.stdin.resume();
    `);
    procs.push(proc);
    expect(await line).toBe("reaped");
    const own = cpuSeconds(proc.pid);
    const withChildren = cpuSeconds(proc.pid, true);
    expect(withChildren - own).toBeGreaterThanOrEqual(0.3);
    expect(own).toBeLessThan(withChildren);
  });

  it("lists a running child and reads its resident memory; nothing of a process gone", async () => {
    const { proc, line } = started(`
      const child = require("node:child_process").spawn(process.execPath, ["-e", "setInterval(() => {}, 1000)"], { stdio: "ignore" });
      console.log(child.pid);
      process.stdin.resume();
    `);
    procs.push(proc);
    const child = Number(await line);
    expect(childPids(proc.pid!)).toContain(child);
    expect(residentKb(child)).toBeGreaterThan(1_000);
    process.kill(child, "SIGKILL");
    proc.kill("SIGKILL");
    await new Promise((resolve) => proc.once("close", resolve));
    expect(childPids(proc.pid!)).toEqual([]);
    expect(residentKb(proc.pid!)).toBe(0);
    expect(cpuSeconds(proc.pid)).toBeNaN();
  });
});
