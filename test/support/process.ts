/**
 * Starts `propagate <command>` as a real child process and waits for its
 * `ready {...}` line, so wire tests run against the same binary users run.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const BIN = fileURLToPath(new URL("../../bin/propagate.mjs", import.meta.url));

export interface Running {
  proc: ChildProcess;
  ready: Record<string, string>;
  output: () => string;
  /** Sends a signal (SIGTERM by default) and waits for the exit. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

export function startPropagate(args: string[], timeoutMs = 15_000): Promise<Running> {
  const proc = spawn(process.execPath, [BIN, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  const exited = new Promise<number | null>((resolve) =>
    proc.once("exit", (code) => resolve(code)),
  );
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(
        new Error(`propagate ${args.join(" ")} printed no ready line in ${timeoutMs} ms:\n${out}`),
      );
    }, timeoutMs);
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      const m = /^ready (\{.*\})$/m.exec(out);
      if (m) {
        clearTimeout(timer);
        proc.stdout?.off("data", onData);
        proc.stdout?.on("data", (c: Buffer) => {
          out += c.toString();
        });
        resolve({ proc, ready: JSON.parse(m[1]!), output: () => out, stop });
      }
    };
    proc.stdout?.on("data", onData);
    proc.stderr?.on("data", (c: Buffer) => {
      out += c.toString();
    });
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`propagate ${args.join(" ")} exited with ${code} before ready:\n${out}`));
    });
  });
}
