/**
 * A real `redis-server` for a test file: a free loopback port, a temp dir,
 * no RDB snapshots; AOF off, or on with `appendfsync always` when a test needs
 * acknowledged writes to survive `kill9()` + `restart()` on the same port.
 */
import type { ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { exitOf, freePort, spawnReady } from "./net.ts";

export interface RedisServer {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** SIGKILL: no shutdown, no final save; whatever AOF fsynced survives. */
  kill9(): Promise<void>;
  /** Starts redis-server again on the same port and dir; waits for PING. */
  restart(): Promise<void>;
  /** Stops it and removes its dir. */
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** AOF with fsync on every write, for restart tests. Default false. */
  appendonly?: boolean;
}

export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServer> {
  const dir = await mkdtemp(join(tmpdir(), "propagate-redis-"));
  const port = await freePort();
  const args = ["--port", String(port), "--bind", "127.0.0.1", "--dir", dir, "--save", ""];
  args.push(
    ...(opts.appendonly
      ? ["--appendonly", "yes", "--appendfsync", "always"]
      : ["--appendonly", "no"]),
  );
  let proc = await launch(args, port);
  const kill9 = async () => {
    await exitOf(proc, "SIGKILL");
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    dir,
    kill9,
    restart: async () => {
      await kill9();
      proc = await launch(args, port);
    },
    stop: async () => {
      await exitOf(proc, "SIGTERM");
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function launch(args: string[], port: number): Promise<ChildProcess> {
  const { proc } = await spawnReady("redis-server", args, () => pings(port), {
    timeoutMs: 10_000,
    everyMs: 20,
  });
  return proc;
}

/** True once the server answers +PONG (a raw RESP exchange, no client library). */
export function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(500, () => done(false));
    sock.once("error", () => done(false));
    sock.once("connect", () => sock.write("PING\r\n"));
    sock.once("data", (d) => done(d.toString().startsWith("+PONG")));
  });
}
