/**
 * Loopback ports and child daemons for tests: a port free now (for daemons
 * that take no port 0), a process started and waited for by a condition (it
 * answers), and a stop that waits for the exit.
 */
import { type ChildProcess, type SpawnOptions, spawn } from "node:child_process";
import dgram from "node:dgram";
import net from "node:net";
import { waitFor } from "./wait.ts";

/** Listens on 127.0.0.1:`port` over TCP (0: any) and closes; rejects when it is taken. */
export function listenFree(port = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once("error", reject);
    srv.listen(port, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port")),
      );
    });
  });
}

/** True when UDP 127.0.0.1:`port` can be bound now. */
function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const udp = dgram.createSocket("udp4");
    udp.once("error", () => {
      udp.close();
      resolve(false);
    });
    udp.bind(port, "127.0.0.1", () => udp.close(() => resolve(true)));
  });
}

/** A loopback port free now for TCP and UDP alike (a DNS server takes both). */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await listenFree(0);
    if (await udpFree(port)) return port;
  }
}

/**
 * Sends `signal` and resolves once the process has exited (at once when it
 * already has); with `killAfterMs`, SIGKILL when it is still running by then.
 */
export function exitOf(
  proc: ChildProcess,
  signal: NodeJS.Signals = "SIGTERM",
  killAfterMs?: number,
): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer =
      killAfterMs === undefined ? undefined : setTimeout(() => proc.kill("SIGKILL"), killAfterMs);
    proc.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    proc.kill(signal);
  });
}

export interface Spawned {
  proc: ChildProcess;
  /** What it printed so far (stdout and stderr). */
  output(): string;
}

/**
 * Spawns `cmd` and polls `ready` until it holds. Throws with the process's
 * output (and kills it) when it exits first or `timeoutMs` passes.
 */
export async function spawnReady(
  cmd: string,
  args: string[],
  ready: () => Promise<boolean>,
  opts: { timeoutMs: number; everyMs: number; spawn?: SpawnOptions },
): Promise<Spawned> {
  const proc = spawn(cmd, args, { ...opts.spawn, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  proc.stdout?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  proc.stderr?.on("data", (c: Buffer) => {
    out += c.toString();
  });
  const what = `${cmd} ${args.join(" ")} to answer`;
  try {
    await waitFor(
      what,
      async () => {
        if (proc.exitCode !== null) throw new Error(`${cmd} exited (${proc.exitCode})`);
        return ready();
      },
      opts.timeoutMs,
      opts.everyMs,
    );
  } catch (err) {
    proc.kill("SIGKILL");
    throw new Error(`${(err as Error).message}: ${what}:\n${out}`);
  }
  return { proc, output: () => out };
}
