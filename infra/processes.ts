/**
 * Child processes of `propagate`: start one, wait for its `ready {json}` line,
 * stop it. `propagate up --processes` starts one `propagate node` per node
 * of a topology this way; the tests start real servers with the same code.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { RunningNode } from "./nodes.ts";
import { edgesInStartOrder, type Topology } from "./topology.ts";

// PROPAGATE_BIN: another build of the same command (bench/fanout-processes.ts runs
// 100 nodes from one esbuild bundle: no TypeScript loader thread in each process).
const BIN =
  process.env.PROPAGATE_BIN ?? fileURLToPath(new URL("../bin/propagate.mjs", import.meta.url));

export interface Child {
  proc: ChildProcess;
  ready: Record<string, string>;
  output: () => string;
  /** Sends a signal (SIGTERM by default) and waits for the exit. */
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Runs `propagate <args>` and resolves once it printed its ready line. */
export function startPropagate(
  args: string[],
  timeoutMs = 15_000,
  echo?: (line: string) => void,
  /** Added to the environment: secrets go here, never in `args` (ps shows argv). */
  env: Record<string, string> = {},
): Promise<Child> {
  const proc = spawn(process.execPath, [BIN, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let out = "";
  const exited = new Promise<number | null>((resolve) =>
    proc.once("exit", (code) => resolve(code)),
  );
  const stop = async (signal: NodeJS.Signals = "SIGTERM") => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    return exited;
  };
  const collect = (c: Buffer) => {
    out += c.toString();
    if (echo)
      for (const line of c.toString().split("\n"))
        if (line && !line.startsWith("ready ")) echo(line);
  };
  proc.stdout?.on("data", collect);
  proc.stderr?.on("data", collect);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill("SIGKILL");
      reject(
        new Error(`propagate ${args.join(" ")} printed no ready line in ${timeoutMs} ms:\n${out}`),
      );
    }, timeoutMs);
    const onData = () => {
      const m = /^ready (\{.*\})$/m.exec(out);
      if (!m) return;
      clearTimeout(timer);
      proc.stdout?.off("data", onData);
      resolve({ proc, ready: JSON.parse(m[1]!), output: () => out, stop });
    };
    proc.stdout?.on("data", onData);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`propagate ${args.join(" ")} exited with ${code} before ready:\n${out}`));
    });
  });
}

/** Asks the origin for node `id`'s own token (the write token may issue it). */
async function issueToken(originUrl: string, writeToken: string, id: string): Promise<string> {
  const res = await fetch(`${originUrl}/v1/nodes/${id}/token`, {
    method: "POST",
    headers: { authorization: `Bearer ${writeToken}` },
  });
  if (!res.ok) throw new Error(`issuing ${id}'s token: HTTP ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

/**
 * Keeps one `propagate` child running. A child that dies (kill -9, a crash) is
 * logged and started again with the same arguments and environment, after a
 * backoff that doubles from 500 ms to 10 s and starts over once a child has
 * run for a minute.
 */
class Supervised {
  restarts = 0;
  private stopping = false;
  private backoffMs = 500;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly id: string,
    public child: Child,
    private readonly args: string[],
    private readonly env: Record<string, string>,
    private readonly log: (line: string) => void,
    private readonly onRestart: () => void,
  ) {
    this.watch(child);
  }

  get pid(): number | undefined {
    return this.child.proc.pid;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    await this.child.stop();
  }

  private watch(child: Child): void {
    const startedAt = Date.now();
    child.proc.once("exit", (code, signal) => {
      if (this.stopping) return;
      if (Date.now() - startedAt > 60_000) this.backoffMs = 500;
      this.log(
        `[${this.id}] exited (${signal ?? `code ${code}`}); restarting in ${this.backoffMs} ms`,
      );
      this.schedule();
    });
  }

  private schedule(): void {
    this.timer = setTimeout(() => void this.restart(), this.backoffMs);
    this.backoffMs = Math.min(this.backoffMs * 2, 10_000);
  }

  private async restart(): Promise<void> {
    if (this.stopping) return;
    try {
      const child = await startPropagate(this.args, 30_000, this.log, this.env);
      if (this.stopping) {
        await child.stop();
        return;
      }
      this.child = child;
      this.restarts++;
      this.log(`[${this.id}] restarted as pid ${child.proc.pid} (restart ${this.restarts})`);
      this.watch(child);
      this.onRestart();
    } catch (err) {
      this.log(`[${this.id}] restart failed: ${(err as Error).message.split("\n")[0]}`);
      if (!this.stopping) this.schedule();
    }
  }
}

/**
 * Starts every node of the topology in file `file` as its own `propagate node`
 * process, supervised: each node's table row shows its pid and restarts, and
 * `onRestart` runs after a dead child was started again.
 */
export async function spawnNodes(
  file: string,
  t: Topology,
  dataDir: string | undefined,
  onRestart: (nodes: RunningNode[]) => void = () => {},
) {
  const children: Supervised[] = [];
  const nodes: RunningNode[] = [];
  const close = async () => {
    for (const c of children.reverse()) await c.stop();
  };
  const base = ["node", "--topology", file, "--bus", t.bus];
  const prefix = (id: string) => (line: string) => console.error(`[${id}] ${line}`);
  const log = (line: string) => console.error(line);
  const row = (s: Supervised) => ({ pid: String(s.pid), restarts: String(s.restarts) });
  const restarted = (s: Supervised) => () => {
    const n = nodes.find((x) => x.id === s.id);
    if (n) n.extra = { ...n.extra, ...row(s) };
    onRestart(nodes);
  };
  try {
    const originArgs = [...base, "--id", t.origin.id, ...(dataDir ? ["--data", dataDir] : [])];
    const originChild = await startPropagate(originArgs, 30_000, prefix(t.origin.id));
    const {
      address: originUrl,
      token,
      nodeToken,
    } = originChild.ready as {
      address: string;
      token: string;
      nodeToken: string;
    };
    const ids = [
      t.origin.id,
      ...edgesInStartOrder(t).map((e) => e.id),
      ...t.resolvers.map((r) => r.id),
    ];
    for (const id of ids) {
      const args = id === t.origin.id ? originArgs : [...base, "--id", id, "--origin", originUrl];
      const env: Record<string, string> =
        id === t.origin.id ? {} : { PROPAGATE_NODE_TOKEN: await issueToken(originUrl, token, id) };
      const child =
        id === t.origin.id ? originChild : await startPropagate(args, 30_000, prefix(id), env);
      const supervised: Supervised = new Supervised(id, child, args, env, log, () =>
        restarted(supervised)(),
      );
      children.push(supervised);
      const r = child.ready;
      nodes.push({
        id,
        kind: r.kind as RunningNode["kind"],
        tier: r.tier!,
        ...(r.parent && { parent: r.parent }),
        address: r.address!,
        extra: { ...JSON.parse(r.extra ?? "{}"), ...row(supervised) },
        link: r.link ?? "-",
        close: async () => {
          await supervised.stop();
        },
      });
    }
    return { topology: t, nodes, originUrl, token, nodeToken, bus: undefined, close };
  } catch (err) {
    await close();
    throw err;
  }
}
