/** Runs the real `dig` (or `kdig`) and returns its output. */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const run = promisify(execFile);

/**
 * With `+short`, dig prints transport warnings among the answers (";; communications
 * error ... timed out", ";; Warning: ID mismatch" when a UDP reply comes after dig
 * retried): they say how the answer came, not what it is, so they are dropped there.
 * A query that never got an answer still shows: its output has no answer line.
 */
export async function dig(args: string[]): Promise<string> {
  const { stdout } = await run("dig", args, { timeout: 15_000 });
  if (!args.includes("+short")) return stdout;
  return stdout
    .split("\n")
    .filter((l) => !l.startsWith(";;"))
    .join("\n");
}

export async function kdig(args: string[]): Promise<string> {
  const { stdout } = await run("kdig", args, { timeout: 15_000 });
  return stdout;
}
