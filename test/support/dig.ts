/** Runs the real `dig` (or `kdig`) and returns its output. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

export async function dig(args: string[]): Promise<string> {
  const { stdout } = await run("dig", args, { timeout: 15_000 });
  return stdout;
}

export async function kdig(args: string[]): Promise<string> {
  const { stdout } = await run("kdig", args, { timeout: 15_000 });
  return stdout;
}
