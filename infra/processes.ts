/**
 * Child processes of `propagate`: start one, wait for its `ready {json}` line,
 * stop it. `propagate up --processes` starts one `propagate node` per node
 * of a topology this way; the tests start real servers with the same code.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { RunningNode } from "./nodes.ts";
import { edgesInStartOrder, type Topology } from "./topology.ts";

const BIN = fileURLToPath(new URL("../bin/propagate.mjs", import.meta.url));

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

/** Starts every node of the topology in file `file` as its own `propagate node` process. */
export async function spawnNodes(file: string, t: Topology, dataDir: string | undefined) {
  const children: Child[] = [];
  const nodes: RunningNode[] = [];
  const close = async () => {
    for (const c of children.reverse()) await c.stop();
  };
  const base = ["node", "--topology", file, "--bus", t.bus];
  const prefix = (id: string) => (line: string) => console.error(`[${id}] ${line}`);
  try {
    const originChild = await startPropagate(
      [...base, "--id", t.origin.id, ...(dataDir ? ["--data", dataDir] : [])],
      30_000,
      prefix(t.origin.id),
    );
    children.push(originChild);
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
      const child =
        id === t.origin.id
          ? originChild
          : await startPropagate([...base, "--id", id, "--origin", originUrl], 30_000, prefix(id), {
              PROPAGATE_NODE_TOKEN: await issueToken(originUrl, token, id),
            });
      if (child !== originChild) children.push(child);
      const r = child.ready;
      nodes.push({
        id,
        kind: r.kind as RunningNode["kind"],
        tier: r.tier!,
        ...(r.parent && { parent: r.parent }),
        address: r.address!,
        extra: JSON.parse(r.extra ?? "{}"),
        link: r.link ?? "-",
        close: async () => {
          await child.stop();
        },
      });
    }
    return { topology: t, nodes, originUrl, token, nodeToken, bus: undefined, close };
  } catch (err) {
    await close();
    throw err;
  }
}
