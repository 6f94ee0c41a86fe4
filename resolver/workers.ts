/**
 * `propagate resolver --workers N`: N resolver processes answering on one DNS
 * port. Node 20's dgram has no SO_REUSEPORT, so the cluster module shares the
 * port: the primary owns the UDP socket and the TCP listener and hands them to
 * every worker; the kernel gives each datagram to one reader. The workers share
 * nothing else: each has its own cache, its own admin endpoint and its own
 * node id `<id>-w<i>` (so NSID, RFC 5001, tells them apart). The one thing they
 * exchange is purges: the primary relays each admin purge to every other
 * worker, like a purge bus, so a purge through any worker reaches them all.
 */
import cluster, { type Worker } from "node:cluster";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import type { PurgeMode } from "../core/purge.ts";
import type { PurgeSelector } from "./purge.ts";
import type { RunningResolver } from "./server.ts";

interface PurgeMessage {
  type: "purge";
  target: PurgeSelector;
  mode: PurgeMode;
}
interface ReadyMessage {
  type: "ready";
  ready: Record<string, string>;
}
type Message = PurgeMessage | ReadyMessage;

/** True in a process forked by `startWorkers`. */
export function isResolverWorker(): boolean {
  return cluster.isWorker && process.env.PROPAGATE_RESOLVER_WORKER !== undefined;
}

/** This worker's number (1-based), its admin port and the shared token, set by the primary. */
export function workerSlot(): { index: number; adminPort: number; token: string } {
  return {
    index: Number(process.env.PROPAGATE_RESOLVER_WORKER),
    adminPort: Number(process.env.PROPAGATE_RESOLVER_ADMIN_PORT),
    token: process.env.PROPAGATE_RESOLVER_TOKEN ?? "",
  };
}

/**
 * In a worker: its admin purges also go to the siblings (through the primary),
 * and the siblings' purges are applied here; then it reports ready.
 */
export function joinWorkers(r: RunningResolver, ready: Record<string, string>): void {
  const local = r.resolver.purge.bind(r.resolver);
  r.resolver.purge = (target, mode) => {
    process.send?.({ type: "purge", target, mode } satisfies PurgeMessage);
    return local(target, mode);
  };
  process.on("message", (m: Message) => {
    if (m.type === "purge") local(m.target, m.mode);
  });
  // The primary is gone (killed): nobody relays purges any more, so stop too.
  process.on("disconnect", () => process.exit(0));
  process.send?.({ type: "ready", ready } satisfies ReadyMessage);
}

/**
 * In the primary: forks `n` workers running the same command line, relays
 * purges between them, and resolves with the ready line: the shared `dns`,
 * each worker's `admin` (comma-separated, worker order), `ids` and `workerPids`.
 * `adminPort` 0 gives each worker a free port; otherwise worker i gets port + i - 1.
 */
export async function startWorkers(
  n: number,
  adminHost: string,
  adminPort: number,
  token: string | undefined,
): Promise<{ ready: Record<string, string>; close: () => Promise<void> }> {
  // One token for all workers, in the environment (never argv: ps shows it).
  const shared = token ?? randomBytes(18).toString("base64url");
  const workers: Worker[] = [];
  const readies: Array<Record<string, string>> = [];
  for (let i = 1; i <= n; i++) {
    const port = adminPort === 0 ? await freePort(adminHost) : adminPort + i - 1;
    const w = cluster.fork({
      PROPAGATE_RESOLVER_WORKER: String(i),
      PROPAGATE_RESOLVER_ADMIN_PORT: String(port),
      PROPAGATE_RESOLVER_TOKEN: shared,
    });
    workers.push(w);
    w.on("message", (m: Message) => {
      if (m.type !== "purge") return;
      for (const other of workers) if (other !== w && other.isConnected()) other.send(m);
    });
    // Started one after another: the first worker's bind of port 0 fixes the DNS
    // port the others then share (cluster keys shared handles by address and port).
    readies.push(
      await new Promise<Record<string, string>>((resolve, reject) => {
        const onExit = (code: number) =>
          reject(new Error(`resolver worker ${i} exited with ${code}`));
        w.once("exit", onExit);
        w.on("message", (m: Message) => {
          if (m.type !== "ready") return;
          w.off("exit", onExit);
          resolve(m.ready);
        });
      }),
    );
  }
  const ready: Record<string, string> = {
    dns: readies[0]!.dns!,
    admin: readies.map((r) => r.admin).join(","),
    ids: readies.map((r) => r.id).join(","),
    workerPids: workers.map((w) => String(w.process.pid)).join(","),
  };
  if (token === undefined) ready.token = shared;
  const close = async () => {
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once("exit", () => resolve());
            w.process.kill("SIGTERM");
          }),
      ),
    );
  };
  return { ready, close };
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen({ port: 0, host, exclusive: true }, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}
