/**
 * Real DNS servers for a test file (Knot, BIND, NSD from Debian's packages):
 * a temp dir, a free loopback port, a config the test writes, and a wait for
 * the condition "it answers a query", never a fixed sleep.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import dnsPacket from "dns-packet";
import { queryUdp } from "../../core/dns-transport.ts";
import { exitOf, freePort, spawnReady } from "./net.ts";
import { waitFor as waitUntil } from "./wait.ts";

export { freePort };

const run = promisify(execFile);

export type DaemonKind = "knot" | "bind" | "nsd";

export interface Daemon {
  readonly kind: DaemonKind;
  readonly port: number;
  readonly dir: string;
  /** What it printed so far (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts one daemon. `config(dir, port)` returns the body of its config file
 * (knot.conf, named.conf or nsd.conf) and may write zone files into dir.
 */
export async function startDaemon(
  kind: DaemonKind,
  config: (dir: string, port: number) => string | Promise<string>,
  fixedPort?: number,
): Promise<Daemon> {
  const dir = await mkdtemp(join(tmpdir(), `propagate-${kind}-`));
  const port = fixedPort ?? (await freePort());
  const file = join(dir, { knot: "knot.conf", bind: "named.conf", nsd: "nsd.conf" }[kind]);
  await writeFile(file, await config(dir, port));
  const [cmd, args] = {
    knot: ["knotd", ["-c", file]],
    bind: ["named", ["-g", "-c", file, "-n", "1"]],
    nsd: ["nsd", ["-d", "-c", file]],
  }[kind] as [string, string[]];
  const { proc, output } = await spawnReady(cmd, args, () => answers(port), {
    timeoutMs: 15_000,
    everyMs: 50,
    spawn: { cwd: dir },
  });
  return {
    kind,
    port,
    dir,
    output,
    stop: async () => {
      await exitOf(proc, "SIGTERM", 5000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** True once something answers a query on the port (any RCODE). */
async function answers(port: number): Promise<boolean> {
  const q = dnsPacket.encode({ type: "query", id: 1, questions: [{ name: ".", type: "SOA" }] });
  try {
    await queryUdp("127.0.0.1", port, q, 200);
    return true;
  } catch {
    return false;
  }
}

/** The serial a server answers for a zone's SOA, or undefined when it does not serve it. */
export async function soaSerial(port: number, zone: string): Promise<number | undefined> {
  const q = dnsPacket.encode({ type: "query", id: 2, questions: [{ name: zone, type: "SOA" }] });
  try {
    const r = dnsPacket.decode(await queryUdp("127.0.0.1", port, q, 500));
    const soa = r.answers?.find((a) => a.type === "SOA");
    return soa && "data" in soa ? (soa.data as { serial: number }).serial : undefined;
  } catch {
    return undefined;
  }
}

/** Polls `cond` until it is true (a real-socket condition), or throws after `ms`. */
export async function waitFor(
  what: string,
  cond: () => Promise<boolean> | boolean,
  ms = 15_000,
): Promise<void> {
  await waitUntil(what, cond, ms, 25);
}

/** `kdig` output (never throws on a DNS error: the test reads the text). */
export async function kdigText(args: string[]): Promise<string> {
  try {
    const { stdout, stderr } = await run("kdig", args, { timeout: 20_000, maxBuffer: 64 << 20 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return `${e.stdout ?? ""}${e.stderr ?? ""}`;
  }
}

/**
 * Sends one transfer request over TCP and collects the answer's messages until
 * the closing SOA (the second SOA with the first one's serial, RFC 5936 §2.2),
 * an error RCODE, or a single-SOA IXFR answer (RFC 1995 §4).
 */
export function transferTcp(port: number, query: Buffer, timeoutMs = 10_000): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, "127.0.0.1");
    const msgs: Buffer[] = [];
    let buf = Buffer.alloc(0);
    let firstSerial: number | undefined;
    let soas = 0;
    let records = 0;
    const done = (err?: Error) => {
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(msgs);
    };
    const timer = setTimeout(
      () =>
        done(new Error(`transfer not finished after ${timeoutMs} ms (${msgs.length} messages)`)),
      timeoutMs,
    );
    sock.on("connect", () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length, 0);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on("data", (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = Buffer.from(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + msg.length);
        msgs.push(msg);
        const p = dnsPacket.decode(msg);
        if ((msg.readUInt16BE(2) & 0xf) !== 0) return done();
        for (const a of p.answers ?? []) {
          records++;
          if (a.type !== "SOA") continue;
          const serial = (a.data as { serial: number }).serial;
          if (firstSerial === undefined) firstSerial = serial;
          else if (serial === firstSerial) soas++;
        }
        if (soas > 0 && records > 1 && isLastSoa(p, firstSerial)) return done();
        if (records === 1 && p.answers?.length === 1 && isIxfr(query)) return done();
      }
    });
    sock.on("end", () => done());
    sock.on("error", (err) => done(err));
  });
}

function isLastSoa(p: dnsPacket.Packet, serial: number | undefined): boolean {
  const last = p.answers?.[p.answers.length - 1];
  return last?.type === "SOA" && (last.data as { serial: number }).serial === serial;
}

function isIxfr(query: Buffer): boolean {
  return dnsPacket.decode(query).questions?.[0]?.type === "IXFR";
}
